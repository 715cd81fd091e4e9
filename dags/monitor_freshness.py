"""
### monitor_freshness: an alert when a source stops arriving

Runs every hour, independent of the pipeline, so a stalled source raises an alert even
when no downstream run happens (the raw gates only speak when new data lands). One task
per source reads its bookkeeping table (`retention.quality.freshness`):

* **events:** the newest file of events loaded with rows (`raw.load_manifest`); in
  warehouse-events mode, the newest `received_at` of the destination's `tracks` table;
  with no events (`RETENTION_EVENTS_SOURCE=none`, billing only) no events check;
* **stripe:** each object type's last extraction (`raw.stripe_extract_state`).

Which sources it checks follows `RETENTION_EVENTS_SOURCE` (`retention.sources`,
docs/sources.md).

A source older than its limit (params `events_max_age_hours`, `stripe_max_age_hours`,
default 26 h) fails its task at once with one line saying what is stale, by how much and
where to look; the failure alert every DAG carries (`retention.notifications`) posts it
to Slack (connection `slack_alerts`) and by email where configured. It starts paused like
every DAG: unpause it where the pipeline runs on real sources.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import Param, dag, task

from retention.airflow_defaults import DEFAULT_ARGS
from retention.quality.freshness import DEFAULT_MAX_AGE_HOURS
from retention.sources import mode

SOURCES = mode().freshness_sources


def check_task(source: str):
    @task(task_id=f"check_{source}")
    def check_source(params: dict | None = None) -> str:
        from airflow.sdk.exceptions import AirflowFailException

        from retention.hooks.warehouse import WarehouseHook
        from retention.quality.freshness import check

        limit = timedelta(hours=params[f"{source}_max_age_hours"])
        with WarehouseHook().get_conn(autocommit=True) as conn:
            result = check(conn, source, limit)
        if not result.ok:
            raise AirflowFailException(result.message())  # a retry cannot make data arrive
        return result.message()

    return check_source()


@dag(
    dag_id="monitor_freshness",
    doc_md=__doc__,
    schedule="@hourly",
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["quality", "retention"],
    params={
        f"{source}_max_age_hours": Param(DEFAULT_MAX_AGE_HOURS, type="number", exclusiveMinimum=0,
                                         description=f"alert when the newest {source} data is older than this")
        for source in SOURCES
    },
)
def monitor_freshness():
    for source in SOURCES:
        check_task(source)


monitor_freshness_dag = monitor_freshness()
