"""
### transform_dbt

Builds the dbt project (`dbt_project/`: staging, intermediate, marts) after fresh raw
data lands: Stripe invoices and product events (their ingestion DAGs update the raw
Assets). Rendered by astronomer-cosmos as one task group with one task per model (and
seed), each model's data tests running right after it (`TestBehavior.AFTER_EACH`), so a
failing test stops everything downstream of that model.

* **Profile:** built at run time from the Airflow connection `warehouse`
  (`retention.dbt.warehouse_profile_mapping`); no credentials in the DAG or in dbt files.
* **Rendering:** from the committed `dbt_project/dbt_ls.json` (Cosmos `DBT_LS_FILE`), so
  parsing this file runs no dbt, opens no connection and touches no network. Refresh it
  with `python -m retention.dbt` after changing models.
* **Quality gates (Great Expectations, SQL pushed down):** `gate_raw` validates the raw
  tables (schema, volume, freshness, duplicates, quarantine share) before any model
  runs; `gate_marts` validates the marts the sync reads (health scores, tiers, keys,
  contactable members) after the build. A failing gate fails its task and nothing
  downstream runs, so bad data never reaches `publish_marts` or the sync. Gates are
  evaluated as of the run's data interval end; `gate_as_of` (YYYY-MM-DD) in the run
  conf overrides it, e.g. when rebuilding on an old snapshot.
* **Daily vs full:** incremental models restate only the window new data can reach, and
  the heavy data tests read only that window (docs/dbt.md); trigger with
  `{"full_refresh": true}` to rebuild everything and test every row. Unit tests are
  skipped here (CI runs them).
* **Output:** the last task records the publication (as-of date, validated relations) in
  `activation.mart_publications`, which the sync checks, and updates the Asset `marts` (`warehouse://marts`,
  `retention.airflow_defaults.MARTS_ASSET`) that the sync schedules on. Cosmos'
  per-model datasets are off.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task, task_group
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import LoadMode, TestBehavior

from retention import dbt as retention_dbt
from retention.airflow_defaults import DEFAULT_ARGS, MARTS_ASSET, RAW_ASSETS
from retention.config import WAREHOUSE_CONN_ID
from retention.operators.quality import gate_task
from retention.quality.suites import MARTS_GATES, RAW_GATES


@dag(
    dag_id="transform_dbt",
    doc_md=__doc__,
    schedule=[RAW_ASSETS["stripe_invoices"], RAW_ASSETS["events"]],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["dbt", "marts", "quality", "retention"],
    params={
        "gate_as_of": Param(None, type=["null", "string"], format="date",
                            description="as-of date for the quality gates (default: data interval end)"),
        "full_refresh": Param(False, type="boolean",
                              description="rebuild incremental models from scratch and test every row"),
    },
)
def transform_dbt():
    @task_group(group_id="gate_raw")
    def gate_raw():
        for name in RAW_GATES:
            gate_task(name)

    @task_group(group_id="gate_marts")
    def gate_marts():
        for name in MARTS_GATES:
            gate_task(name)

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(dbt_project_path=retention_dbt.project_dir()),
        profile_config=ProfileConfig(
            profile_name="retention",
            target_name="warehouse",
            profile_mapping=retention_dbt.warehouse_profile_mapping(WAREHOUSE_CONN_ID),
        ),
        execution_config=ExecutionConfig(dbt_executable_path=retention_dbt.dbt_executable()),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_LS_FILE,
            dbt_ls_path=retention_dbt.ls_file(),
            test_behavior=TestBehavior.AFTER_EACH,
            # a test on two models (relationships) gets its own task after both of them
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,
        ),
        operator_args={
            "install_deps": False,
            "full_refresh": "{{ params.full_refresh }}",
            # Daily runs test only the new window; a full refresh tests every row.
            "vars": {"tests_full_scan": "{{ params.full_refresh }}"},
            # Unit tests check the SQL, not the data: CI runs them, production runs skip them.
            "env": {"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test"},
        },
        default_args=DEFAULT_ARGS,
    )

    @task(outlets=[MARTS_ASSET])
    def publish_marts() -> str:
        """Record the publication the sync checks (the as-of date the gates used), then mark
        the marts as refreshed (downstream DAGs schedule on this Asset)."""
        from datetime import date

        from airflow.sdk import get_current_context

        from retention.sync import publication

        ctx = get_current_context()
        as_of = ctx["params"].get("gate_as_of") or ctx.get("data_interval_end") or ctx["logical_date"]
        publication.publish(date.fromisoformat(as_of) if isinstance(as_of, str) else as_of.date(), ctx["run_id"])
        return "marts"

    gate_raw() >> dbt >> gate_marts() >> publish_marts()


transform_dbt_dag = transform_dbt()
