"""Build raw.stripe_* tables exactly per docs/DATA_CONTRACTS.md section 2 and fill them with
small hand-made Stripe objects (fields as in Stripe's fixtures3.json: line items carry
pricing.price_details.price, period, quantity, amount, discount_amounts[] and
parent.subscription_item_details)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from retention import warehouse

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"

STRIPE_OBJECTS = ("customers", "products", "prices", "coupons", "discounts", "subscriptions", "invoices")

_ids = itertools.count(1)


def ts(day: str) -> int:
    """'2024-01-15' or '2024-01-15T10:00' (UTC) -> Unix seconds."""
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp())


def create_raw_tables(conn: psycopg.Connection) -> None:
    """The ingestion's own DDL for raw.stripe_* and their _history tables."""
    from retention.load.stripe import ensure_tables

    ensure_tables(conn, [f"stripe_{obj}" for obj in STRIPE_OBJECTS])


@dataclass
class StripeData:
    """Stripe objects by type, written to raw with :meth:`load`."""

    objects: dict[str, list[dict]] = field(default_factory=lambda: {o: [] for o in STRIPE_OBJECTS})

    def customer(self, account_id: str) -> str:
        cid = f"cus_{account_id}"
        self.objects["customers"].append(
            {"id": cid, "object": "customer", "created": ts("2023-01-01"), "metadata": {"account_id": account_id}}
        )
        return cid

    def price(
        self, pid: str, unit_amount: int | None, interval: str | None = "month", count: int = 1,
        usage_type: str = "licensed", currency: str = "usd", product: str = "prod_app",
    ) -> str:
        recurring = (
            {"interval": interval, "interval_count": count, "usage_type": usage_type, "meter": None}
            if interval
            else None
        )
        self.objects["prices"].append(
            {
                "id": pid, "object": "price", "created": ts("2023-01-01"), "currency": currency,
                "product": product, "type": "recurring" if interval else "one_time",
                "billing_scheme": "per_unit", "unit_amount": unit_amount, "recurring": recurring,
            }
        )
        return pid

    def invoice(
        self, customer: str, created: str, lines: list[dict], *, status: str = "paid",
        paid: str | None = "same", subscription: str | None = None,
    ) -> str:
        iid = f"in_{next(_ids):05d}"
        created_ts = ts(created)
        paid_ts = created_ts if paid == "same" else (ts(paid) if paid else None)
        for line in lines:
            line["invoice"] = iid
        self.objects["invoices"].append(
            {
                "id": iid, "object": "invoice", "customer": customer, "created": created_ts,
                "currency": lines[0]["currency"], "status": status, "collection_method": "charge_automatically",
                "billing_reason": "subscription_cycle", "due_date": None,
                "status_transitions": {
                    "finalized_at": None if status == "draft" else created_ts,
                    "paid_at": paid_ts if status == "paid" else None,
                    "voided_at": created_ts if status == "void" else None,
                    "marked_uncollectible_at": None,
                },
                "parent": {
                    "type": "subscription_details",
                    "subscription_details": {"subscription": subscription or lines[0].get("_sub"), "metadata": {}},
                },
                "lines": {"object": "list", "data": [_public(l) for l in lines], "has_more": False},
                "total": sum(l["amount"] - sum(d["amount"] for d in l["discount_amounts"]) for l in lines),
            }
        )
        return iid

    def load(self, url: str) -> None:
        with warehouse.connect(url) as conn:
            create_raw_tables(conn)
            for obj, rows in self.objects.items():
                for row in rows:
                    payload = json.dumps(row, sort_keys=True)
                    digest = hashlib.sha256(payload.encode()).hexdigest()
                    for table in (f"raw.stripe_{obj}", f"raw.stripe_{obj}_history"):
                        conn.execute(
                            f"insert into {table} (id, created, data, _extracted_at, _content_hash) "
                            f"values (%s, to_timestamp(%s), %s::jsonb, now(), %s)",
                            (row["id"], row["created"], payload, digest),
                        )


def _public(line: dict) -> dict:
    return {k: v for k, v in line.items() if not k.startswith("_")}


def line(
    sub: str, price: str, start: str, end: str, *, amount: int, quantity: int = 1,
    discount: int = 0, item: str | None = None, proration: bool = False, currency: str = "usd",
) -> dict:
    """A subscription invoice line for `sub`/`item` billing `price` over [start, end)."""
    return {
        "id": f"il_{next(_ids):05d}",
        "object": "line_item",
        "_sub": sub,
        "amount": amount,
        "currency": currency,
        "quantity": quantity,
        "discount_amounts": [{"amount": discount, "discount": "di_x"}] if discount else [],
        "discountable": True,
        "period": {"start": ts(start), "end": ts(end)},
        "pricing": {"type": "price_details", "price_details": {"price": price, "product": "prod_app"}},
        "parent": {
            "type": "subscription_item_details",
            "subscription_item_details": {
                "subscription": sub, "subscription_item": item or f"si_{sub}", "proration": proration,
                "invoice_item": None,
            },
        },
        "taxes": [],
    }


def one_off_line(price: str, day: str, amount: int) -> dict:
    """A one-off invoice item line (never MRR)."""
    return {
        "id": f"il_{next(_ids):05d}", "object": "line_item", "amount": amount, "currency": "usd",
        "quantity": 1, "discount_amounts": [], "period": {"start": ts(day), "end": ts(day)},
        "pricing": {"type": "price_details", "price_details": {"price": price, "product": "prod_app"}},
        "parent": {
            "type": "invoice_item_details",
            "invoice_item_details": {"invoice_item": "ii_x", "proration": False, "subscription": None},
        },
        "taxes": [],
    }




def run_dbt(url: str, target_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the project's dbt (a subprocess, as `retention dbt` does) against database `url`.
    `target_dir` keeps this run's artifacts apart from concurrent runs."""
    env = {**os.environ, **warehouse.dbt_env(url)}
    dbt = str(Path(sys.executable).parent / "dbt")
    return subprocess.run(
        [dbt, *args, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
         "--target-path", str(target_dir), "--log-path", str(target_dir / "logs")],
        env=env, capture_output=True, text=True, cwd=DBT_PROJECT,
    )


def build_finance(url: str, target_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`dbt build` of the billing side only: the project's `finance` selector (selectors.yml)."""
    return run_dbt(url, target_dir, "build", "--selector", "finance", *args)


def ingest_simulated_stripe(url: str, company_dir: Path) -> None:
    """Land a `retention simulate` company's Stripe objects in raw the production way: the
    local Stripe server serves its files, the ingestion's extract + load read them."""
    from datetime import timedelta

    from retention.extract.stripe import STRIPE_OBJECTS as INGESTED, ExtractPlan, ingest
    from retention.hooks.stripe import StripeHook, connection_json
    from retention.simulate.stripe_server import serve

    key = "sk_test_finance"
    with serve(company_dir, api_key=key) as server:
        previous = os.environ.get("AIRFLOW_CONN_STRIPE_DEFAULT")
        os.environ["AIRFLOW_CONN_STRIPE_DEFAULT"] = connection_json(server.base_url, key)
        try:
            hook = StripeHook()
            plan = ExtractPlan(lookback=timedelta(days=3), full_refresh=True, full_refresh_weekday=None)
            with warehouse.connect(url, autocommit=True) as conn:
                for name in INGESTED:
                    ingest(hook, conn, name, plan, None, None)
        finally:
            if previous is None:
                os.environ.pop("AIRFLOW_CONN_STRIPE_DEFAULT")
            else:
                os.environ["AIRFLOW_CONN_STRIPE_DEFAULT"] = previous
