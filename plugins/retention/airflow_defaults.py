"""What every DAG shares: owner, retries, the failure alert, the tag allow-list and the raw-table Assets.

Importing this module is cheap (no database, network or file work), so DAG files can
import it at parse time.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import Asset

from retention.notifications import FailureAlert

OWNER = "data-platform"
# Delay before the first retry, doubled for each further one (Airflow 3.3 reads
# retry_exponential_backoff as the multiplier: True would be 1, a constant delay), at most
# max_retry_delay. Tests set RETENTION_RETRY_DELAY_S low so that a retried task does not
# sit idle for half a minute.
RETRY_DELAY = timedelta(seconds=float(os.environ.get("RETENTION_RETRY_DELAY_S", "30")))

DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": RETRY_DELAY,
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    "on_failure_callback": FailureAlert(),  # one Slack (and email) alert per task that fails for good
}

# DAG tags must come from this list (checked by tests/dags/test_dag_integrity.py).
ALLOWED_TAGS = frozenset(
    {"ingestion", "billing", "stripe", "events", "dbt", "marts", "quality", "sync", "retention"}
)

# One Asset per raw table, named after it; downstream DAGs schedule on these.
RAW_TABLES = (
    "stripe_customers",
    "stripe_products",
    "stripe_prices",
    "stripe_coupons",
    "stripe_discounts",
    "stripe_subscriptions",
    "stripe_invoices",
    "events",
    "identifies",
    "groups",
    "nps_responses",
    "support_tickets",
)


def raw_asset(table: str) -> Asset:
    if table not in RAW_TABLES:
        raise ValueError(f"unknown raw table {table!r}; add it to RAW_TABLES")
    return Asset(name=f"raw.{table}", uri=f"warehouse://raw/{table}", group="raw")


RAW_ASSETS = {table: raw_asset(table) for table in RAW_TABLES}
MARTS_ASSET = Asset(name="marts", uri="warehouse://marts", group="marts")  # updated by transform_dbt
