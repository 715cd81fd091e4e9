"""Quality-gate tasks for DAGs: one task per stage runs every gate of that stage.

A stage (``raw``, ``marts``: :func:`retention.quality.suites.stage_gates`) is validated in one
task, so Great Expectations is imported and its file context loaded once per stage, not
once per gate. The task runs every gate even when one fails, logs one line per gate,
returns each gate's result as XCom (``gate``, ``success``, ``evaluated``, ``failed``: the
failing expectations, never row values) and fails, naming every failing gate, if any
failed. A failing expectation fails the task at once (the data will not change on a
retry); errors reaching the warehouse or GX get the task's retries.

Nothing here touches the warehouse or GX at DAG-parse time. A gate judges the data as of
the ``gate_as_of`` param, else the last day its run processes (decided by the run's
``run_interval`` task, :mod:`retention.schedule`), never the wall clock. On a daily run
the raw gates read the newly landed window of ``raw.events`` (from the first day the run
processes); the first build and a ``full_refresh`` run read every row.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

log = logging.getLogger(__name__)


def gate_settings(context: Any, stage: str):
    """The :class:`~retention.quality.suites.GateSettings` of a stage in this run: a daily
    run's raw gates read from the first day it processes; the first build (no marts
    published yet) and a ``full_refresh`` run read every row."""
    from retention.quality.suites import GateSettings
    from retention.schedule import checked_as_of, processed_interval

    full = str((context.get("params") or {}).get("full_refresh")).lower() == "true"
    daily = stage == "raw" and not full and _published_before()
    return GateSettings(as_of=checked_as_of(context), since=processed_interval(context).start if daily else None)


def _published_before() -> bool:
    from retention.hooks.warehouse import WarehouseHook
    from retention.sync import publication, state

    with WarehouseHook().get_conn(autocommit=True) as conn:
        if conn.execute("select to_regclass(%s)", (f"{state.SCHEMA}.mart_publications",)).fetchone()[0] is None:
            return False
        return publication.latest(conn) is not None


def stage_gate_task(stage: str, **kwargs: Any):
    """A task validating every gate of ``stage`` in the configured mode (:func:`retention.quality.suites.stage_gates`)."""
    from airflow.sdk import task

    from retention.quality.suites import stage_gates

    names = stage_gates(stage)

    @task(task_id=f"gate_{stage}", multiple_outputs=False, doc_md=f"Quality gates: {', '.join(names)}", **kwargs)
    def gate() -> list[dict[str, Any]]:
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException

        from retention.config import settings
        from retention.hooks.warehouse import WarehouseHook
        from retention.quality.gate import file_context, run_gates

        ctx = get_current_context()
        checks = gate_settings(ctx, stage)
        log.info("gate_%s as of %s: %s; raw.events read %s", stage, checks.as_of, ", ".join(names),
                 f"from {checks.window_start()} (daily run)" if checks.since else "whole (first build or full refresh)")
        cfg = settings()
        outcomes = run_gates(
            WarehouseHook().url, names, checks, context=file_context(cfg.expectations_dir),
            raise_on_failure=False, keep_days=cfg.gx_results_keep_days,
        )
        results = [asdict(o) for o in outcomes]
        failed = [o for o in outcomes if not o.success]
        if failed:
            ctx["ti"].xcom_push(key="return_value", value=results)
            detail = "; ".join(f"{o.gate}: {', '.join(o.failed)}" for o in failed)
            raise AirflowFailException(f"gate_{stage}: {len(failed)} of {len(outcomes)} gates failed: {detail}")
        return results

    return gate()
