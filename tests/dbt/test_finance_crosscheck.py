"""The billing marts (mrr_monthly, mrr_movements, cohort_retention) against an independent
pandas computation on the same raw Stripe data, plus hand-worked expectations per rule.

One real `dbt build` (subprocess) into one database, shared by the module."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pandas as pd
import pytest

import finance_reference as ref
import finance_scenarios
from finance_raw import build_finance
from retention import warehouse
from support.databases import create_database

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scenario_objects() -> dict[str, list[dict]]:
    return finance_scenarios.build().objects


@pytest.fixture(scope="module")
def built_db(warehouse_server_url: str, scenario_objects, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = create_database(warehouse_server_url, "t_finance_crosscheck")
    data = finance_scenarios.StripeData(objects=scenario_objects)
    data.load(url)
    result = build_finance(url, tmp_path_factory.mktemp("dbt_target"))
    assert result.returncode == 0, result.stdout[-4000:]
    yield url


def _read(url: str, sql: str) -> pd.DataFrame:
    with warehouse.connect(url) as conn:
        cur = conn.execute(sql)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def test_mrr_monthly_matches_independent_computation(built_db, scenario_objects):
    got = _read(built_db, "select * from marts.mrr_monthly order by account_id, month").drop(columns=["snapshot_at", "billing_extracted_at"])
    want = ref.mrr_monthly(scenario_objects)
    assert len(got) > 50
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want[got.columns].reset_index(drop=True))


def test_rules_worked_by_hand(built_db):
    got = _read(built_db, "select account_id, month::text as month, mrr, movement from marts.mrr_monthly")
    rows = {(r.account_id, r.month): (r.mrr, r.movement) for r in got.itertuples()}
    wrong = {
        key: (rows.get(key), (Decimal(f"{mrr:.2f}"), movement))
        for key, (mrr, movement) in finance_scenarios.EXPECTED.items()
        if rows.get(key) != (Decimal(f"{mrr:.2f}"), movement)
    }
    assert not wrong, f"(got, expected) by (account, month): {wrong}"
    assert not set(finance_scenarios.NEVER_PAYING) & set(got.account_id)


def test_mrr_movements_matches_and_bridges_to_the_cent(built_db, scenario_objects):
    got = _read(built_db, "select * from marts.mrr_movements order by month")
    monthly = ref.mrr_monthly(scenario_objects)
    want = ref.mrr_movements(monthly, list(got.month))
    money = ["start_mrr", "new_mrr", "reactivation_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "end_mrr"]
    logos = ["start_logos", "new_logos", "reactivated_logos", "churned_logos", "end_logos"]
    assert got[money].astype(str).values.tolist() == [[f"{v:.2f}" for v in row] for row in want[money].values]
    assert got[logos].values.tolist() == want[logos].values.tolist()
    bridge = got.start_mrr + got.new_mrr + got.expansion_mrr + got.reactivation_mrr - got.contraction_mrr - got.churned_mrr
    assert (bridge == got.end_mrr).all()
    assert (got.start_mrr.iloc[1:].values == got.end_mrr.iloc[:-1].values).all(), "start must equal last month's end"
    for name, _ in ref.RETENTION_WINDOWS:
        for col in (f"nrr_{name}", f"grr_{name}"):
            have = got[col].map(lambda v: None if v is None else float(v)).tolist()
            assert have == pytest.approx(want[col].tolist(), abs=1e-6, nan_ok=True), col
        assert got[f"retention_{name}_status"].tolist() == want[f"retention_{name}_status"].tolist(), name
    assert got.nrr_t12m.notna().sum() == 2  # Jan and Feb 2025 have a base 12 months back
    assert got.retention_t12m_status.value_counts()["history_too_short"] == 12  # the first year says so
    assert got.nrr_t3m.notna().sum() > got.nrr_t12m.notna().sum()


def test_cohort_retention_matches_independent_computation(built_db, scenario_objects):
    got = _read(built_db, "select * from marts.cohort_retention order by cohort_month, months_since")
    months = _read(built_db, "select month from marts.mrr_movements order by month").month.tolist()
    want = ref.cohort_retention(ref.mrr_monthly(scenario_objects), months)
    assert (got.basis == "cohort_start").all()
    assert got[["cohort_month", "months_since", "cohort_size", "paying_logos"]].values.tolist() == \
        want[["cohort_month", "months_since", "cohort_size", "paying_logos"]].values.tolist()
    assert got.mrr.tolist() == want.mrr.tolist()
    for col in ("logo_retention", "revenue_retention"):
        assert got[col].astype(float).tolist() == pytest.approx(want[col].tolist(), abs=1e-6)
    first = got[got.months_since == 0]
    assert (first.logo_retention == 1).all() and (first.revenue_retention == 1).all()
