"""
### sync_segments

Pushes the segments of `marts.segment_members` to the tools that act on them, as
configured in `syncs.yml` (`RETENTION_SYNC_CONFIG` for another file; docs/sync.md).
Scheduled on the `marts` Asset, which `transform_dbt` updates only after its quality
gates passed and the publication is recorded; a run started any other way still syncs
only published marts (each sync checks `activation.mart_publications` and refuses
anything else with one line).

* **plan.<kind>:** per destination kind, the syncs to run (the enabled ones, or the
  `syncs` param). XCom carries names only.
* **sync_<kind>:** one mapped task per sync (dynamic task mapping), in the Airflow pool
  `sync_<kind>` of its destination, so parallel runs share one rate budget. Each calls
  `retention.sync.runs.run_one`, the same function as `retention sync`: diff in the
  warehouse, safety limits, row-by-row state. It returns counts, never rows. A refused
  run (marts not published, another run of that sync in progress, a bad configuration)
  fails at once without retries; anything else gets the task's retries (a rerun sends
  only what is still unconfirmed).
* **summary:** one line per sync; fails the run if a sync halted (change threshold, or
  an empty source), after every other sync has run.
* **report:** once every sync has finished, whatever it did, rebuilds the HTML retention
  report (`retention.report`, the same function as `retention report`) from the marts
  and the sync results; the Airflow UI shows it under Browse > Retention report.

Params: `dry_run` (counts only: nothing sent, no state written), `force` (send above the
change threshold), `syncs` (names to run, enabled or not; empty: every enabled sync).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, TaskGroup, dag, task

from retention.airflow_defaults import DEFAULT_ARGS, MARTS_ASSET
from retention.sync.destinations.registry import kinds, pool_name


def _sync(name: str) -> dict:
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    from retention.hooks.warehouse import WarehouseHook
    from retention.sync import runs
    from retention.sync.cli import format_outcome
    from retention.sync.config import SyncConfigError
    from retention.sync.diff import SourceError
    from retention.sync.errors import SyncLocked
    from retention.sync.publication import NotPublished

    params = get_current_context()["params"]
    try:
        outcome = runs.run_one(WarehouseHook().url, name, dry_run=bool(params["dry_run"]),
                               force=bool(params["force"]))
    except (NotPublished, SyncLocked, SyncConfigError, SourceError) as exc:  # a retry cannot change these
        raise AirflowFailException(str(exc)) from None
    print(format_outcome(outcome))
    return outcome.summary()


@dag(
    dag_id="sync_segments",
    doc_md=__doc__,
    schedule=[MARTS_ASSET],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["sync", "marts", "retention"],
    params={
        "dry_run": Param(False, type="boolean", description="count what would be sent; send and write nothing"),
        "force": Param(False, type="boolean", description="send even above a sync's change threshold"),
        "syncs": Param([], type="array", items={"type": "string"},
                       description="names of the syncs to run (empty: every enabled sync)"),
    },
)
def sync_segments():
    @task
    def plan(kind: str) -> list[str]:
        """The names of the syncs of one destination kind to run."""
        from airflow.sdk import get_current_context

        from retention.sync import runs

        names = runs.plan(get_current_context()["params"]["syncs"] or None)[kind]
        print(f"{kind}: {', '.join(names) or 'no sync'}")
        return names

    @task(trigger_rule="none_failed")
    def summary(by_kind: dict) -> dict[str, dict]:
        from airflow.sdk.exceptions import AirflowFailException

        outcomes = {r["sync"]: r for rs in by_kind.values() for r in (rs or [])}
        for name, r in sorted(outcomes.items()):
            print(f"{name}: {r['status']}, sent {r['sent']}, failed {r['failed']}"
                  + (f", halted: {r['halted_reason']}" if r["halted_reason"] else ""))
        halted = sorted(n for n, r in outcomes.items() if r["status"] == "halted")
        if halted:
            raise AirflowFailException(f"halted, nothing sent: {', '.join(halted)} (see each sync's task log)")
        return {n: {k: r[k] for k in ("status", "sent", "added", "updated", "removed", "failed")}
                for n, r in outcomes.items()}

    results = {}
    with TaskGroup("plan"):
        planned = {kind: plan.override(task_id=kind)(kind) for kind in sorted(kinds())}
    for kind, names in planned.items():
        sync_kind = task(_sync, task_id=f"sync_{kind}", pool=pool_name(kind),
                         map_index_template="{{ task.op_kwargs['name'] }}")
        results[kind] = sync_kind.expand(name=names)
    @task(trigger_rule="all_done")
    def report() -> str:
        from retention.hooks.warehouse import WarehouseHook
        from retention.report import build_report, default_path

        result = build_report(WarehouseHook().url, default_path())
        return f"{result.path} ({len(result.rendered)} charts)"

    # After every sync, whatever they did; beside the summary, not after it, so the summary
    # stays a leaf and a halted or refused sync still fails the run.
    summary(results)
    list(results.values()) >> report()


sync_segments_dag = sync_segments()
