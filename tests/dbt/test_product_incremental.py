"""Incremental product models: a run after late events equals a full rebuild.

account_usage_daily: late events inside var product_usage_lookback_days (3) of the last built
day are picked up; one older than that is not (the documented cost of reading only the
look-back window), until the next --full-refresh. Health inputs and scores downstream follow.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from product_raw import ProductData, at, build_product, build_world, dbt

from retention import warehouse
from support.databases import create_database

pytestmark = pytest.mark.slow

USAGE = "select * from marts.account_usage_daily order by account_id, activity_date"


def snapshot(url: str) -> dict[tuple[str, str], tuple]:
    """(account_id, day) -> the whole row."""
    with warehouse.connect(url) as conn:
        return {(r[0], r[1].isoformat()): r for r in conn.execute(USAGE).fetchall()}


def day_row(url: str, account: str, day: str) -> tuple | None:
    with warehouse.connect(url) as conn:
        return conn.execute(
            "select total_events, key_events, event_counts from marts.account_usage_daily "
            "where account_id = %s and activity_date = %s", (account, day)).fetchone()


def test_incremental_with_late_events_equals_full_build(warehouse_server_url: str, tmp_path: Path) -> None:
    url = create_database(warehouse_server_url, f"t_product_incr_{uuid.uuid4().hex[:6]}")
    world, _ = build_world()
    world.load(url)  # events up to 2024-06-30: the first run builds everything
    dbt(url, "seed", "--select", "product_event_catalogue", target=tmp_path)
    run = ("run", "--select", "stg_segment__events", "account_usage_daily")
    dbt(url, *run, target=tmp_path)
    before = snapshot(url)
    assert before and max(day for _, day in before) == "2024-06-30"

    late = ProductData()
    late._seq = 10_000_000  # message ids distinct from the world's
    user = "usr_000001_01"
    late.track("acc_000001", user, "Report Created", at("2024-06-28", 23))  # late, inside look-back
    late.track("acc_000001", user, "Campaign Sent", at("2024-06-27", 1), recipients=42)  # day 30-3
    late.track("acc_000002", "usr_000002_09", "Automation Created", at("2024-06-29"))  # new user that day
    late.track("acc_000001", user, "Project Created", at("2024-07-01"))  # a new day, new month partition
    late.track("acc_000001", user, "Report Created", at("2024-06-20"))  # too late: before the window
    old_day = day_row(url, "acc_000001", "2024-06-20")
    late.load(url)

    dbt(url, *run, target=tmp_path)
    incremental = snapshot(url)
    dbt(url, *run, target=tmp_path)  # a rerun changes nothing and duplicates nothing
    assert snapshot(url) == incremental
    assert day_row(url, "acc_000001", "2024-06-20") == old_day  # outside the window: untouched

    dbt(url, *run, "--full-refresh", target=tmp_path)
    full = snapshot(url)
    assert full != before
    assert full.keys() == incremental.keys()
    changed = {key for key in full if full[key] != incremental[key]}
    assert changed == {("acc_000001", "2024-06-20")}  # only the too-late event differs
    assert day_row(url, "acc_000001", "2024-06-20")[0] == old_day[0] + 1
    assert {k for k in full if full[k] != before.get(k)} == {
        ("acc_000001", "2024-06-20"), ("acc_000001", "2024-06-27"), ("acc_000001", "2024-06-28"),
        ("acc_000002", "2024-06-29"), ("acc_000001", "2024-07-01"),
    }
    new_day = day_row(url, "acc_000001", "2024-07-01")
    assert new_day[:2] == (1, 1)


HEALTH = "select * from marts.account_health_daily order by account_id, date"
HEALTH_INPUTS = "select * from intermediate.int_product__health_inputs order by account_id, date"


def table(url: str, sql: str) -> list[tuple]:
    with warehouse.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_incremental_health_equals_full_build(warehouse_server_url: str, tmp_path: Path) -> None:
    """A new day plus late events inside the look-back: the incremental product chain (usage,
    health inputs, health scores with their 7 / 28-day changes) equals a full rebuild."""
    url = create_database(warehouse_server_url, f"t_product_health_incr_{uuid.uuid4().hex[:6]}")
    product, stripe = build_world()
    stripe.load(url)
    product.load(url)
    build_product(url, tmp_path)
    before = table(url, HEALTH)
    assert max(r[1] for r in before).isoformat() == "2024-06-30"

    late = ProductData()
    late._seq = 10_000_000
    late.track("acc_000002", "usr_000002_01", "Report Created", at("2024-06-28"))  # late, inside look-back
    late.track("acc_000004", "usr_000004_09", "Automation Created", at("2024-06-29"))  # a seat new that day
    late.track("acc_000001", "usr_000001_01", "Campaign Sent", at("2024-07-01"), recipients=40)  # a new day
    late.load(url)
    run = ("run", "--select", "account_usage_daily+", "--exclude", "path:models/staging", "path:models/marts/finance",
           "--vars", json.dumps({"product_as_of_date": "2024-07-01"}))
    dbt(url, *run, target=tmp_path)
    incremental = table(url, HEALTH)
    incremental_inputs = table(url, HEALTH_INPUTS)
    assert max(r[1] for r in incremental).isoformat() == "2024-07-01"
    kept = [r for r in before if r[1].isoformat() < "2024-06-27"]  # before the look-back: untouched
    assert [r for r in incremental if r[1].isoformat() < "2024-06-27"] == kept
    assert any(r[1].isoformat() == "2024-07-01" and r[6] is not None for r in incremental)  # change_7d read back

    dbt(url, *run, "--full-refresh", target=tmp_path)
    assert table(url, HEALTH_INPUTS) == incremental_inputs
    assert table(url, HEALTH) == incremental


def test_daily_tests_read_the_days_the_incremental_run_rewrote(warehouse_server_url: str, tmp_path: Path) -> None:
    """account_health_daily's pre-hook records the first day an incremental run replaces;
    its score / tier tests then read exactly the days from there on (a bad row inside fails,
    an untouched older row is not re-read), every row with tests_full_scan or after a full build."""
    url = create_database(warehouse_server_url, f"t_rebuilt_{uuid.uuid4().hex[:6]}")
    product, stripe = build_world()
    stripe.load(url)
    product.load(url)
    build_product(url, tmp_path)
    windows = "select model, rebuilt_from::text from intermediate.dbt_rebuilt_windows order by 1"
    assert table(url, windows) == []  # the first build is a full one: no window

    as_of = ["--vars", json.dumps({"product_as_of_date": "2024-06-30"})]
    dbt(url, "run", "--select", "account_usage_daily+", "--exclude", "path:models/staging",
        "path:models/marts/finance", *as_of, target=tmp_path)
    # last built day 2024-06-30 minus product_usage_lookback_days / product_health_lookback_days (3)
    assert ("account_health_daily", "2024-06-27") in table(url, windows)
    assert ("account_usage_daily", "2024-06-27") in table(url, windows)

    def tier_test(*extra: str) -> bool:
        proc = dbt(url, "test", "--select", "account_health_daily,test_name:accepted_values", *as_of, *extra,
                   target=tmp_path, check=False)
        return proc.returncode == 0

    def set_tier(day: str, tier: str) -> None:
        with warehouse.connect(url) as conn:
            conn.execute("update marts.account_health_daily set tier = %s where ctid = "
                         "(select min(ctid) from marts.account_health_daily where date = %s)", (tier, day))

    assert tier_test()
    set_tier("2024-06-20", "purple")  # before the rewritten days
    assert tier_test()
    assert not tier_test("--vars", json.dumps({"product_as_of_date": "2024-06-30", "tests_full_scan": True}))
    set_tier("2024-06-20", "red")
    set_tier("2024-06-27", "purple")  # the first rewritten day
    assert not tier_test()
    set_tier("2024-06-27", "red")

    dbt(url, "run", "--select", "account_health_daily", "--full-refresh", *as_of, target=tmp_path)
    assert "account_health_daily" not in dict(table(url, windows))
