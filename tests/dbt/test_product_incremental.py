"""Incremental product models: a run after late events equals a full rebuild.

int_product__usage_daily rebuilds from the earliest day of the events loaded since its last
run (raw.changed_days, which the loader writes; tests/dbt/product_raw.py writes it as the
loader does), so late events of any age are picked up. Every incremental model downstream
follows (test_every_incremental_model_equals_a_full_rebuild; the billing ones after Stripe
changes in tests/dbt/test_finance_incremental.py). With events from a warehouse (no loader)
the fixed look-back applies: tests/dbt/test_events_warehouse_mode.py.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from finance_raw import ts
from product_raw import ProductData, at, build_product, build_world, dbt

from retention import dbt as retention_dbt
from retention import warehouse
from retention.load import landed
from retention.load.stripe import load_batches, to_row
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
    run = ("run", "--select", "stg_segment__events", "int_product__usage_daily", "account_usage_daily")
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
    late.track("acc_000001", user, "Report Created", at("2024-06-20"))  # 10 days late
    old_day = day_row(url, "acc_000001", "2024-06-20")
    late.load(url)

    dbt(url, *run, target=tmp_path)
    incremental = snapshot(url)
    assert day_row(url, "acc_000001", "2024-06-20")[0] == old_day[0] + 1  # older than any look-back
    with warehouse.connect(url) as conn:  # consumed: the next run rebuilds nothing old
        assert conn.execute("select count(*) from raw.changed_days where source = 'events'").fetchone()[0] == 0
        assert conn.execute("select rebuilt_from::text from intermediate.dbt_rebuilt_windows "
                            "where model = 'int_product__usage_daily'").fetchone()[0] == "2024-06-20"
        # left for every incremental model reading the usage (none of them ran here; the
        # health inputs read its first day)
        assert {r[0] for r in conn.execute("select consumer from intermediate.dbt_pending_days")} == {
            "int_product__health_signals", "int_product__health_inputs", "int_product__activation",
            "int_product__usage_monthly", "account_stickiness_monthly",
        }
    dbt(url, *run, target=tmp_path)  # a rerun changes nothing and duplicates nothing
    assert snapshot(url) == incremental
    with warehouse.connect(url) as conn:  # and reads only the days it has not built
        assert conn.execute("select rebuilt_from::text from intermediate.dbt_rebuilt_windows "
                            "where model = 'int_product__usage_daily'").fetchone()[0] == "2024-07-02"

    dbt(url, *run, "--full-refresh", target=tmp_path)
    full = snapshot(url)
    assert full != before
    assert full == incremental
    assert {k for k in full if full[k] != before.get(k)} == {
        ("acc_000001", "2024-06-20"), ("acc_000001", "2024-06-27"), ("acc_000001", "2024-06-28"),
        ("acc_000002", "2024-06-29"), ("acc_000001", "2024-07-01"),
    }
    new_day = day_row(url, "acc_000001", "2024-07-01")
    assert new_day[:2] == (1, 1)


def table(url: str, sql: str) -> list[tuple]:
    with warehouse.connect(url) as conn:
        return conn.execute(sql).fetchall()


# Every incremental model: its relation, and the lineage columns that record what a row
# was computed with (they differ between a row kept by a daily run and its rebuilt copy).
INCREMENTAL = {
    "int_product__usage_daily": ("intermediate", ()),
    "int_product__usage_monthly": ("intermediate", ()),
    "int_product__health_signals": ("intermediate", ()),
    "int_product__health_inputs": ("intermediate", ()),
    "int_product__health_daily": ("intermediate", ()),
    "int_product__activation": ("intermediate", ("usage_through",)),
    "int_billing_account_spells": ("intermediate", ("line_count", "lines_extracted_at", "as_of_at")),
    "account_stickiness_monthly": ("marts", ()),
}
# covered elsewhere: the billing models after Stripe changes (tests/dbt/test_finance_incremental.py);
# the membership history is not rebuildable (full_refresh = false), checked here against segment_members
ELSEWHERE = {"int_invoice_lines_normalized", "mrr_monthly", "segment_membership_history"}


def rows_of(url: str, model: str) -> list[tuple]:
    schema, lineage = INCREMENTAL[model]
    with warehouse.connect(url) as conn:
        cols = [r[0] for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
            "order by ordinal_position", (schema, model)).fetchall() if r[0] not in lineage]
        listed = ", ".join(f'"{c}"' for c in cols)
        return conn.execute(f"select {listed} from {schema}.{model} order by {listed}").fetchall()


def billing_by_day(url: str, account: str, through: date = date(2024, 7, 1)) -> dict[str, tuple]:
    """The account's billing spells expanded to days: day -> (is_paying, mrr, paid_seats)."""
    days = {}
    for valid_from, valid_to, *state in table(
            url, "select valid_from, valid_to, is_paying, mrr, paid_seats from intermediate.int_billing_account_spells"
                 f" where account_id = '{account}'"):
        day = valid_from
        while day <= min(valid_to or through, through):
            days[day.isoformat()] = tuple(state)
            day += timedelta(days=1)
    return days


def test_every_incremental_model_is_checked_against_a_full_rebuild() -> None:
    listing = [json.loads(line) for line in retention_dbt.ls_file().read_text().splitlines()]
    incremental = {n["name"] for n in listing
                   if n["resource_type"] == "model" and n["config"]["materialized"] == "incremental"}
    assert incremental == set(INCREMENTAL) | ELSEWHERE


def test_every_incremental_model_equals_a_full_rebuild(warehouse_server_url: str, tmp_path: Path) -> None:
    """A new day, late events (inside the 3-day look-back and 20 days late), events retracted,
    a new account signing up and an April invoice voided in Stripe since: every incremental
    product model after the daily run equals its full rebuild, the days before the earliest
    change are untouched, and the membership history's open entries are the members."""
    url = create_database(warehouse_server_url, f"t_product_incr_all_{uuid.uuid4().hex[:6]}")
    product, stripe = build_world()
    stripe.load(url)
    product.load(url)
    build_product(url, tmp_path)
    health_before = table(url, "select * from marts.account_health_daily order by account_id, date")
    assert max(r[1] for r in health_before).isoformat() == "2024-06-30"

    late = ProductData()
    late._seq = 10_000_000
    late.track("acc_000002", "usr_000002_01", "Report Created", at("2024-06-28"))  # late, inside look-back
    late.track("acc_000004", "usr_000004_09", "Automation Created", at("2024-06-29"))  # a seat new that day
    late.track("acc_000001", "usr_000001_01", "Campaign Sent", at("2024-07-01"), recipients=40)  # a new day
    late.track("acc_000003", "usr_000003_01", "Report Created", at("2024-06-30", 23))  # week of Jul 1 / month end
    late.track("acc_000005", "usr_000005_01", "Report Created", at("2024-06-10"))  # 20 days late
    users = late.account("acc_000099", "2024-06-29", "Late Co", "starter", 2)  # signs up inside the look-back
    late.track("acc_000099", users[0], "Project Created", at("2024-06-29", 10))
    late.track("acc_000099", users[1], "Report Created", at("2024-07-01", 10))
    late.load(url)
    # events retracted inside the look-back (an erasure, a file re-landed without them): the
    # daily run replaces those days, so the account's day of usage goes as in a full rebuild
    usage_on = "select count(*) from intermediate.int_product__usage_daily where account_id = %s and activity_date = %s"
    with warehouse.connect(url) as conn:
        retracted = conn.execute(
            "select account_id, (timestamp at time zone 'UTC')::date from raw.events where account_id <> 'acc_000002'"
            " and timestamp >= '2024-06-28' and timestamp < '2024-06-29' order by 1 limit 1").fetchone()
        assert conn.execute(usage_on, retracted).fetchone()[0] == 1
        conn.execute("delete from raw.events where account_id = %s and (timestamp at time zone 'UTC')::date = %s",
                     retracted)
        landed.record_changed(conn, "events", retracted[1])  # as the loader does for a file loaded again
    # Stripe restates April: acc_000004's invoice of 2024-04-05 voided, ingested as the
    # ingestion does (an upsert with a new extraction time); billing has no ledger of days
    (voided,) = [i for i in stripe.objects["invoices"]
                 if i["customer"] == "cus_acc_000004" and i["created"] == ts("2024-04-05")]
    voided.update(status="void")
    voided["status_transitions"].update(paid_at=None, voided_at=voided["created"])
    with warehouse.connect(url, autocommit=True) as conn:
        load_batches(conn, ["stripe_invoices"], iter([{"stripe_invoices": [to_row(voided)]}]),
                     datetime.now(timezone.utc))
    spells_before = billing_by_day(url, "acc_000004")
    as_of = ["--vars", json.dumps({"product_as_of_date": "2024-07-01"})]
    dbt(url, "run", *as_of, target=tmp_path)
    daily = {m: rows_of(url, m) for m in INCREMENTAL}
    spells_after = billing_by_day(url, "acc_000004")
    voided_from = min(d for d in set(spells_before) | set(spells_after) if spells_after.get(d) != spells_before.get(d))
    assert "2024-04-01" <= voided_from <= "2024-04-05" and not spells_after[voided_from][0]  # no longer paying
    with warehouse.connect(url) as conn:
        assert conn.execute(usage_on, retracted).fetchone()[0] == 0
        # the health inputs and scores rebuilt from the first day whose billing changed, the
        # signals from the 20-day-late event's
        assert dict(conn.execute("select model, rebuilt_from::text from intermediate.dbt_rebuilt_windows"
                                 " where model like 'int_product__health_%'").fetchall()) == {
            "int_product__health_signals": "2024-06-10", "int_product__health_inputs": voided_from,
            "int_product__health_daily": voided_from}
    health = table(url, "select * from marts.account_health_daily order by account_id, date")
    assert [r for r in health if r[1].isoformat() < voided_from] == \
        [r for r in health_before if r[1].isoformat() < voided_from]  # before the void: untouched
    # acc_000004 pays nothing from then (is_paying, r[16]); the others' reach scores move with
    # it (value per dollar is ranked among all accounts of the day): the full rebuild below
    assert [r[16] for r in health if r[0] == "acc_000004" and r[1].isoformat() == voided_from] == [False]
    # the 20-day-late event is in the 28-day windows of that day on (key_events_28d, r[21])
    assert [r[21] for r in health if r[0] == "acc_000005" and r[1].isoformat() == "2024-06-20"] == \
        [r[21] + 1 for r in health_before if r[0] == "acc_000005" and r[1].isoformat() == "2024-06-20"]
    assert any(r[1].isoformat() == "2024-07-01" and r[6] is not None for r in health)  # change_7d read back
    assert any(r[0] == "acc_000099" for r in daily["int_product__activation"])
    with warehouse.connect(url) as conn:
        members = {r[0] for r in conn.execute("select member_key from marts.segment_members")}
        open_entries = {r[0] for r in conn.execute(
            "select member_key from marts.segment_membership_history where exited_on is null")}
    assert open_entries == members

    dbt(url, "run", "--full-refresh", *as_of, target=tmp_path)
    for model in INCREMENTAL:
        assert rows_of(url, model) == daily[model], model


def test_daily_tests_read_the_days_the_incremental_run_rewrote(warehouse_server_url: str, tmp_path: Path) -> None:
    """int_product__health_daily records the first day an incremental run replaces;
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
    late = ProductData()
    late._seq = 10_000_000
    late.track("acc_000002", "usr_000002_01", "Report Created", at("2024-06-27"))  # landed 3 days late
    late.load(url)
    dbt(url, "run", "--select", "int_product__usage_daily+", "--exclude", "path:models/staging",
        "path:models/marts/finance", *as_of, target=tmp_path)
    # the usage rebuilds from the late event's day (raw.changed_days), the models reading it
    # from the day it rebuilt (dbt_pending_days), the stickiness as of the day before
    assert {m: dict(table(url, windows)).get(m) for m in INCREMENTAL if m.startswith("int_product__")} == {
        "int_product__usage_daily": "2024-06-27", "int_product__health_signals": "2024-06-27",
        "int_product__health_inputs": "2024-06-27", "int_product__health_daily": "2024-06-27",
        "int_product__activation": "2024-06-27", "int_product__usage_monthly": "2024-06-27",
    }

    def tier_test(*extra: str) -> bool:
        proc = dbt(url, "test", "--select", "int_product__health_daily,test_name:column_checks", *as_of, *extra,
                   target=tmp_path, check=False)
        return proc.returncode == 0

    def set_tier(day: str, tier: str) -> None:
        with warehouse.connect(url) as conn:
            conn.execute("update intermediate.int_product__health_daily set tier = %s where ctid = "
                         "(select min(ctid) from intermediate.int_product__health_daily where date = %s)", (tier, day))

    assert tier_test()
    set_tier("2024-06-20", "purple")  # before the rewritten days
    assert tier_test()
    assert not tier_test("--vars", json.dumps({"product_as_of_date": "2024-06-30", "tests_full_scan": True}))
    set_tier("2024-06-20", "red")
    set_tier("2024-06-27", "purple")  # the first rewritten day
    assert not tier_test()
    set_tier("2024-06-27", "red")

    dbt(url, "run", "--select", "int_product__health_daily", "--full-refresh", *as_of, target=tmp_path)
    assert "int_product__health_daily" not in dict(table(url, windows))
