"""The webhook destination through the engine and ``retention sync``, against the local receiver
in its own process: exactly once under faults, partial failures, a SIGKILL between send and
state write, and a canary secret that appears nowhere."""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import segments as seg

from retention import warehouse
from retention.hooks.webhook import connection_json
from retention.local_servers import serve
from retention.sync import engine
from retention.sync.errors import SyncError

CANARY = "canary-webhook-secret-0c7e51"
RETENTION = str(Path(sys.executable).parent / "retention")
ALL_FAULTS = ["429_seconds", "429_date", "500", "slow", "reset", "partial", "500_after", "slow_after", "reset_after"]
KEYS = [f"acct_{i:05d}" for i in range(1, 61)]


@pytest.fixture(scope="module")
def receiver():
    with serve("webhook", secret=CANARY, reject_keys=["acct_00007"]) as running:
        yield running


@pytest.fixture
def webhook(receiver, monkeypatch):
    receiver.control.reset()
    monkeypatch.setenv("AIRFLOW_CONN_WEBHOOK_SYNC_TEST", connection_json(
        f"{receiver.base_url}/retention", CANARY,
        rate_limit_per_s=1000, burst=20, timeout=0.4, retry_base_delay=0.01,
    ))
    return receiver


def webhook_spec(batch_size: int = 7):
    return seg.spec(destination={"kind": "webhook", "conn_id": "webhook_sync_test", "options": {}},
                    limits={"batch_size": batch_size})


def received_keys(receiver) -> list[str]:
    return sorted(r["key"] for r in receiver.control.view("records").values())


def sync_state(url: str) -> dict[str, tuple]:
    rows = seg.table(url, "select key, last_status, attempts from activation.sync_state where sync_name = 'accts'")
    return {r[0]: r[1:] for r in rows}


def test_every_change_lands_exactly_once_under_20_percent_faults(fresh_db: str, webhook):
    seg.build(fresh_db, seg.accounts(60))
    spec = webhook_spec()
    webhook.control.faults(rate=0.2, kinds=ALL_FAULTS, seed=12, retry_after_s=0, slow_s=0.6)
    first = engine.run_sync(fresh_db, spec)
    assert first.status == "succeeded" and first.sent == 60
    assert first.failed >= 1  # acct_00007 at least (the receiver always rejects it)
    failed_first = {k for k, (status, _) in sync_state(fresh_db).items() if status != "ok"}
    assert "acct_00007" in failed_first

    for _ in range(3):  # later runs retry only the failed rows
        again = engine.run_sync(fresh_db, spec)
        assert again.sent == len(failed_first)
        failed_first = {k for k, (status, _) in sync_state(fresh_db).items() if status != "ok"}
        if failed_first == {"acct_00007"}:
            break
    assert failed_first == {"acct_00007"}
    assert received_keys(webhook) == [k for k in KEYS if k != "acct_00007"]  # each once, after dropping repeats
    assert sync_state(fresh_db)["acct_00007"][1] >= 2  # retried each run, never confirmed

    webhook.control.faults()
    before = len(webhook.control.requests(bodies=False))
    seg.build(fresh_db, [r for r in seg.accounts(60) if r["account_id"] != "acct_00007"])
    assert engine.run_sync(fresh_db, spec).sent == 0  # the failed row left the segment before it ever landed
    unchanged = engine.run_sync(fresh_db, spec)
    assert unchanged.sent == 0
    assert len(webhook.control.requests(bodies=False)) == before  # zero requests


def test_partial_rejection_fails_only_the_named_rows_and_they_are_retried_next_run(fresh_db: str, webhook):
    seg.build(fresh_db, seg.accounts(14))
    spec = webhook_spec(batch_size=14)
    webhook.control.faults(rate=1.0, kinds=["partial"], seed=4, count=1, partial_share=0.25)
    first = engine.run_sync(fresh_db, spec)
    state = sync_state(fresh_db)
    failed = sorted(k for k, (status, _) in state.items() if status != "ok")
    assert "acct_00007" in failed and 2 <= len(failed) <= 5 and first.failed == len(failed)
    log_rows = seg.table(fresh_db, "select key, http_status, error from activation.sync_log where status <> 'ok'")
    assert sorted(r[0] for r in log_rows) == failed and all(r[1] == 200 for r in log_rows)
    assert all(r[2].startswith("webhook receiver rejected the record: ") for r in log_rows)

    second = engine.run_sync(fresh_db, spec)
    assert second.sent == len(failed) and second.failed == 1  # only acct_00007, rejected for good
    assert received_keys(webhook) == [k for k in KEYS[:14] if k != "acct_00007"]
    deliveries = webhook.control.view("deliveries")
    assert [d["records"] for d in deliveries] == [14, len(failed)]  # the others were not resent


def test_a_wrong_secret_fails_the_run_in_one_line_without_secrets(fresh_db: str, webhook, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AIRFLOW_CONN_WEBHOOK_SYNC_TEST", connection_json(f"{webhook.base_url}/retention", "x" + CANARY))
    seg.build(fresh_db, seg.accounts(3))
    with pytest.raises(SyncError) as caught:
        engine.run_sync(fresh_db, webhook_spec())
    assert "401 bad_signature" in str(caught.value) and "webhook_sync_test" in str(caught.value)
    stored = seg.table(fresh_db, "select coalesce(error, '') from activation.sync_runs")
    assert "401 bad_signature" in stored[0][0]
    for text in (str(caught.value), caplog.text, stored[0][0]):
        assert CANARY not in text

    monkeypatch.setenv("AIRFLOW_CONN_WEBHOOK_SYNC_TEST", connection_json(f"{webhook.base_url}/retention", ""))
    with pytest.raises(SyncError, match="'webhook_sync_test' has no password: set it to the webhook's shared signing"):
        engine.run_sync(fresh_db, webhook_spec())
    assert webhook.control.view("summary")["batches"] == 0  # nothing was ever accepted


def test_canary_secret_never_in_logs_state_or_errors(fresh_db: str, webhook, caplog):
    caplog.set_level(logging.DEBUG)
    seg.build(fresh_db, seg.accounts(20))
    webhook.control.faults(rate=0.5, kinds=["500", "reset", "partial", "429_seconds"], seed=3, retry_after_s=0)
    outcome = engine.run_sync(fresh_db, webhook_spec())
    texts = [caplog.text, repr(outcome.summary())]
    for table in ("sync_log", "sync_runs", "sync_state"):
        texts += [repr(r) for r in seg.table(fresh_db, f"select * from activation.{table}")]
    for text in texts:
        assert CANARY not in text
        assert "@example.com" not in text  # no payload value either (the rows carry emails)


def test_a_run_killed_between_send_and_state_write_lands_every_change_once(fresh_db: str, webhook, tmp_path: Path):
    spec = webhook_spec(batch_size=5)
    cfg = seg.write_config(tmp_path / "syncs.yml", spec)
    seg.build(fresh_db, seg.accounts(12))
    engine.plan_sync(fresh_db, spec)  # creates the activation schema
    with warehouse.connect(fresh_db) as blocker:
        # Hold the state table: the run delivers its first batch, then waits at the state write.
        blocker.execute("lock table activation.sync_state in exclusive mode")
        proc = subprocess.Popen([RETENTION, "sync", "--config", str(cfg)], env={**os.environ, "WAREHOUSE_URL": fresh_db},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while not webhook.control.view("summary")["unique_records"]:
                assert proc.poll() is None and time.monotonic() < deadline, "the run never delivered its first batch"
                time.sleep(0.1)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        blocker.rollback()
    assert webhook.control.view("summary")["unique_records"] == 5
    assert seg.table(fresh_db, "select count(*) from activation.sync_state") == [(0,)]

    rerun = engine.run_sync(fresh_db, spec)
    assert (rerun.added, rerun.failed) == (11, 1)  # acct_00007: rejected by the receiver
    records = webhook.control.view("records")
    assert sorted(r["key"] for r in records.values()) == [k for k in KEYS[:12] if k != "acct_00007"]
    received = collections.Counter(r["received"] for r in records.values())
    assert received == {2: 5, 1: 6}  # the killed batch arrived again, with the same delivery ids
    assert engine.run_sync(fresh_db, spec).sent == 1  # only the rejected row, again
