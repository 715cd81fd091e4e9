"""Product marts built by real dbt on a real Postgres from small hand-built raw data.

One database per module: raw data loaded once, `dbt build` of the product models (their
data and unit tests included) once; each test then checks one behaviour on the result.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from product_raw import ProductData, build_product, build_world

from retention import warehouse

pytestmark = pytest.mark.slow


def add_edge_accounts(p: ProductData) -> None:
    """Accounts whose segment membership follows from one rule each (as of 2024-06-30)."""
    # Signed up 20 days before the as-of date; one project, never a teammate or 3 reports.
    u = p.account("acc_100001", "2024-06-10", "Slow Starter", "free", 1)
    p.track("acc_100001", u[0], "Project Created", _at("2024-06-10"))
    # Active until 2024-06-10, then nothing: a key event 20 days ago, no paying needed.
    u = p.account("acc_100002", "2024-05-01", "Gone Quiet", "free", 1)
    for day in ("2024-05-01", "2024-05-20", "2024-06-10"):
        p.track("acc_100002", u[0], "Report Created", _at(day))
    # Three billing tickets within 30 days, and a Plan Upgraded event 5 days ago.
    u = p.account("acc_100003", "2024-05-01", "Needs Help", "growth", 2)
    for day in ("2024-06-05", "2024-06-12", "2024-06-28"):
        p.ticket("acc_100003", u[1], "Billing ", day)
    p.ticket("acc_100003", u[1], "export", "2024-06-28")
    p.track("acc_100003", u[0], "Project Created", _at("2024-06-25"))
    p.track("acc_100003", u[0], "Plan Upgraded", _at("2024-06-25"), from_plan="starter", to_plan="growth")


def _at(day: str):
    from product_raw import at

    return at(day)


@pytest.fixture(scope="module")
def built(warehouse_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = warehouse.create_database(warehouse_server_url, f"t_product_marts_{uuid.uuid4().hex[:6]}")
    product, stripe = build_world()
    add_edge_accounts(product)
    stripe.load(url)
    product.load(url)
    build_product(url, Path(tmp_path_factory.mktemp("dbt_target")))
    yield url


def rows(url: str, sql: str, *params) -> list[tuple]:
    with warehouse.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def test_auc_matches_a_python_rank_computation(built: str) -> None:
    scores = rows(built, """
        select date_trunc('month', h.score_date)::date, h.account_id, h.health_score,
               exists (select 1 from marts.mrr_monthly m
                       where m.account_id = h.account_id and m.movement = 'churn'
                         and m.month > date_trunc('month', h.score_date)
                         and m.month <= date_trunc('month', h.score_date) + interval '3 months')
        from marts.account_health_daily h
        where h.is_month_end and h.is_paying and h.health_score is not null""")
    by_month: dict = {}
    for month, _, score, churned in scores:
        by_month.setdefault(month, []).append((float(score), churned))
    sql_auc = dict(rows(built, "select score_month, auc_90d from marts.health_backtest where tier = 'all'"))
    checked = 0
    for month, pairs in by_month.items():
        pos = [s for s, c in pairs if c]
        neg = [s for s, c in pairs if not c]
        if not pos or not neg:
            assert sql_auc[month] is None
            continue
        # P(churner scored lower than non-churner), ties one half: the pairwise definition.
        wins = sum((p < n) + 0.5 * (p == n) for p in pos for n in neg)
        assert float(sql_auc[month]) == pytest.approx(wins / (len(pos) * len(neg)), abs=5e-5), month
        checked += 1
    assert checked >= 2


def test_backtest_tiers_add_up_to_the_month(built: str) -> None:
    bad = rows(built, """
        select score_month from marts.health_backtest
        group by 1
        having sum(accounts) filter (where tier <> 'all') <> sum(accounts) filter (where tier = 'all')
            or sum(churned_90d) filter (where tier <> 'all') <> sum(churned_90d) filter (where tier = 'all')""")
    assert bad == []
    churned = rows(built, "select sum(churned_90d) from marts.health_backtest where tier = 'all'")[0][0]
    assert churned > 0


def test_health_scores_cover_month_ends_and_recent_days(built: str) -> None:
    dates = {d for (d,) in rows(built, "select distinct score_date from marts.account_health_daily")}
    assert {"2024-01-31", "2024-02-29", "2024-03-31"} <= {d.isoformat() for d in dates}
    daily = [d for d in dates if d.isoformat() >= "2024-05-02"]
    assert len(daily) == 60  # product_health_daily_days
    change = rows(built, """
        select count(*) from marts.account_health_daily h
        join marts.account_health_daily p on p.account_id = h.account_id and p.score_date = h.score_date - 7
        where h.change_7d is distinct from h.health_score - p.health_score""")
    assert change == [(0,)]


def test_activation_reflects_milestones(built: str) -> None:
    got = dict(rows(built, "select account_id, activation_status from marts.account_activation"))
    assert got["acc_100001"] == "not_activated"  # 20 days in, 14-day windows closed
    assert got["acc_100003"] == "not_activated"
    assert "activated" in got.values()


def test_segments_select_each_edge_account_with_its_reason(built: str) -> None:
    members = {(s, a): r for s, a, r in rows(built, "select segment_key, account_id, reason from marts.segment_members")}
    assert "Not activated 20 days after signup on 2024-06-10" in members[("not_activated", "acc_100001")]
    assert "last key event on 2024-06-10" in members[("inactive", "acc_100002")]
    assert "3 tickets on topic 'billing'" in members[("repeated_support_topic", "acc_100003")]
    assert ("repeated_support_topic", "acc_100002") not in members
    assert "Plan Upgraded on 2024-06-25 (plan now growth)" == members[("just_upgraded", "acc_100003")]


def test_nps_segments_take_the_configured_share(built: str) -> None:
    respondents = rows(built, """
        select count(distinct user_id) from staging.stg_nps__responses
        where responded_at > timestamptz '2024-06-30 00:00+00' - interval '89 days'""")[0][0]
    counts = dict(rows(built, "select segment_key, count(*) from marts.segment_members group by 1"))
    assert counts.get("nps_detractors", 0) == int(0.2 * respondents)
    assert counts.get("nps_promoters", 0) == int(0.2 * respondents)
    emails = rows(built, "select email from marts.segment_members where segment_key = 'nps_detractors'")
    assert all(e and e.endswith("@example.com") for (e,) in emails)
