"""Product marts built by real dbt on a real Postgres from small hand-built raw data.

One database per module: raw data loaded once, `dbt build` of the product models (their
data and unit tests included) once; each test then checks one behaviour on the result.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from finance_raw import StripeData, ts
from finance_scenarios import renew
from product_raw import ProductData, build_product, build_world

from retention import warehouse
from support.databases import create_database

pytestmark = pytest.mark.slow


def add_edge_accounts(p: ProductData, s: StripeData) -> None:
    """Accounts whose segment membership follows from one rule each (as of 2024-06-30)."""
    # Signed up 20 days before the as-of date, in a 30-day trial; one project, never a
    # teammate or 3 reports.
    u = p.account("acc_100001", "2024-06-10", "Slow Starter", "growth", 1)
    s.objects["subscriptions"].append({
        "id": "sub_trial_100001", "object": "subscription", "customer": s.customer("acc_100001"),
        "created": ts("2024-06-10T09:00"), "status": "trialing",
        "trial_start": ts("2024-06-10T09:00"), "trial_end": ts("2024-07-10T09:00"),
    })
    p.track("acc_100001", u[0], "Project Created", _at("2024-06-10"))
    # Active until 2024-06-10, then nothing: a key event 20 days ago, but never paid, so
    # no inactivity message (the inactive segment is for paying accounts).
    u = p.account("acc_100002", "2024-05-01", "Gone Quiet", "free", 1)
    for day in ("2024-05-01", "2024-05-20", "2024-06-10"):
        p.track("acc_100002", u[0], "Report Created", _at(day))
    # Paying; three billing tickets within 30 days, and a Plan Upgraded event 5 days ago
    # that billing does not show (no upgrade).
    u = p.account("acc_100003", "2024-05-01", "Needs Help", "growth", 2)
    renew(s, s.customer("acc_100003"), "sub_100003", "price_seat", "2024-05-01", 2, 2000, quantity=2)
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
    url = create_database(warehouse_server_url, f"t_product_marts_{uuid.uuid4().hex[:6]}")
    product, stripe = build_world()
    add_edge_accounts(product, stripe)
    stripe.load(url)
    product.load(url)
    build_product(url, Path(tmp_path_factory.mktemp("dbt_target")))
    yield url


def rows(url: str, sql: str, *params) -> list[tuple]:
    with warehouse.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.mark.parametrize("months", [2, 3])
def test_auc_matches_a_python_rank_computation(built: str, months: int) -> None:
    """auc_60d (churn within the next 2 month-end snapshots) and auc_90d (3)."""
    scores = rows(built, f"""
        select date_trunc('month', h.date)::date, h.account_id, h.health_score,
               exists (select 1 from marts.mrr_monthly m
                       where m.account_id = h.account_id and m.movement = 'churn'
                         and m.month > date_trunc('month', h.date)
                         and m.month <= date_trunc('month', h.date) + interval '{months} months')
        from marts.account_health_daily h
        where h.is_month_end and h.is_paying and h.health_score is not null""")
    by_month: dict = {}
    for month, _, score, churned in scores:
        by_month.setdefault(month, []).append((float(score), churned))
    sql_auc = dict(rows(built, f"select score_month, auc_{30 * months}d from marts.health_backtest where tier = 'all'"))
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


def test_health_is_scored_every_day_with_changes_vs_earlier_days(built: str) -> None:
    dates = sorted(d for (d,) in rows(built, "select distinct date from marts.account_health_daily"))
    first_usage = rows(built, "select min(activity_date) from marts.account_usage_daily")[0][0]
    assert dates[0] == first_usage and dates[-1].isoformat() == "2024-06-30"  # product_as_of_date
    assert len(dates) == (dates[-1] - dates[0]).days + 1  # a daily series, no gaps
    for days in (7, 28):
        wrong = rows(built, f"""
            select count(*), count(p.account_id) from marts.account_health_daily h
            left join marts.account_health_daily p on p.account_id = h.account_id and p.date = h.date - {days}
            where h.health_score_{days}d_ago is distinct from p.health_score
               or h.change_{days}d is distinct from h.health_score - p.health_score""")
        assert wrong == [(0, 0)], days
    with_change = rows(built, "select count(*) from marts.account_health_daily where change_28d is not null")[0][0]
    assert with_change > 100


def _window(by_day: dict[date, list], day: date, first: int, last: int) -> list:
    """Items of the days day - last .. day - first (inclusive)."""
    return [x for k in range(first, last + 1) for x in by_day.get(day - timedelta(days=k), [])]


def test_health_signals_match_a_direct_window_count(built: str) -> None:
    """Scope and every windowed signal against a day-by-day recount in Python."""
    usage: dict[str, dict[date, list]] = defaultdict(lambda: defaultdict(list))
    for account, day, key_events, reach, users, features in rows(built, """
            select account_id, activity_date, key_events, reach, active_user_ids, key_features
            from marts.account_usage_daily"""):
        usage[account][day].append((key_events, float(reach), users, features))
    tickets: dict[str, dict[date, list]] = defaultdict(lambda: defaultdict(list))
    for account, day in rows(built, "select account_id, (created_at at time zone 'UTC')::date from staging.stg_helpdesk__tickets"):
        tickets[account][day].append(1)
    nps: dict[str, dict[date, list]] = defaultdict(lambda: defaultdict(list))
    for account, day, score in rows(built, "select account_id, (responded_at at time zone 'UTC')::date, score from staging.stg_nps__responses"):
        nps[account][day].append(score)
    paying = {(a, d) for a, d in rows(built, """
        select account_id, d::date from intermediate.int_billing_account_spells,
            generate_series(valid_from, coalesce(valid_to, date '2024-06-30'), interval '1 day') as d
        where is_paying""")}
    signup = dict(rows(built, "select account_id, signup_date from intermediate.int_product__accounts"))
    first = rows(built, "select min(activity_date) from marts.account_usage_daily")[0][0]
    last = date(2024, 6, 30)

    expected = {}
    for account, signed_up in signup.items():
        day = max(first, signed_up)
        while day <= last:
            window = _window(usage[account], day, 0, 27)
            key_events = sum(u[0] for u in window)
            if key_events > 0 or (account, day) in paying:
                scores = _window(nps[account], day, 0, 179)
                expected[(account, day)] = (
                    key_events, sum(u[0] for u in _window(usage[account], day, 28, 55)),
                    sum(u[1] for u in window), len({x for u in window for x in u[2]}),
                    len({x for u in window for x in u[3]}), len(_window(tickets[account], day, 0, 27)),
                    round(sum(scores) / len(scores), 2) if scores else None,
                )
            day += timedelta(days=1)
    got = {(a, d): (k, p, float(r), s, f, t, None if n is None else float(n)) for a, d, k, p, r, s, f, t, n in rows(built, """
        select account_id, date, key_events_28d, key_events_prev_28d, reach_28d, active_seats_28d,
               key_features_28d, tickets_28d, nps_avg
        from marts.account_health_daily""")}
    assert len(expected) > 1000
    assert got.keys() == expected.keys()
    assert {k: v for k, v in got.items() if v != expected[k]} == {}


def test_activation_reflects_milestones(built: str) -> None:
    got = dict(rows(built, "select account_id, activation_status from marts.account_activation"))
    assert got["acc_100001"] == "not_activated"  # 20 days in, 14-day windows closed
    assert got["acc_100003"] == "not_activated"
    assert "activated" in got.values()


def test_segments_select_each_edge_account_with_its_reason(built: str) -> None:
    members = {(s, a): r for s, a, r in rows(built, "select segment_key, account_id, reason from marts.segment_members")}
    assert members[("not_activated", "acc_100001")] == (
        "Not activated 20 days after signup on 2024-06-10: missing reports_x3, teammate_invited "
        "(1 of 3 required milestones reached)")
    assert ("inactive", "acc_100002") not in members  # a key event, but never paid
    assert "3 tickets on topic 'billing'" in members[("repeated_support_topic", "acc_100003")]
    assert ("repeated_support_topic", "acc_100002") not in members
    assert ("just_upgraded", "acc_100003") not in members  # an event alone; billing unchanged
    stages = dict(rows(built, "select account_id, lifecycle_stage from marts.segment_members"))
    assert stages["acc_100001"] == "trialing" and stages["acc_100003"] == "active"


def test_nps_segments_take_the_configured_share(built: str) -> None:
    respondents = rows(built, """
        select count(distinct user_id) from staging.stg_nps__responses
        where responded_at > timestamptz '2024-06-30 00:00+00' - interval '89 days'""")[0][0]
    counts = dict(rows(built, "select segment_key, count(*) from marts.segment_members group by 1"))
    assert counts.get("nps_detractors", 0) == int(0.2 * respondents)
    assert counts.get("nps_promoters", 0) == int(0.2 * respondents)
    emails = rows(built, "select email from marts.segment_members where segment_key = 'nps_detractors'")
    assert all(e and e.endswith("@example.com") for (e,) in emails)


def test_stickiness_matches_a_python_recount(built: str) -> None:
    """DAU / WAU / MAU per account-month and company-wide, recounted from the daily user lists."""
    as_of = date(2024, 6, 30)
    users: dict[tuple[str, date], set] = defaultdict(set)  # (account, day) -> users with a key event
    for account, day, ids in rows(built, "select account_id, activity_date, active_user_ids from marts.account_usage_daily"):
        users[(account, day)] |= set(ids)
    by_month: dict[tuple[str, date], dict[date, set]] = defaultdict(dict)
    for (account, day), ids in users.items():
        if ids and day <= as_of:
            by_month[(account, day.replace(day=1))][day] = ids
    expected = {}
    for (account, month), days in by_month.items():
        end = min(as_of, (month + timedelta(days=32)).replace(day=1) - timedelta(days=1))
        calendar = [month + timedelta(days=k) for k in range((end - month).days + 1)]
        mondays = [d for d in calendar if d.weekday() == 0]
        weekly = [len(set().union(*(users.get((account, m + timedelta(days=k)), set()) for k in range(7))))
                  for m in mondays]
        dau = sum(len(ids) for ids in days.values()) / len(calendar)
        wau = sum(weekly) / len(mondays) if mondays else None
        mau = len(set().union(*days.values()))
        expected[(account, month)] = (round(dau, 4), None if wau is None else round(wau, 4), mau)
    got = {(a, m): (float(d), None if w is None else float(w), n) for a, m, d, w, n in rows(
        built, "select account_id, month, dau, wau, mau from marts.account_stickiness_monthly")}
    assert len(expected) > 20
    assert got.keys() == expected.keys()
    for key, (dau, wau, mau) in expected.items():
        assert got[key][0] == pytest.approx(dau, abs=1e-4) and got[key][2] == mau, key
        assert (got[key][1] is None) == (wau is None) and (wau is None or got[key][1] == pytest.approx(wau, abs=1e-4)), key
    company = {m: (float(d), n, None if r is None else float(r)) for m, d, n, r in rows(
        built, "select month, dau, mau, dau_mau from marts.stickiness_cohorts where signup_cohort = 'all'")}
    for month in {m for _, m in expected}:
        dau = sum(v[0] for (a, m), v in expected.items() if m == month)
        mau = sum(v[2] for (a, m), v in expected.items() if m == month)
        assert company[month][0] == pytest.approx(dau, abs=1e-3) and company[month][1] == mau
        assert company[month][2] == pytest.approx(dau / mau, abs=1e-4)


def test_accounts_mart_and_membership_history(built: str) -> None:
    accounts = {r[0]: r[1:] for r in rows(built, """
        select account_id, lifecycle_stage, segments, signed_up_at from marts.accounts""")}
    assert accounts["acc_100001"][0] == "trialing" and "not_activated" in accounts["acc_100001"][1]
    assert accounts["acc_100002"][0] == "never_paid"
    assert accounts["acc_100001"][2].hour == 9  # the group call's time, not midnight
    history = rows(built, "select member_key, entered_on, exited_on from marts.segment_membership_history")
    members = rows(built, "select member_key, as_of_date from marts.segment_members")
    assert sorted((k, d, None) for k, d in members) == sorted(history)


def test_analysts_read_segment_definitions_and_descriptions(built: str) -> None:
    with warehouse.connect(built) as conn:
        conn.execute("set role analyst_readonly")
        keys = {k for (k,) in conn.execute("select segment_key from marts.segment_definitions").fetchall()}
        assert {"win_back", "welcome_call", "not_activated"} <= keys
        # persist_docs: the YAML descriptions are Postgres comments
        table, column = conn.execute("""
            select obj_description('marts.accounts'::regclass),
                   col_description('marts.accounts'::regclass, (
                       select attnum from pg_attribute
                       where attrelid = 'marts.accounts'::regclass and attname = 'lifecycle_stage'))""").fetchone()
    assert table.startswith("One row per account") and "trialing" in column


def test_analysts_read_the_views_over_intermediate_and_not_intermediate(built: str) -> None:
    """marts.account_usage_daily / account_health_daily are views over intermediate tables:
    readable with the analysts' role (a view runs with its owner's rights), while the
    intermediate tables themselves are not."""
    with warehouse.connect(built) as conn:
        kinds = dict(conn.execute("select table_name, table_type from information_schema.tables "
                                  "where table_schema = 'marts' and table_name like 'account_%'").fetchall())
        scored = conn.execute("select count(*) from intermediate.int_product__health_daily").fetchone()[0]
    assert kinds["account_health_daily"] == kinds["account_usage_daily"] == "VIEW"
    assert kinds["account_activation"] == "BASE TABLE"
    with warehouse.connect(built) as conn:
        conn.execute("set role analyst_readonly")
        assert conn.execute("select count(*) from marts.account_health_daily").fetchone()[0] == scored > 0
        assert conn.execute("select count(*) from marts.account_usage_daily").fetchone()[0] > 0
    with warehouse.connect(built) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("set role analyst_readonly")
        conn.execute("select 1 from intermediate.int_product__health_daily limit 1")
