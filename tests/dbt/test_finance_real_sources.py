"""The billing marts on what a real Stripe account brings (issue #18): several currencies
through a rate table in the warehouse (EUR, zero-decimal JPY, a GBP line without a rate),
an annual-only cohort whose renewals fall mid-month, the as-of instant set by the end of
the extraction's data interval (raw.stripe_extract_state), and a finance-only build (the
`finance` selector) on a warehouse that has no product event tables at all.

One database: a full build as of 2025-04-01 (the run for March 31), then the daily
(incremental) build once the extraction reached 2025-06-16."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from finance_raw import StripeData, build_finance, line
from finance_scenarios import renew
from retention import warehouse
from retention.extract import stripe_state
from support.databases import create_database

pytestmark = pytest.mark.slow

# unit tests run in test_finance_crosscheck's build of the same selector
RATES_VARS = ("--vars", "{finance_exchange_rates_relation: fx.rates}", "--exclude-resource-type", "unit_test")
FIRST_END = datetime(2025, 4, 1, tzinfo=timezone.utc)   # the daily run for 2025-03-31
LATER_END = datetime(2025, 6, 16, tzinfo=timezone.utc)


def _company() -> StripeData:
    s = StripeData()
    s.price("price_y1200", 120000, "year")
    s.price("price_eur_m", 10000, currency="eur")
    s.price("price_jpy_y", 120000, "year", currency="jpy")      # ¥120,000 a year: zero-decimal
    s.price("price_gbp_m", 4000, currency="gbp")
    # annual-only cohort of March 2024: A renews on 2025-03-10 (the latest invoice of all),
    # B's year ends on 2025-03-20 without a renewal
    renew(s, s.customer("acc_annual_a"), "sub_a", "price_y1200", "2024-03-10", 2, 120000, every=12)
    renew(s, s.customer("acc_annual_b"), "sub_b", "price_y1200", "2024-03-20", 1, 120000, every=12)
    eur = s.customer("acc_eur")
    for start, end in (("2025-01-05", "2025-02-05"), ("2025-02-05", "2025-03-05"), ("2025-03-05", "2025-04-05")):
        s.invoice(eur, start, [line("sub_eur", "price_eur_m", start, end, amount=10000, currency="eur")])
    s.invoice(s.customer("acc_jpy"), "2025-02-10",
              [line("sub_jpy", "price_jpy_y", "2025-02-10", "2026-02-10", amount=120000, currency="jpy")])
    gbp = s.customer("acc_gbp")
    for start, end in (("2025-01-15", "2025-02-15"), ("2025-02-15", "2025-03-15")):
        s.invoice(gbp, start, [line("sub_gbp", "price_gbp_m", start, end, amount=4000, currency="gbp")])
    return s


def _state(url: str, interval_end: datetime) -> None:
    """What the Stripe extraction records after a scheduled run (its own function)."""
    with warehouse.connect(url, autocommit=True) as conn:
        stripe_state.ensure(conn)
        for name in ("customers", "prices", "invoices"):
            stripe_state.save(conn, name, datetime.now(timezone.utc), "events", 0, None, interval_end)


def _monthly(url: str) -> dict[tuple[str, str], tuple[Decimal, str]]:
    with warehouse.connect(url) as conn:
        rows = conn.execute("select account_id, to_char(month, 'YYYY-MM'), mrr, movement from marts.mrr_monthly")
        return {(a, m): (mrr, movement) for a, m, mrr, movement in rows}


@pytest.fixture(scope="module")
def builds(warehouse_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    url = create_database(warehouse_server_url, "t_finance_real_sources")
    _company().load(url)
    with warehouse.connect(url, autocommit=True) as conn:
        conn.execute("create schema fx")
        conn.execute("create table fx.rates (currency text, rate_date date, rate numeric)")
        conn.execute("insert into fx.rates values ('EUR', '2024-01-01', 1.10), ('EUR', '2025-03-01', 1.20),"
                     " ('JPY', '2024-01-01', 0.0067)")
        product_tables = conn.execute("select count(*) from information_schema.tables"
                                      " where table_schema = 'raw' and table_name not like 'stripe%'").fetchone()[0]
    _state(url, FIRST_END)
    target = tmp_path_factory.mktemp("dbt_target")
    first = build_finance(url, target, *RATES_VARS)
    assert first.returncode == 0, first.stdout[-4000:]
    at_first = _monthly(url)
    with warehouse.connect(url) as conn:
        excluded = conn.execute("select account_id, currency, amount, excluded_reason from marts.finance_excluded_lines"
                                " order by period_start_at").fetchall()
        snapshots = dict(conn.execute("select to_char(month, 'YYYY-MM'), max(snapshot_at) from marts.mrr_monthly"
                                      " where month >= date '2025-03-01' group by 1").fetchall())
    _state(url, LATER_END)
    _state(url, FIRST_END)  # a backfill of an earlier day afterwards does not move the as-of back
    daily = build_finance(url, target, *RATES_VARS)
    assert daily.returncode == 0, daily.stdout[-4000:]
    yield {"url": url, "first": first, "at_first": at_first, "excluded": excluded, "product_tables": product_tables,
           "snapshots_at_first": snapshots, "later": _monthly(url)}


def test_finance_only_build_needs_no_product_tables(builds):
    assert builds["product_tables"] == 0
    assert "finance_excluded_lines" in builds["first"].stdout
    assert not re.search(r"\b(stg_product|product_|account_health)", builds["first"].stdout)


def test_other_currencies_are_converted_at_the_rate_of_the_invoice_date(builds):
    got = builds["at_first"]
    # EUR: 100.00 at 1.10 in January and February, at 1.20 from the March invoice
    assert [got[("acc_eur", m)] for m in ("2025-01", "2025-02", "2025-03")] == [
        (Decimal("110.00"), "new"), (Decimal("110.00"), "retained"), (Decimal("120.00"), "expansion")]
    # JPY is zero-decimal: 120,000 yen a year = 10,000 yen a month at 0.0067
    assert got[("acc_jpy", "2025-02")] == (Decimal("67.00"), "new")


def test_a_line_without_a_rate_is_excluded_with_its_reason_and_counted(builds):
    assert not any(account == "acc_gbp" for account, _ in builds["at_first"])
    assert builds["excluded"] == [
        ("acc_gbp", "gbp", 4000, "no exchange rate from gbp to usd on or before 2025-01-15"),
        ("acc_gbp", "gbp", 4000, "no exchange rate from gbp to usd on or before 2025-02-15"),
    ]
    out = builds["first"].stdout
    assert re.search(r"Warning in test finance_lines_without_exchange_rate.*\n.*Got 2 results", out), out[-3000:]


def test_months_run_to_the_extraction_interval_end_and_are_read_at_their_end(builds):
    got = builds["at_first"]
    # the latest invoice is from 2025-03-10; March is read at its end, 2025-04-01 (the
    # interval's end), so B, whose paid year ended on 2025-03-20, churned in March; April is
    # the running month, read at the as-of instant, its first
    assert got[("acc_annual_b", "2025-02")] == (Decimal("100.00"), "retained")
    assert got[("acc_annual_b", "2025-03")] == (Decimal("0.00"), "churn")
    assert got[("acc_annual_a", "2025-03")] == (Decimal("100.00"), "retained")
    assert max(month for _, month in got) == "2025-04"
    assert builds["snapshots_at_first"] == {"2025-03": FIRST_END, "2025-04": FIRST_END}


def test_the_daily_build_moves_the_as_of_forward_with_the_extraction(builds):
    got = builds["later"]
    assert max(month for _, month in got) == "2025-06"
    assert [got[("acc_annual_a", m)] for m in ("2025-04", "2025-05", "2025-06")] == [
        (Decimal("100.00"), "retained")] * 3
    assert got[("acc_eur", "2025-04")] == (Decimal("0.00"), "churn")  # paid through 2025-04-05
    assert got[("acc_jpy", "2025-06")] == (Decimal("67.00"), "retained")
    assert not any(account == "acc_annual_b" and month > "2025-03" for account, month in got)
    earlier = {key: value for key, value in builds["at_first"].items() if key[1] <= "2025-03"}
    assert {key: value for key, value in got.items() if key[1] <= "2025-03"} == earlier


def test_annual_cohort_runs_to_the_as_of_month(builds):
    with warehouse.connect(builds["url"]) as conn:
        rows = conn.execute("select months_since, cohort_size, paying_logos, logo_retention from marts.cohort_retention"
                            " where cohort_month = date '2024-03-01' order by months_since").fetchall()
    assert [r[0] for r in rows] == list(range(16))  # March 2024 .. June 2025
    assert {r[1] for r in rows} == {2}
    assert [r[2] for r in rows[:12]] == [2] * 12 and [r[2] for r in rows[12:]] == [1] * 4
    assert rows[12][3] == Decimal("0.5")
