"""GX gates validate real warehouse tables with SQL pushed down, and fail loudly."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from retention import warehouse
from retention.config import GX_RESULTS_KEEP_DAYS, GX_RESULTS_KEEP_DAYS_VAR, settings
from retention.quality.gate import QualityGateFailed, file_context, prune_results, run_gates
from retention.quality.suites import GateSettings

AS_OF = date(2026, 3, 31)
REPO = Path(__file__).resolve().parents[3]


def _raw_events(url: str, rows: list[tuple[str, str, str]]) -> None:
    with warehouse.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists raw")
        conn.execute(
            """create table raw.events (
                message_id text, type text, event text, user_id text, anonymous_id text,
                account_id text, "timestamp" timestamptz, received_at timestamptz,
                properties jsonb, context jsonb, _file_id bigint, _line bigint)"""
        )
        with conn.cursor().copy(
            'copy raw.events (message_id, type, event, account_id, "timestamp") from stdin'
        ) as copy:
            for message_id, ts, account in rows:
                copy.write_row((message_id, "track", "Report Created", account, ts))


def _steady_week(days: int = 10, per_day: int = 5) -> list[tuple[str, str, str]]:
    return [
        (f"m{d}_{i}", f"2026-03-{31 - d:02d}T12:00:00Z", "acc_1")
        for d in range(days)
        for i in range(per_day)
    ]


def test_raw_events_gate_passes_on_clean_fresh_data(fresh_db):
    _raw_events(fresh_db, _steady_week())
    [outcome] = run_gates(fresh_db, ["raw_events"], GateSettings(as_of=AS_OF))
    assert outcome.success and outcome.evaluated >= 8 and outcome.failed == []


def test_raw_events_gate_catches_duplicates_staleness_and_volume_collapse(fresh_db):
    rows = _steady_week()
    rows = [r for r in rows if not r[0].startswith("m0_")] + [("m0_0", "2026-03-31T01:00:00Z", "acc_1")]
    rows.append(rows[0])  # a duplicated message_id
    _raw_events(fresh_db, rows)
    stale = GateSettings(as_of=date(2026, 4, 30), max_staleness_days=3)
    with pytest.raises(QualityGateFailed) as err:
        run_gates(fresh_db, ["raw_events"], stale)
    message = str(err.value)
    assert "expect_column_values_to_be_unique(message_id)" in message
    assert "expect_column_max_to_be_between(timestamp)" in message
    assert "newest day's event volume" in message
    # No row values (message ids, account ids) leak into the error.
    assert "acc_1" not in message and "m0_0" not in message


def test_file_context_writes_results_but_no_credentials(fresh_db, tmp_path):
    _raw_events(fresh_db, _steady_week())
    root = tmp_path / "expectations"
    shutil.copytree(REPO / "expectations", root)
    url = warehouse.url_from_params(replace(warehouse.parse_url(fresh_db), password="pw-should-not-leak"))
    # Trust auth ignores the password, so the run succeeds and we can look for leaks.
    [outcome] = run_gates(url, ["raw_events"], GateSettings(as_of=AS_OF), context=file_context(root))
    assert outcome.success
    # a daily run's window too: both find their assets committed in great_expectations.yml
    [daily] = run_gates(url, ["raw_events"], GateSettings(as_of=AS_OF, since=AS_OF), context=file_context(root))
    assert daily.success
    yml = "great_expectations.yml"
    assert (root / yml).read_text() == (REPO / "expectations" / yml).read_text(), "the GX config drifted"
    assert list((root / "uncommitted" / "validations").rglob("*.json")), "no validation result stored"
    assert (root / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()
    for path in root.rglob("*"):
        if path.is_file():
            assert "pw-should-not-leak" not in path.read_text(errors="ignore"), path


def test_a_definition_stored_by_an_earlier_layout_is_generated_again(fresh_db, tmp_path):
    """Validation definitions are generated files: one written when the daily window's asset
    sat in the whole-table datasource (before `warehouse_window`) must not fail the gate."""
    _raw_events(fresh_db, _steady_week())
    root = tmp_path / "expectations"
    shutil.copytree(REPO / "expectations", root, ignore=shutil.ignore_patterns("uncommitted", "*.json"))
    [daily] = run_gates(fresh_db, ["raw_events"], GateSettings(as_of=AS_OF, since=AS_OF), context=file_context(root))
    assert daily.success
    stored = root / "validation_definitions" / "raw_events.json"
    definition = json.loads(stored.read_text())
    assert definition["data"]["datasource"]["name"] == "warehouse_window"
    definition["data"]["datasource"] = {"name": "warehouse", "id": "a27a9f96-a2db-4b86-9e12-0050fc3b5c5a"}
    stored.write_text(json.dumps(definition))

    [again] = run_gates(fresh_db, ["raw_events"], GateSettings(as_of=AS_OF, since=AS_OF), context=file_context(root))
    assert again.success
    assert json.loads(stored.read_text())["data"]["datasource"]["name"] == "warehouse_window"


def _manifest_with_quarantine(url: str, files: list[tuple[str, int, int]]) -> None:
    """raw.load_manifest + raw.quarantine (the ingestion's own DDL): (uri, loaded, quarantined)."""
    from retention.load import schema

    with warehouse.connect(url) as conn:
        schema.ensure_schema(conn)
        for uri, loaded, quarantined in files:
            file_id = conn.execute(
                "insert into raw.load_manifest (source, uri, rows_loaded, rows_quarantined, status)"
                " values ('events', %s, %s, %s, 'loaded') returning file_id",
                (uri, loaded, quarantined),
            ).fetchone()[0]
            for line in range(quarantined):
                conn.execute(
                    "insert into raw.quarantine (file_id, uri, line, reason) values (%s, %s, %s, 'malformed_json')",
                    (file_id, uri, line + 1),
                )


def test_raw_quarantine_gate_passes_under_the_share_and_fails_over_it(fresh_db):
    # One reject in a tiny file (e.g. a truncated day-one file) is over 5% but not a flood.
    _manifest_with_quarantine(
        fresh_db, [("file:///a.jsonl.gz", 1000, 3), ("file:///b.jsonl.gz", 500, 0), ("file:///tiny.jsonl.gz", 16, 1)]
    )
    [outcome] = run_gates(fresh_db, ["raw_quarantine"], GateSettings(as_of=AS_OF))
    assert outcome.success and outcome.evaluated == 3

    _manifest_with_quarantine(fresh_db, [("file:///flood.jsonl.gz", 90, 10)])  # 10% of one file
    with pytest.raises(QualityGateFailed) as err:
        run_gates(fresh_db, ["raw_quarantine"], GateSettings(as_of=AS_OF))
    assert "share of quarantined records per file <= 5% (files with 10+ rejects)" in str(err.value)
    assert "not evaluated" not in str(err.value)
    # The threshold is a setting.
    [outcome] = run_gates(fresh_db, ["raw_quarantine"], GateSettings(as_of=AS_OF, max_quarantine_share=0.2))
    assert outcome.success


def test_a_gate_that_cannot_run_says_why(fresh_db):
    _raw_events(fresh_db, _steady_week())
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        conn.execute("alter table raw.events rename column type to kind")
    with pytest.raises(QualityGateFailed) as err:
        run_gates(fresh_db, ["raw_events"], GateSettings(as_of=AS_OF))
    message = str(err.value)
    assert "expect_table_columns_to_match_set" in message
    assert "expect_column_values_to_be_in_set(type) [not evaluated:" in message


def _marts(url: str, health: list[tuple[str, str, float, str]], members: list[tuple]) -> None:
    with warehouse.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists marts")
        conn.execute("create table marts.account_health_daily (account_id text, date date, health_score numeric, tier text)")
        conn.execute(
            "create table marts.segment_members (segment_key text, account_id text, reason text, email text,"
            " mrr numeric, health_score numeric, tier text)"
        )
        with conn.cursor() as cur:
            cur.executemany("insert into marts.account_health_daily values (%s, %s, %s, %s)", health)
            cur.executemany("insert into marts.segment_members values (%s, %s, %s, %s, %s, %s, %s)", members)


def test_marts_gates_pass_on_clean_marts_and_name_each_problem(fresh_db):
    good_member = ("health_dropped_to_red", "acc_1", "score 41 (was 63)", "ada@example.com", 120, 41.0, "red")
    _marts(
        fresh_db,
        [("acc_1", "2026-03-31", 41.0, "red"), ("acc_1", "2026-03-30", 63.0, "yellow"), ("acc_9", "2026-03-31", None, "unscored")],
        [good_member],
    )
    outcomes = run_gates(fresh_db, ["marts_account_health_daily", "marts_segment_members"], GateSettings(as_of=AS_OF))
    assert all(o.success for o in outcomes)

    with warehouse.connect(fresh_db, autocommit=True) as conn:
        conn.execute("insert into marts.account_health_daily values ('acc_1', '2026-03-31', 140, 'purple')")
        conn.execute(
            "insert into marts.segment_members values ('inactive_14d', 'acc_2', null, 'not-an-email', -5, 50, 'yellow')"
        )
    with pytest.raises(QualityGateFailed) as err:
        run_gates(fresh_db, ["marts_account_health_daily", "marts_segment_members"], GateSettings(as_of=AS_OF))
    message = str(err.value)
    for failure in (
        "expect_column_values_to_be_between(health_score)", "expect_column_values_to_be_in_set(tier)",
        "expect_compound_columns_to_be_unique(['account_id', 'date'])", "expect_column_values_to_not_be_null(reason)",
        "expect_column_values_to_match_regex(email)", "expect_column_values_to_be_between(mrr)",
    ):
        assert failure in message, message
    assert "not-an-email" not in message and "acc_2" not in message


def _raw_stripe(url: str, invoices: list[dict], subscriptions: list[dict], prices: list[dict]) -> None:
    from retention.extract.stripe import STRIPE_OBJECTS
    from retention.load.stripe import ensure_tables, to_row

    with warehouse.connect(url, autocommit=True) as conn:
        ensure_tables(conn, [f"stripe_{name}" for name in STRIPE_OBJECTS])
        for table, objs in (("invoices", invoices), ("subscriptions", subscriptions), ("prices", prices)):
            for obj in objs:
                row = to_row({"created": 1_700_000_000, **obj})
                conn.execute(
                    f"insert into raw.stripe_{table} values (%s, %s, %s, now(), %s)",
                    (row.id, row.created, row.data, row.content_hash),
                )


def test_raw_stripe_gate_stops_invalid_billing_values(fresh_db):
    good_invoice = {"id": "in_1", "amount_due": 100, "amount_paid": 100, "amount_remaining": 0, "currency": "usd"}
    invoices = [good_invoice, {**good_invoice, "id": "in_2", "amount_paid": -5},
                {**good_invoice, "id": "in_3", "currency": "zzz"},
                {**good_invoice, "id": "in_4", "amount_due": -1, "deleted": True}]  # deleted: not judged
    subscriptions = [{"id": "sub_1", "customer": "cus_1", "currency": "eur"}, {"id": "sub_2", "customer": None,
                                                                              "currency": "usd"}]
    prices = [{"id": "price_1", "unit_amount": 500, "currency": "jpy"}, {"id": "price_2", "unit_amount": -500,
                                                                        "currency": "usd"}]
    _raw_stripe(fresh_db, invoices, subscriptions, prices)
    with pytest.raises(QualityGateFailed) as err:
        run_gates(fresh_db, ["raw_stripe_invoices"], GateSettings(as_of=AS_OF))
    message = str(err.value)
    assert "invoices: amount_due, amount_paid, amount_remaining >= 0 and a known currency" in message
    assert "subscriptions: every one has a customer" in message
    assert "prices: unit_amount >= 0" in message
    assert "in_2" not in message and "not evaluated" not in message

    with warehouse.connect(fresh_db, autocommit=True) as conn:
        conn.execute("delete from raw.stripe_invoices where id in ('in_2', 'in_3')")
        conn.execute("delete from raw.stripe_subscriptions where id = 'sub_2'")
        conn.execute("delete from raw.stripe_prices where id = 'price_2'")
    [outcome] = run_gates(fresh_db, ["raw_stripe_invoices"], GateSettings(as_of=AS_OF))
    assert outcome.success and outcome.evaluated == 7


def _partitioned_events(url: str, rows: list[tuple[str, str]]) -> None:
    """raw.events with the ingestion's DDL (partitioned by month): (message_id, timestamp)."""
    from retention.load import schema

    with warehouse.connect(url, autocommit=True) as conn:
        schema.ensure_schema(conn)
        schema.ensure_month_partitions(conn, {date.fromisoformat(ts[:7] + "-01") for _, ts in rows})
        with conn.cursor().copy(
            'copy raw.events (message_id, type, event, account_id, "timestamp", _file_id, _line) from stdin'
        ) as copy:
            for line, (message_id, ts) in enumerate(rows):
                copy.write_row((message_id, "track", "Report Created", "acc_1", ts, 1, line))


def _scans(url: str, table: str) -> int:
    with warehouse.connect(url, autocommit=True) as conn:
        conn.execute("select pg_stat_clear_snapshot()")
        return conn.execute(
            "select coalesce(seq_scan, 0) + coalesce(idx_scan, 0) from pg_stat_user_tables"
            " where schemaname = 'raw' and relname = %s", (table,),
        ).fetchone()[0]


def test_a_daily_run_reads_only_the_newly_landed_events(fresh_db):
    week = [(m, ts.replace("Z", "+00:00")) for m, ts, _ in _steady_week()]
    old = [("m_old", "2026-01-15T12:00:00+00:00"), ("m_old", "2026-01-16T12:00:00+00:00")]  # a duplicate in January
    _partitioned_events(fresh_db, week + old)
    daily = GateSettings(as_of=AS_OF, since=AS_OF)  # the run processes 2026-03-31
    assert daily.window_start() == date(2026, 3, 24)  # widened to the week the volume check compares

    january = _scans(fresh_db, "events_p202601")
    [outcome] = run_gates(fresh_db, ["raw_events"], daily)
    assert outcome.success, outcome.failed  # January's duplicate is not in the window...
    assert _scans(fresh_db, "events_p202601") == january  # ...and January was not read at all
    with pytest.raises(QualityGateFailed, match=r"expect_column_values_to_be_unique\(message_id\)"):
        run_gates(fresh_db, ["raw_events"], GateSettings(as_of=AS_OF))  # a full refresh reads every row

    _partitioned_events(fresh_db, [("m0_0", "2026-03-31T18:00:00+00:00")])  # a duplicate landed today
    with pytest.raises(QualityGateFailed, match=r"expect_column_values_to_be_unique\(message_id\)"):
        run_gates(fresh_db, ["raw_events"], daily)


# Stored results are kept for the configured days; the Data Docs stay current.

def _stored(root: Path) -> set[str]:
    base = root / "uncommitted" / "validations"
    return {p.relative_to(base).as_posix().removesuffix(".json") for p in base.rglob("*.json")}


def _pages(root: Path) -> set[str]:
    base = root / "uncommitted" / "data_docs" / "local_site" / "validations"
    return {p.relative_to(base).as_posix().removesuffix(".html") for p in base.rglob("*.html")}


def test_old_results_are_pruned_and_the_data_docs_show_the_newest_even_failing(fresh_db, tmp_path):
    _raw_events(fresh_db, _steady_week())
    root = tmp_path / "expectations"
    shutil.copytree(REPO / "expectations", root, ignore=shutil.ignore_patterns("uncommitted"))
    context = file_context(root)

    [passed] = run_gates(fresh_db, ["raw_events"], GateSettings(as_of=AS_OF), context=context, keep_days=14)
    assert passed.success
    [recent] = _stored(root)
    assert _pages(root) == {recent}

    # A result from 30 days ago (same suite, GX's layout: suite/run name/run time/batch), with its page.
    suite, run_name, _, batch = recent.split("/")
    old_time = (datetime.now(timezone.utc) - timedelta(days=30)).strftime("%Y%m%dT%H%M%S.%fZ")
    old = f"{suite}/{run_name}/{old_time}/{batch}"
    validations = root / "uncommitted" / "validations"
    (validations / old).parent.mkdir(parents=True)
    shutil.copy(validations / f"{recent}.json", validations / f"{old}.json")
    context.build_data_docs()
    assert _pages(root) == {recent, old}
    assert prune_results(context, 0) == 0 and prune_results(context, 31) == 0  # 0: keep every result

    # The next run fails (stale as of a later day): the 30-day-old result goes, with its page;
    # the recent one stays; the failing one is stored and linked from the index as failed.
    [failed] = run_gates(fresh_db, ["raw_events"], GateSettings(as_of=date(2026, 5, 31)),
                         context=context, raise_on_failure=False, keep_days=14)
    assert not failed.success
    [newest] = _stored(root) - {recent}
    assert _stored(root) == {recent, newest} and _pages(root) == {recent, newest}
    index = (root / "uncommitted" / "data_docs" / "local_site" / "index.html").read_text()
    assert old_time not in index
    link = "'_table_row_link_path': 'validations/{}.html', '_validation_success_text': '{}'"
    assert link.format(recent, "Success") in index
    assert link.format(newest, "Failed") in index


def test_keep_days_setting():
    assert settings({}).gx_results_keep_days == GX_RESULTS_KEEP_DAYS
    assert settings({GX_RESULTS_KEEP_DAYS_VAR: "0"}).gx_results_keep_days == 0
    assert settings({GX_RESULTS_KEEP_DAYS_VAR: " 30 "}).gx_results_keep_days == 30
    with pytest.raises(ValueError, match=GX_RESULTS_KEEP_DAYS_VAR):
        settings({GX_RESULTS_KEEP_DAYS_VAR: "two weeks"})
