"""monitor_freshness: a stalled source raises one alert, through the failure notifier,
to a local Slack (its own process), with no downstream run involved."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

from retention import runtime, warehouse
from retention.extract import stripe_state
from retention.load.schema import ensure_schema
from retention.local_servers.base import serve
from retention.quality.freshness import check

TOKEN = "xoxb-canary-freshness-31"
NOW = datetime.now(timezone.utc)


def land(url: str, events_loaded_at: datetime | None, stripe_read_at: datetime) -> None:
    with warehouse.connect(url, autocommit=True) as conn:
        ensure_schema(conn)
        if events_loaded_at is not None:
            conn.execute(
                "insert into raw.load_manifest (source, uri, status, rows_loaded, loaded_at)"
                " values ('events', 'file:///landing/events/day=1/a.jsonl.gz', 'loaded', 10, %s)",
                (events_loaded_at,))
        stripe_state.ensure(conn)
        for name in ("customers", "invoices"):
            stripe_state.save(conn, name, stripe_read_at, "events", 3, None)
        conn.execute("update raw.stripe_extract_state set updated_at = %s", (stripe_read_at,))


def test_check_names_what_is_stale_and_by_how_much(fresh_db: str):
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        never = check(conn, "events", timedelta(hours=26))
        assert not never.ok and "raw.load_manifest never arrived" in never.message()
    land(fresh_db, NOW - timedelta(hours=30), NOW - timedelta(hours=2))
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        events = check(conn, "events", timedelta(hours=26), now=NOW)
        assert events.message().startswith("events is stale: newest events 30h ago (limit 26h)")
        assert check(conn, "events", timedelta(hours=31), now=NOW).ok
        assert check(conn, "stripe", timedelta(hours=26), now=NOW).ok
        conn.execute("update raw.stripe_extract_state set updated_at = %s where object = 'invoices'",
                     (NOW - timedelta(days=5),))
        stripe = check(conn, "stripe", timedelta(hours=26), now=NOW)
        assert [part for part, _ in stripe.stale] == ["invoices"]  # customers is fresh
        assert "invoices 5.0d ago" in stripe.message()


def test_a_stalled_source_raises_one_alert_without_any_downstream_run(fresh_db: str, airflow_env):
    land(fresh_db, NOW - timedelta(days=3), NOW - timedelta(hours=1))
    env = airflow_env(fresh_db)
    with serve("slack", token=TOKEN, channels=["C0ALERTS"], per_channel_per_s=100) as slack:
        env["AIRFLOW_CONN_SLACK_ALERTS"] = json.dumps(
            {"conn_type": "retention_slack", "host": f"{slack.base_url}/api", "password": TOKEN,
             "extra": {"channel": "C0ALERTS"}})
        result = subprocess.run([runtime.airflow_bin(), "dags", "test", "monitor_freshness"], env=env,
                                capture_output=True, text=True, timeout=600)
        messages = slack.control.view("slack")["messages"]
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "events is stale: newest events 3.0d ago (limit 26h)" in output
    assert TOKEN not in output

    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as meta:
        run_id, = meta.execute("select run_id from dag_run where dag_id = 'monitor_freshness'"
                               " order by id desc limit 1").fetchone()
        states = dict(meta.execute("select task_id, state from task_instance where dag_id = 'monitor_freshness'"
                                   " and run_id = ?", (run_id,)).fetchall())
        tries = dict(meta.execute("select task_id, try_number from task_instance where dag_id = 'monitor_freshness'"
                                  " and run_id = ?", (run_id,)).fetchall())
    assert states == {"check_events": "failed", "check_stripe": "success"}
    assert tries["check_events"] == 1  # stale data is not retried

    assert len(messages) == 1  # one alert, for the stale source only
    posted = json.dumps(messages[0])
    assert "monitor_freshness.check_events failed" in posted and "events is stale" in posted
    assert TOKEN not in posted
