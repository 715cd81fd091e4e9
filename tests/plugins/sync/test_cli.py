"""``retention sync`` as a user runs it (a subprocess), and a run killed between its send
and its state write, then run again."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import segments as seg

from retention import warehouse
from retention.sync import engine
from retention.sync.errors import SyncLocked

RETENTION = str(Path(sys.executable).parent / "retention")


def _cli(url: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "WAREHOUSE_URL": url}
    return subprocess.run([RETENTION, "sync", *args], env=env, capture_output=True, text=True, timeout=120, **kwargs)


def test_dry_run_status_and_errors_from_the_command_line(fresh_db: str, tmp_path: Path):
    cfg = seg.write_config(tmp_path / "syncs.yml", seg.spec(tmp=tmp_path / "exports"))
    seg.build(fresh_db, seg.accounts(7), publish=False)
    refused = _cli(fresh_db, "--dry-run", "--config", str(cfg))
    assert refused.returncode == 1
    assert refused.stdout.strip() == "accts: error: no published marts: transform_dbt publishes them once their quality gates pass; nothing sent"

    seg.build(fresh_db, seg.accounts(7))
    dry = _cli(fresh_db, "--dry-run", "--config", str(cfg))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "accts (as of 2024-06-30): dry run: 7 adds, 0 updates, 0 removes, 0 unchanged, 0 invalid rows" in dry.stdout
    assert "would not halt" in dry.stdout
    assert not (tmp_path / "exports").exists()

    run = _cli(fresh_db, "--config", str(cfg))
    assert run.returncode == 0 and "succeeded: sent 7 (7 added" in run.stdout and "members.csv" in run.stdout
    status = _cli(fresh_db, "status")
    assert "accts" in status.stdout and "succeeded" in status.stdout and "added 7" in status.stdout

    (tmp_path / "bad.yml").write_text("syncs:\n  - name: accts\n    destination: {kind: nope}\n")
    bad = _cli(fresh_db, "--config", str(tmp_path / "bad.yml"))
    assert bad.returncode == 2
    assert bad.stdout.count("\n") == 1 and "bad.yml: sync 'accts': destination.kind: unknown kind 'nope'" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr


def test_a_run_killed_between_send_and_state_write_delivers_every_change_once_after_a_rerun(
    fresh_db: str, tmp_path: Path
):
    exports = tmp_path / "exports"
    spec = seg.spec(tmp=exports, limits={"batch_size": 5})
    cfg = seg.write_config(tmp_path / "syncs.yml", spec)
    seg.build(fresh_db, seg.accounts(12))
    engine.plan_sync(fresh_db, spec)  # creates the activation schema

    with warehouse.connect(fresh_db) as blocker:
        # Hold the state table: the run sends its first batch, then waits at the state write.
        blocker.execute("lock table activation.sync_state in exclusive mode")
        env = {**os.environ, "WAREHOUSE_URL": fresh_db}
        proc = subprocess.Popen([RETENTION, "sync", "--config", str(cfg)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while not list((exports / "accts" / "changes").glob("*.jsonl")):
                assert proc.poll() is None and time.monotonic() < deadline, "the run never sent its first batch"
                time.sleep(0.1)
            time.sleep(0.5)
            with pytest.raises(SyncLocked):  # meanwhile, a second run of the same sync stops at once
                engine.run_sync(fresh_db, spec)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        blocker.rollback()

    killed = seg.change_files(exports, "accts")
    assert len(killed) == 5
    assert seg.table(fresh_db, "select count(*) from activation.sync_state") == [(0,)]  # nothing recorded

    rerun = engine.run_sync(fresh_db, spec)
    assert (rerun.added, rerun.failed) == (12, 0)
    delivered = seg.change_files(exports, "accts")
    by_id = collections.Counter(c["delivery_id"] for c in delivered)
    unique = {c["delivery_id"]: c["key"] for c in delivered}
    assert sorted(unique.values()) == sorted(f"acct_{i:05d}" for i in range(1, 13))  # each change once after dedup
    assert {d for d, n in by_id.items() if n == 2} == {c["delivery_id"] for c in killed}  # the resends kept their ids
    assert seg.table(fresh_db, "select status from activation.sync_runs order by run_id") == [("interrupted",), ("succeeded",)]
    assert engine.run_sync(fresh_db, spec).sent == 0
