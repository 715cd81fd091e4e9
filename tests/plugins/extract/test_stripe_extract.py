"""Stripe extraction + load into a real Postgres, against the local Stripe server."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import psycopg
import pytest

from fakes.stripe_dataset import API_KEY as KEY, DAY, T0, StripeDataset, build_dataset
from retention import warehouse
from retention.extract.stripe import STRIPE_OBJECTS, ExtractPlan, ingest
from retention.hooks.stripe import RetryPolicy, StripeHook, StripeHookError, connection_json
from retention.simulate.stripe_server import serve

FAST = RetryPolicy(max_attempts=25, base_delay=0.0, max_delay=0.0)
INCREMENTAL = ExtractPlan(full_refresh_weekday=None)


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


@pytest.fixture
def dataset(tmp_path: Path) -> StripeDataset:
    return build_dataset(tmp_path, customers=6)


def ingest_all(hook: StripeHook, conn: psycopg.Connection, plan: ExtractPlan, start: int, end: int) -> dict:
    return {name: ingest(hook, conn, name, plan, utc(start), utc(end)) for name in STRIPE_OBJECTS}


def raw(conn: psycopg.Connection, table: str) -> dict[str, dict]:
    rows = conn.execute(f"select id, data, _content_hash, _extracted_at, created from raw.{table}").fetchall()
    return {r[0]: {"data": r[1], "hash": r[2], "at": r[3], "created": r[4]} for r in rows}


def history_versions(conn: psycopg.Connection, table: str, object_id: str) -> list[dict]:
    sql = f"select data from raw.{table}_history where id = %s order by _extracted_at"
    return [r[0] for r in conn.execute(sql, (object_id,))]


def test_plan_chooses_events_or_a_full_refresh():
    now = utc(T0 + 100 * DAY)
    thursday, sunday = utc(T0 + 10 * DAY), utc(T0 + 6 * DAY)
    recent = now - timedelta(days=1)
    assert INCREMENTAL.full_refresh_reason(thursday, recent, now, empty=False) is None
    assert ExtractPlan(full_refresh=True).full_refresh_reason(thursday, recent, now, empty=False) == "asked for"
    assert "first load" in INCREMENTAL.full_refresh_reason(thursday, recent, now, empty=True)
    assert "no events cursor" in INCREMENTAL.full_refresh_reason(thursday, None, now, empty=False)
    assert "30-day event retention" in INCREMENTAL.full_refresh_reason(thursday, now - timedelta(days=31), now, False)
    assert ExtractPlan(full_refresh_weekday=6).full_refresh_reason(sunday, recent, now, empty=False).startswith("weekly")
    assert ExtractPlan(full_refresh_weekday=6).full_refresh_reason(thursday, recent, now, empty=False) is None


def test_first_load_is_full_and_matches_the_source_exactly(dataset, conn, hook_for):
    with serve(dataset.root, api_key=KEY) as server:
        # A window in which nothing was created: the empty tables still force a full load.
        result = ingest_all(hook_for(server.base_url), conn, INCREMENTAL, T0 + 100 * DAY, T0 + 101 * DAY)
    assert {r["mode"] for r in result.values()} == {"full_refresh"}
    for name in ("customers", "products", "prices", "coupons", "subscriptions", "invoices", "discounts"):
        stored = raw(conn, f"stripe_{name}")
        expected = {o["id"]: o for o in dataset.objects[name]}
        assert {i: r["data"] for i, r in stored.items()} == expected, name  # canceled subscriptions included
        assert conn.execute(f"select count(*) from raw.stripe_{name}_history").fetchone()[0] == len(expected)
    subs = result["subscriptions"]["tables"]
    assert subs["stripe_subscriptions"]["inserted"] == 6 and subs["stripe_discounts"]["inserted"] == 2
    assert raw(conn, "stripe_discounts")["di_0003"]["created"] == utc(dataset.get("discounts", "di_0003")["start"])
    assert raw(conn, "stripe_subscriptions")["sub_0003"]["data"]["discounts"] == ["di_0003"]  # ids, as GET returns


def test_rerun_changes_nothing(dataset, conn, hook_for):
    with serve(dataset.root, api_key=KEY) as server:
        hook = hook_for(server.base_url)
        ingest_all(hook, conn, INCREMENTAL, T0, T0 + DAY)
        before = {name: raw(conn, f"stripe_{name}") for name in ("customers", "invoices", "discounts")}
        again = ingest_all(hook, conn, ExtractPlan(full_refresh=True), T0, T0 + DAY)
    for result in again.values():
        for counts in result["tables"].values():
            assert counts["inserted"] == counts["updated"] == counts["history_added"] == 0, counts
            assert counts["unchanged"] == counts["distinct"] > 0
    assert {name: raw(conn, f"stripe_{name}") for name in before} == before  # same rows, same _extracted_at


def test_injected_429s_and_500s_still_yield_exact_counts(dataset, conn, hook_for):
    with serve(dataset.root, api_key=KEY, rate_429=0.25, rate_500=0.25, seed=3, retry_after=0) as server:
        hook = hook_for(server.base_url, retry_policy=FAST)
        result = ingest_all(hook, conn, ExtractPlan(full_refresh=True), T0, T0 + DAY)
    assert server.stats.rate_limited > 0 and server.stats.server_errors > 0
    assert sum(r["api_retries"] for r in result.values()) == server.stats.rate_limited + server.stats.server_errors
    for name in ("customers", "products", "prices", "coupons", "subscriptions", "invoices", "discounts"):
        assert set(raw(conn, f"stripe_{name}")) == dataset.ids(name), name


def test_failure_mid_extraction_writes_nothing(conn, hook_for, tmp_path):
    dataset = build_dataset(tmp_path, customers=60)  # 120 invoices: two pages
    # A seed whose first draw passes and second fails: page 1 loads into the temp table, page 2 dies.
    seed = next(s for s in range(1000) if (rng := random.Random(s)).random() >= 0.5 and rng.random() < 0.5)
    with serve(dataset.root, api_key=KEY, rate_500=0.5, seed=seed) as server:
        hook = hook_for(server.base_url, retry_policy=RetryPolicy(max_attempts=1))
        with pytest.raises(StripeHookError, match="still failing after 1 attempts"):
            ingest(hook, conn, "invoices", ExtractPlan(full_refresh=True), None, None)
    assert server.stats.requests == 2
    assert conn.execute("select count(*) from raw.stripe_invoices").fetchone()[0] == 0
    assert conn.execute("select count(*) from raw.stripe_discounts_history").fetchone()[0] == 0


def run_cli(*argv: str) -> int:
    """``retention stripe-ingest ...`` through the command line's entry point."""
    from retention.cli import main

    return main(list(argv))


def test_cli_stripe_ingest_loads_through_the_same_function(dataset, fresh_db, monkeypatch, capsys):
    with serve(dataset.root, api_key=KEY) as server:
        monkeypatch.setenv("AIRFLOW_CONN_STRIPE_DEFAULT", connection_json(server.base_url, KEY))
        monkeypatch.setenv("WAREHOUSE_URL", fresh_db)
        assert run_cli("stripe-ingest", "--object", "coupons", "--object", "prices") == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [orjson.loads(line)["object"] for line in printed] == ["coupons", "prices"]
    with warehouse.connect(fresh_db) as conn:
        assert set(raw(conn, "stripe_prices")) == dataset.ids("prices")
        assert conn.execute("select to_regclass('raw.stripe_customers')").fetchone()[0] is None
        # its interval is recorded as a DAG run's is: the last complete day, ending at midnight UTC
        ends = dict(conn.execute("select object, interval_end from raw.stripe_extract_state"))
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    assert ends == {"coupons": today, "prices": today}


def test_cli_stripe_ingest_day_sets_the_interval_end_which_never_moves_back(dataset, fresh_db, monkeypatch):
    with serve(dataset.root, api_key=KEY) as server:
        monkeypatch.setenv("AIRFLOW_CONN_STRIPE_DEFAULT", connection_json(server.base_url, KEY))
        monkeypatch.setenv("WAREHOUSE_URL", fresh_db)
        assert run_cli("stripe-ingest", "--object", "prices", "--day", "2030-01-05") == 0
        assert run_cli("stripe-ingest", "--object", "prices", "--day", "2030-01-02") == 0  # a backfill
        assert run_cli("stripe-ingest", "--object", "prices", "--day", "2030-1-x") == 2
    with warehouse.connect(fresh_db) as conn:
        end, = conn.execute("select interval_end from raw.stripe_extract_state where object = 'prices'").fetchone()
    assert end == datetime(2030, 1, 6, tzinfo=timezone.utc)


def test_cli_stripe_ingest_reports_a_bad_key_without_a_traceback(dataset, fresh_db, monkeypatch, capsys):
    with serve(dataset.root, api_key=KEY) as server:
        monkeypatch.setenv("AIRFLOW_CONN_STRIPE_DEFAULT", connection_json(server.base_url, "sk_test_wrong"))
        monkeypatch.setenv("WAREHOUSE_URL", fresh_db)
        assert run_cli("stripe-ingest", "--object", "coupons") == 2
    assert "rejected the API key" in capsys.readouterr().err
