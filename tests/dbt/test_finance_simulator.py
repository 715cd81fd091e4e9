"""The billing marts on the simulator's tiny preset, landed in raw by the real Stripe
ingestion: against the independent pandas computation and the simulator's ground truth
(first paid month, churn month, status and MRR at the end)."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

import finance_reference as ref
from finance_raw import build_finance, ingest_simulated_stripe
from retention import warehouse
from support.databases import create_database

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def simulated(warehouse_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    company = tmp_path_factory.mktemp("sim") / "tiny"
    retention = str(Path(sys.executable).parent / "retention")
    subprocess.run([retention, "simulate", "--preset", "tiny", "--seed", "3", "--out", str(company)],
                   check=True, capture_output=True)
    url = create_database(warehouse_server_url, "t_finance_simulator")
    ingest_simulated_stripe(url, company)
    result = build_finance(url, tmp_path_factory.mktemp("dbt_target"))
    assert result.returncode == 0, result.stdout[-4000:]
    return url, company


def _read(url: str, sql: str) -> pd.DataFrame:
    with warehouse.connect(url) as conn:
        cur = conn.execute(sql)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def test_mrr_monthly_matches_independent_computation(simulated):
    url, _ = simulated
    with warehouse.connect(url) as conn:
        objects = {o: [r[0] for r in conn.execute(f"select data from raw.stripe_{o}")]
                   for o in ("customers", "prices", "invoices")}
    got = _read(url, "select * from marts.mrr_monthly order by account_id, month").drop(columns=["snapshot_at", "billing_extracted_at"])
    want = ref.mrr_monthly(objects)
    assert len(got) > 20
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want[got.columns].reset_index(drop=True))


def test_marts_agree_with_the_simulators_ground_truth(simulated):
    url, company = simulated
    truth = pd.read_csv(company / "ground_truth" / "accounts.csv", dtype={"first_paid_month": str})
    monthly = _read(url, "select account_id, to_char(month, 'YYYY-MM') as month, mrr, is_paying from marts.mrr_monthly")
    last_month = monthly.month.max()
    first_paid = monthly[monthly.is_paying].groupby("account_id").month.min()
    churn_months = monthly[~monthly.is_paying].groupby("account_id").month.max()
    at_end = monthly[(monthly.month == last_month) & monthly.is_paying].set_index("account_id").mrr

    paid = truth[truth.first_paid_month.notna()]
    assert len(paid) >= 5
    assert first_paid.to_dict() == dict(zip(paid.account_id, paid.first_paid_month))
    paying = truth[truth.status_at_end == "paying"]
    assert set(at_end.index) == set(paying.account_id)
    expected_mrr = {a: Decimal(str(c)) / 100 for a, c in zip(paying.account_id, paying.mrr_at_end_cents)}
    assert {a: m for a, m in at_end.items()} == {a: m.quantize(Decimal("0.01")) for a, m in expected_mrr.items()}
    churned = truth[(truth.status_at_end == "churned") & truth.reactivated_at.isna()]
    assert {a: churn_months[a] for a in churned.account_id} == \
        {a: d[:7] for a, d in zip(churned.account_id, churned.true_churn_date)}


def test_movements_bridge_every_month(simulated):
    url, _ = simulated
    bad = _read(url, "select month from marts.mrr_movements where start_mrr + new_mrr + expansion_mrr"
                     " + reactivation_mrr - contraction_mrr - churned_mrr <> end_mrr")
    assert bad.empty
