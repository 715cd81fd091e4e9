"""
### transform_dbt

Builds the dbt project (`dbt_project/`: staging, intermediate, marts) once a day has
landed from **every** source. Each ingestion DAG publishes its raw Assets once, at its
end, when everything it loads is in, with the day it landed in the event's `extra`; this
DAG is scheduled on any of them (`RAW_ASSETS`), and its first tasks decide what is
complete: `run_interval` takes the days up to the last one *all* raw Assets have landed,
and `anything_new` ends the run there (skipped, not failed) unless that brings a day the
marts were not built for yet. So each day is built once, after the last of
`ingest_stripe` and `ingest_events` lands it, whatever order they finish in.

Rendered by astronomer-cosmos in its watcher execution mode (`ExecutionMode.WATCHER`):
one task, `dbt.dbt_producer_watcher`, runs a single `dbt build` of the whole project (a
failing model or test makes dbt skip everything downstream of it), and one task per model
(`dbt.<model>_run`), one for the seeds (`dbt.seeds`) and one for the staging models
(`dbt.staging`), reports its nodes' results **and their data tests'** from the build
(`retention.operators.dbt_watch`): the graph shows which model failed or which model's
tests failed (the task names the tests), and a failed node's downstream tasks do not run
(a failure among the seeds or staging models stops everything downstream of their
group's task). These tasks start once the build has ended
(`retention.dbt.wire_watchers`) and take a fraction of a second each. The build runs as a
dbt subprocess (`InvocationMode.SUBPROCESS`: the in-process dbt runner made the build 2.5
times slower, docs/performance.md). The producer is not retried (Cosmos would only skip
it). A failed data test is final (the data would not change on a retry); a model that
failed in the build is retried, and a retried or cleared task runs `dbt build --select
<node>` on its own (the node and its tests); a cleared producer makes every task do so.

* **Profile:** built at run time from the Airflow connection `warehouse`
  (`retention.dbt.warehouse_profile_mapping`); no credentials in the DAG or in dbt files.
* **Rendering:** from the committed `dbt_project/dbt_ls.json` (Cosmos `DBT_LS_FILE`), so
  parsing this file runs no dbt, opens no connection and touches no network. Refresh it
  with `python -m retention.dbt` after changing models.
* **Sources** (`RETENTION_EVENTS_SOURCE`, `retention.sources`, docs/sources.md): with
  events from landed files (default) a build waits for every raw Asset; with events
  already in the warehouse (`warehouse`) or none (`none`, billing only) for Stripe's only.
  `none` builds dbt's `finance` selector; `warehouse` gates the destination's `tracks`
  table instead of `raw.events`.
* **Quality gates (Great Expectations, SQL pushed down):** `gate_raw` validates the raw
  tables (schema, volume, freshness, duplicates, quarantine share) before any model
  runs; `gate_marts` validates the marts the sync reads (health scores, tiers, keys,
  contactable members) after the build. Each is one task running every suite of its
  stage in one process; its log has one line per suite and its XCom each suite's result.
  A failing suite fails the task (after the other suites ran) and nothing downstream
  runs, so bad data never reaches `publish_marts` or the sync. A daily run's `gate_raw`
  reads only the newly landed events (from the first day the run processes, widened to
  the week the volume check compares); with `full_refresh`, every row. Gates are
  evaluated as of the last day the run processes; `gate_as_of` (YYYY-MM-DD) in the run
  conf overrides it, e.g. when rebuilding on an old snapshot.
* **What a run processes** (`run_interval`, the first task; `retention.schedule`,
  docs/scheduling.md): an Asset-triggered run or a manual run without a date, up to the
  last day every raw Asset has landed; a manual run dated D, day D; with the `day` param,
  that day.
* **Grants:** the build's `on-run-end` hook runs `grant_marts_readonly` once per dbt
  process, under a Postgres advisory lock (a task rebuilding its model on a retry may
  grant at the same time as another; concurrent grants otherwise fail each other with
  `tuple concurrently updated`).
* **Daily vs full:** incremental models restate only the window new data can reach, and
  the heavy data tests read only that window (docs/dbt.md); trigger with
  `{"full_refresh": true}` to rebuild everything and test every row. Unit tests are
  skipped here (CI runs them).
* **Output:** the last task, `publish_marts`, records the publication (as-of date,
  validated relations) in `activation.mart_publications`, which the sync checks, and
  updates the Asset `marts` (`warehouse://marts`, `retention.airflow_defaults.MARTS_ASSET`)
  that the sync schedules on, with the interval and `as_of` in the event's `extra`; it
  returns them as XCom. The as-of date is `retention.schedule.checked_as_of`: the day
  the gates judged (`gate_as_of`, else the last day processed). Cosmos' per-model
  datasets are off.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import AssetAny, Param, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import DbtResourceType, ExecutionMode, InvocationMode, LoadMode, TestBehavior

from retention import dbt as retention_dbt
from retention.airflow_defaults import DEFAULT_ARGS, MARTS_ASSET
from retention.config import WAREHOUSE_CONN_ID
from retention.operators.dbt_watch import NodeBuildTasks
from retention.operators.quality import stage_gate_task
from retention.schedule import anything_new_task, day_param, interval_task
from retention.sources import mode

# Which raw Assets a build waits for, what it builds and gates: RETENTION_EVENTS_SOURCE
# (retention.sources, docs/sources.md).
SOURCES = mode()
RAW = SOURCES.awaited_assets()
# Daily runs test only the new window; a full refresh tests every row.
DBT_VARS = {"tests_full_scan": "{{ params.full_refresh }}"}
PROFILE = ProfileConfig(
    profile_name="retention",
    target_name="warehouse",
    profile_mapping=retention_dbt.warehouse_profile_mapping(WAREHOUSE_CONN_ID),
)


@dag(
    dag_id="transform_dbt",
    doc_md=__doc__,
    schedule=AssetAny(*RAW),  # any source landed; run_interval + anything_new decide what is complete
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["dbt", "marts", "quality", "retention"],
    params={
        "day": day_param(),
        "gate_as_of": Param(None, type=["null", "string"], format="date",
                            description="as-of date for the quality gates (default: the last day processed)"),
        "full_refresh": Param(False, type="boolean",
                              description="rebuild incremental models from scratch and test every row"),
    },
)
def transform_dbt():
    node_tasks = NodeBuildTasks()  # a task per model; one for the seeds, one for the staging models
    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(dbt_project_path=retention_dbt.project_dir()),
        profile_config=PROFILE,
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=retention_dbt.dbt_executable(),
            # Cosmos' producer does not retry: a retry would only skip (its watchers then run
            # their own models); a failed build is reported by the model's task.
            setup_operator_args={"retries": 0},
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_LS_FILE,
            dbt_ls_path=retention_dbt.ls_file(SOURCES.events_source),
            selector=SOURCES.dbt_selector,  # the producer's `dbt build --selector` (billing only: finance)
            # the build runs the tests; each model's task reports them (retention.dbt.wire_watchers)
            test_behavior=TestBehavior.NONE,
            node_converters={DbtResourceType.MODEL: node_tasks, DbtResourceType.SEED: node_tasks},
            emit_datasets=False,
        ),
        operator_args={
            "install_deps": False,
            # no debug log file: Cosmos deletes its copy of the project, logs included (BUILD_FLAGS)
            "dbt_cmd_flags": list(retention_dbt.BUILD_FLAGS),
            "full_refresh": "{{ params.full_refresh }}",
            "vars": DBT_VARS,
            # Unit tests check the SQL, not the data: CI runs them, production runs skip them.
            # Exposures are documentation: nothing to run, but a node each (as the `daily` selector).
            "env": {"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test exposure"},
            "pre_execute": retention_dbt.skip_unless_built,
        },
        default_args=DEFAULT_ARGS,
    )

    retention_dbt.wire_watchers(dbt, node_tasks)

    @task(outlets=[MARTS_ASSET], multiple_outputs=False)
    def publish_marts(interval: dict[str, str]) -> dict[str, str]:
        """Record the publication the sync checks (the as-of date the gates used), then mark
        the marts as refreshed (the sync schedules on this Asset; the event's ``extra``
        carries the interval and ``as_of``)."""
        from airflow.sdk import get_current_context

        from retention.schedule import RunInterval, checked_as_of
        from retention.sync import publication

        ctx = get_current_context()
        built, as_of = RunInterval.from_xcom(interval), checked_as_of(ctx)
        publication.publish(as_of, ctx["run_id"])
        extra = {**built.asset_extra(), "as_of": as_of.isoformat()}
        ctx["outlet_events"][MARTS_ASSET].extra = extra
        return {**built.to_xcom(), **extra}

    interval = interval_task(RAW)
    anything_new = anything_new_task(interval, MARTS_ASSET)
    gate_raw, gate_marts = stage_gate_task("raw"), stage_gate_task("marts")
    anything_new >> gate_raw >> dbt >> gate_marts >> publish_marts(interval)
    # The group ends in its nodes' tasks (retention.dbt.wire_watchers), which a failed raw gate
    # skips: gate_marts needs gate_raw itself.
    gate_raw >> gate_marts


transform_dbt_dag = transform_dbt()
