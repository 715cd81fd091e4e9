"""Stripe billing -> `raw.stripe_*`, daily.

One task per Stripe object type (customers, products, prices, coupons, subscriptions,
invoices; discounts arrive expanded on subscriptions and invoices). Each reads Stripe's
Events API since its cursor and applies the newest event of every object changed since
(created, updated, cancelled, paid, voided, deleted), or, on a full refresh, lists every
object; it upserts in one transaction into `raw.stripe_<object>` (latest version per id)
and `raw.stripe_<object>_history` (every distinct version). Reruns change nothing. Each
task returns its counts through XCom.

**What a run processes:** the first task, `run_interval`, decides the day once for every
kind of run (`retention.schedule`, docs/scheduling.md): a run dated D (scheduled, backfill
or manual with that date; the scheduled one starts at D+1 00:00) processes day D; the
`day` param, that day; a manual run without a date, the last complete day before it was
triggered. The day chooses the weekly full refresh; events are read up to now. The last
task, `publish`, updates the Assets of every raw Stripe table once, when all objects are
in, with that day in the event's `extra` (what `transform_dbt` processes).

**No two writers:** each task runs one run at a time (`max_active_tis_per_dag=1`) and
holds a sole-writer lock on its tables while it writes (`retention.schedule.sole_writer`),
so backfill runs (several at once) never write the same tables concurrently, including
`raw.stripe_discounts`, which subscriptions and invoices both write.

A **full refresh** runs on the first load, when the cursor is older than Stripe's 30-day
event retention (said in the log), on the weekly `full_refresh_weekday` run, or when
triggered with `full_refresh: true`; one that lists far fewer objects than the table
held (`max_count_drop`) stops as cut short before writing anything.
See `retention.extract.stripe` and docs/stripe_ingestion.md.

**Raw tables:** the first task after `run_interval`, `raw_schema`, creates every raw table
the project reads if missing (`retention.load.schema.ensure_schema`; a no-op once they
exist), so a team whose events are in the warehouse, or who has none, builds without
ever running `ingest_events` (docs/sources.md).

Connections: `stripe_default` (password = secret API key, host = API base URL, empty for
api.stripe.com) and `warehouse`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from retention.airflow_defaults import DEFAULT_ARGS, RAW_ASSETS
from retention.extract.stripe import STRIPE_OBJECTS
from retention.schedule import day_param, interval_task, publish_task

STRIPE_TABLES = dict.fromkeys(table for spec in STRIPE_OBJECTS.values() for table in spec.tables)
STRIPE_ASSETS = [RAW_ASSETS[table] for table in STRIPE_TABLES]


def ingest_task(name: str, interval):
    """The task that extracts and loads one Stripe object type."""

    @task(task_id=f"ingest_{name}", max_active_tis_per_dag=1)
    def ingest_object(interval: dict[str, str], params: dict[str, Any] | None = None) -> dict[str, Any]:
        from retention.extract.stripe import ExtractPlan, ingest
        from retention.hooks.stripe import StripeHook
        from retention.hooks.warehouse import WarehouseHook
        from retention.schedule import RunInterval, sole_writer

        plan = ExtractPlan(
            full_refresh=params["full_refresh"],
            full_refresh_weekday=params["full_refresh_weekday"],
            max_count_drop=params["max_count_drop"],
        )
        days = RunInterval.from_xcom(interval)
        hook = WarehouseHook()
        with hook.get_conn(autocommit=True) as lock_conn, sole_writer(lock_conn, STRIPE_OBJECTS[name].tables):
            with hook.get_conn() as conn:
                return ingest(StripeHook(), conn, name, plan, days.start_at, days.end_at)

    return ingest_object(interval)


@dag(
    schedule=CronTriggerTimetable("@daily", timezone="UTC", interval=timedelta(days=1)),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["ingestion", "billing", "stripe"],
    doc_md=__doc__,
    max_active_runs=1,
    params={
        "day": day_param(),
        "full_refresh": Param(False, type="boolean", description="re-list every object, ignoring the interval"),
        "full_refresh_weekday": Param(
            6, type=["null", "integer"], minimum=0, maximum=6,
            description="weekly full refresh on runs whose interval starts on this weekday (0=Mon, 6=Sun; null: never)",
        ),
        "max_count_drop": Param(
            0.25, type="number", minimum=0, maximum=1,
            description="a full refresh listing fewer than (1 - this) x the table's live rows stops as cut short",
        ),
    },
)
def ingest_stripe():
    @task
    def raw_schema() -> None:
        from retention.hooks.warehouse import WarehouseHook
        from retention.load.schema import ensure_schema

        with WarehouseHook().get_conn(autocommit=True) as conn:
            ensure_schema(conn)

    interval = interval_task()
    tasks = {name: ingest_task(name, interval) for name in STRIPE_OBJECTS}
    interval >> raw_schema() >> list(tasks.values())
    # Both write raw.stripe_discounts: one after the other, never two writers at once.
    tasks["subscriptions"] >> tasks["invoices"]
    list(tasks.values()) >> publish_task(STRIPE_ASSETS, interval)


ingest_stripe_dag = ingest_stripe()
