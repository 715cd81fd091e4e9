"""The daily (incremental) billing build against the independent pandas computation, after
raw Stripe changes that reach back in time, landed by the ingestion's own loader as later
extractions: new invoices, an old invoice voided, an unpaid invoice paid late, and then a
customer whose account id changed.

One database, built in full first, then twice incrementally (`dbt build` without
--full-refresh, as transform_dbt runs it)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal

import pandas as pd
import pytest

import finance_reference as ref
import finance_scenarios
from finance_raw import StripeData, build_finance, run_dbt, ts
from retention import warehouse
from retention.load.stripe import load_batches, to_row
from support.databases import create_database

pytestmark = pytest.mark.slow

LANDED_LATER = ts("2024-12-01")  # invoices created from then on arrive with the daily run
VOIDED = ("acc_011", "sub_011a", "2024-06-01")  # (account, subscription, created): voided later
PAID_LATE = ("acc_008", "sub_008", "2024-04-15")  # open invoice, paid on 2024-06-20
MOVED_CUSTOMER = ("cus_acc_014", "acc_914")  # metadata.account_id changes


def _read(url: str, sql: str) -> pd.DataFrame:
    with warehouse.connect(url) as conn:
        cur = conn.execute(sql)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def _land(url: str, table: str, objects: list[dict]) -> None:
    """One extraction of `objects` through the ingestion's loader (upsert, new _extracted_at)."""
    with warehouse.connect(url, autocommit=True) as conn:
        load_batches(conn, [table], iter([{table: [to_row(o) for o in objects]}]), datetime.now(timezone.utc))


def _invoice(objects: dict[str, list[dict]], account: str, subscription: str, created: str) -> dict:
    (found,) = [i for i in objects["invoices"] if i["customer"] == f"cus_{account}"
                and i["parent"]["subscription_details"]["subscription"] == subscription and i["created"] == ts(created)]
    return found


SPELLS = ("select account_id, valid_from, valid_to, is_paying, mrr, contract_mrr, list_mrr, paid_seats, plan,"
          " is_past_due from intermediate.int_billing_account_spells order by account_id, valid_from")


def _build(url: str, target) -> None:
    """The daily billing build, and the per-day billing spells that health and lifecycle read."""
    result = build_finance(url, target)
    assert result.returncode == 0, result.stdout[-4000:]
    result = run_dbt(url, target, "build", "--select", "billing_products", "int_billing_account_spells")
    assert result.returncode == 0, result.stdout[-4000:]


def _assert_marts_match(url: str, objects: dict[str, list[dict]]) -> None:
    got = _read(url, "select * from marts.mrr_monthly order by account_id, month")
    want = ref.mrr_monthly(objects)
    got = got.drop(columns=["snapshot_at", "billing_extracted_at"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want[got.columns].reset_index(drop=True))

    movements = _read(url, "select * from marts.mrr_movements order by month")
    want_movements = ref.mrr_movements(want, list(movements.month))
    money = ["start_mrr", "new_mrr", "reactivation_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "end_mrr"]
    assert movements[money].astype(str).values.tolist() == \
        [[f"{v:.2f}" for v in row] for row in want_movements[money].values]

    cohorts = _read(url, "select * from marts.cohort_retention order by cohort_month, months_since")
    want_cohorts = ref.cohort_retention(want, list(movements.month))
    keys = ["cohort_month", "months_since", "cohort_size", "paying_logos"]
    assert cohorts[keys].values.tolist() == want_cohorts[keys].values.tolist()
    assert cohorts.mrr.tolist() == want_cohorts.mrr.tolist()


@pytest.fixture(scope="module")
def scenario() -> dict[str, list[dict]]:
    return finance_scenarios.build().objects


@pytest.fixture(scope="module")
def built(warehouse_server_url: str, scenario, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """A full build of everything created before LANDED_LATER, with the voided invoice
    still open-and-paid and the late payment still unpaid."""
    url = create_database(warehouse_server_url, "t_finance_incremental")
    first = {**scenario, "invoices": [i for i in scenario["invoices"] if i["created"] < LANDED_LATER]}
    StripeData(objects=first).load(url)
    target = tmp_path_factory.mktemp("dbt_incremental")
    _build(url, target)
    yield url, target, first


@pytest.fixture(scope="module")
def after_invoices(built, scenario) -> tuple[str, dict, pd.DataFrame, pd.DataFrame]:
    url, target, _ = built
    before = _read(url, "select account_id, month, mrr, billing_extracted_at from marts.mrr_monthly")
    final = copy.deepcopy(scenario)
    voided = _invoice(final, *VOIDED)
    voided.update(status="void")
    voided["status_transitions"].update(paid_at=None, voided_at=ts("2024-09-01"))
    paid = _invoice(final, *PAID_LATE)
    paid.update(status="paid")
    paid["status_transitions"]["paid_at"] = ts("2024-06-20")
    _land(url, "stripe_invoices", [i for i in final["invoices"] if i["created"] >= LANDED_LATER] + [voided, paid])
    _build(url, target)
    after = _read(url, "select account_id, month, mrr, billing_extracted_at from marts.mrr_monthly")
    return url, final, before, after


def test_daily_run_matches_a_full_computation_after_new_voided_and_late_paid_invoices(after_invoices):
    url, final, _, _ = after_invoices
    _assert_marts_match(url, final)
    voided_id = _invoice(final, *VOIDED)["id"]
    with warehouse.connect(url) as conn:
        assert conn.execute("select count(*) from intermediate.int_invoice_lines_normalized where invoice_id = %s",
                            (voided_id,)).fetchone()[0] == 0


def test_daily_run_recomputes_only_the_months_the_changes_reach(after_invoices):
    _, _, before, after = after_invoices
    restated = after[after.billing_extracted_at > before.billing_extracted_at.max()]
    kept = after[after.billing_extracted_at <= before.billing_extracted_at.max()]
    # the late payment (invoice created 2024-04-15) is the earliest change
    assert restated.month.min().isoformat() == "2024-04-01"
    assert not kept.empty and kept.month.max().isoformat() == "2024-03-01"
    # the void shows: acc_011 stops paying in June 2024 (was $150 before the run)
    june = after[(after.account_id == "acc_011") & (after.month.astype(str) == "2024-06-01")]
    assert june.mrr.tolist() == [Decimal("0.00")]


def test_daily_run_moves_a_customer_to_its_new_account(after_invoices, built):
    url, final, _, _ = after_invoices
    _, target, _ = built
    customer, account = MOVED_CUSTOMER
    (moved,) = [c for c in final["customers"] if c["id"] == customer]
    moved["metadata"]["account_id"] = account
    _land(url, "stripe_customers", [moved])
    _build(url, target)
    _assert_marts_match(url, final)
    accounts = set(_read(url, "select distinct account_id from marts.mrr_monthly").account_id)
    assert account in accounts and "acc_014" not in accounts


def test_daily_billing_spells_equal_a_full_rebuild(after_invoices, built):
    """After new, voided and late-paid invoices and a customer moved to another account (the
    tests above, in this order), the incremental spells equal a rebuild from scratch: the
    accounts whose lines changed were recomputed whole, and the old account is gone."""
    url, _, _, _ = after_invoices
    _, target, _ = built
    daily = _read(url, SPELLS)
    assert MOVED_CUSTOMER[1] in set(daily.account_id) and "acc_014" not in set(daily.account_id)
    result = run_dbt(url, target, "run", "--full-refresh", "--select", "int_billing_account_spells")
    assert result.returncode == 0, result.stdout[-4000:]
    pd.testing.assert_frame_equal(daily, _read(url, SPELLS))


def test_daily_run_tests_the_new_window_and_stops_on_a_bad_new_line(after_invoices, built):
    """The staging tests of the daily run read only the new extraction, and still fail it."""
    url, final, _, _ = after_invoices
    _, target, _ = built
    bad = copy.deepcopy(final["invoices"][-1])
    bad["id"] = "in_unknown_price"
    bad["lines"]["data"][0].update(id="il_unknown_price")
    bad["lines"]["data"][0]["pricing"]["price_details"]["price"] = "price_not_ingested"
    _land(url, "stripe_invoices", [bad])
    result = build_finance(url, target)
    assert result.returncode != 0
    assert "relationships_stg_stripe__invoice_line_items_price_id" in result.stdout
    compiled = next(target.rglob("run/**/stg_stripe__invoices_column_checks.sql")).read_text()
    assert "where extracted_at > timestamptz '" in compiled
