"""Stripe billing -> `raw.stripe_*`, daily.

One task per Stripe object type (customers, products, prices, coupons, subscriptions,
invoices; discounts arrive expanded on subscriptions and invoices). Each reads Stripe's
Events API since its cursor and applies the newest event of every object changed since
(created, updated, cancelled, paid, voided, deleted), or, on a full refresh, lists every
object; it upserts in one transaction into `raw.stripe_<object>` (latest version per id)
and `raw.stripe_<object>_history` (every distinct version). Reruns change nothing. Each
task updates the Assets of the raw tables it writes and returns its counts through XCom.

A **full refresh** runs on the first load, when the cursor is older than Stripe's 30-day
event retention (said in the log), on the weekly `full_refresh_weekday` run, or when
triggered with `full_refresh: true`; one that lists far fewer objects than the table
held (`max_count_drop`) stops as cut short before writing anything.
See `retention.extract.stripe` and docs/stripe_ingestion.md.

Connections: `stripe_default` (password = secret API key, host = API base URL, empty for
api.stripe.com) and `warehouse`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from retention.airflow_defaults import DEFAULT_ARGS, RAW_ASSETS
from retention.extract.stripe import STRIPE_OBJECTS


def ingest_task(name: str):
    """The task that extracts and loads one Stripe object type."""

    @task(task_id=f"ingest_{name}", outlets=[RAW_ASSETS[table] for table in STRIPE_OBJECTS[name].tables])
    def ingest_object(
        params: dict[str, Any] | None = None,
        data_interval_start: datetime | None = None,
        data_interval_end: datetime | None = None,
    ) -> dict[str, Any]:
        from retention.extract.stripe import ExtractPlan, ingest
        from retention.hooks.stripe import StripeHook
        from retention.hooks.warehouse import WarehouseHook

        plan = ExtractPlan(
            full_refresh=params["full_refresh"],
            full_refresh_weekday=params["full_refresh_weekday"],
            max_count_drop=params["max_count_drop"],
        )
        with WarehouseHook().get_conn() as conn:
            return ingest(StripeHook(), conn, name, plan, data_interval_start, data_interval_end)

    return ingest_object()


@dag(
    schedule=CronTriggerTimetable("@daily", timezone="UTC", interval=timedelta(days=1)),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["ingestion", "billing", "stripe"],
    doc_md=__doc__,
    max_active_runs=1,
    params={
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
    tasks = {name: ingest_task(name) for name in STRIPE_OBJECTS}
    # Both write raw.stripe_discounts: one after the other, never two writers at once.
    tasks["subscriptions"] >> tasks["invoices"]


ingest_stripe_dag = ingest_stripe()
