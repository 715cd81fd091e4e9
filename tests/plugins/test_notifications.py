"""The failure alert: one Slack message per failed task, nothing secret or personal in it, a no-op without a connection."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from retention.airflow_defaults import DEFAULT_ARGS
from retention.local_servers.base import serve
from retention.notifications import FailureAlert, alert_text, scrub

TOKEN = "xoxb-canary-alert-token-77"


def failure_context(exc: Exception) -> dict:
    ti = SimpleNamespace(dag_id="sync_segments", task_id="sync", map_index=2, try_number=3,
                         log_url="http://airflow.local/dags/sync_segments/runs/r1/tasks/sync?map_index=2")
    return {"ti": ti, "dag_run": SimpleNamespace(run_id="scheduled__2024-06-30"), "exception": exc}


def test_every_dag_task_gets_the_alert():
    assert isinstance(DEFAULT_ARGS["on_failure_callback"], FailureAlert)


def test_scrub_removes_emails_urls_and_tokens():
    text = scrub("key a@b.example failed at https://hooks.slack.com/services/T/B/secret with xoxb-1-2 Bearer abc.def")
    assert text == "key <email> failed at <url> with <token> Bearer <redacted>"


def test_without_a_slack_connection_it_logs_one_line_and_sends_nothing(monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_ALERTS", raising=False)
    caplog.set_level(logging.INFO, logger="retention.notifications")
    FailureAlert()(failure_context(RuntimeError("boom")))
    lines = [r.getMessage() for r in caplog.records if r.name == "retention.notifications"]
    assert lines == ["failure alert: no Slack connection 'slack_alerts', so no Slack alert "
                     "(Airflow: sync_segments.sync[2] failed)"]


def test_one_alert_posted_without_secrets_or_personal_data(monkeypatch):
    with serve("slack", token=TOKEN, channels=["C0ALERTS"], per_channel_per_s=100) as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(
            {"conn_type": "retention_slack", "host": f"{slack.base_url}/api", "password": TOKEN,
             "extra": {"channel": "C0ALERTS"}}))
        exc = RuntimeError(f"sync 'ic': owner7@example.com rejected; token={TOKEN}")
        FailureAlert()(failure_context(exc))
        messages = slack.control.view("slack")["messages"]
    assert len(messages) == 1
    posted = json.dumps(messages[0])
    assert "sync_segments.sync[2] failed" in posted and "scheduled__2024-06-30" in posted and "RuntimeError" in posted
    assert TOKEN not in posted and "owner7@example.com" not in posted


def test_alert_text_names_the_task_and_run():
    title, details = alert_text(failure_context(ValueError("bad config: syncs.yml sync 'x' mapping: empty")))
    assert title == "Airflow: sync_segments.sync[2] failed"
    assert details.splitlines()[0] == "run scheduled__2024-06-30, try 3"
    assert details.splitlines()[1] == "ValueError: bad config: syncs.yml sync 'x' mapping: empty"


def test_alert_email_where_smtp_is_configured(monkeypatch, tmp_path):
    """A local SMTP server (the standard library's, in its own process) receives one alert mail."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "smtp.out"
    with out.open("wb") as sink:
        server = subprocess.Popen([sys.executable, "-W", "ignore", "-m", "smtpd", "-n", "-c", "DebuggingServer",
                                   f"127.0.0.1:{port}"], stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline, "smtpd did not start"
                    time.sleep(0.1)
            monkeypatch.delenv("AIRFLOW_CONN_SLACK_ALERTS", raising=False)
            monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(
                {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                 "extra": {"from_email": "alerts@retention.example", "disable_tls": True, "disable_ssl": True}}))
            monkeypatch.setenv("RETENTION_ALERT_EMAIL", "oncall@retention.example")
            FailureAlert(smtp_conn_id="smtp_default")(failure_context(RuntimeError(f"key acct_1 failed; token={TOKEN}")))
            deadline = time.monotonic() + 10
            while b"END MESSAGE" not in out.read_bytes():
                assert time.monotonic() < deadline, "no mail arrived"
                time.sleep(0.1)
        finally:
            server.terminate()
            server.wait()
    mail = out.read_text()
    assert mail.count("---------- MESSAGE FOLLOWS ----------") == 1
    assert "Subject: Airflow: sync_segments.sync[2] failed" in mail and "oncall@retention.example" in mail
    assert TOKEN not in mail
