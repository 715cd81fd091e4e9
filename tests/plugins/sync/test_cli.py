"""``retention sync`` as a user runs it (a subprocess). The kill-and-rerun test, also
through the command line, is in test_webhook_sync.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import segments as seg


RETENTION = str(Path(sys.executable).parent / "retention")


def _cli(url: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "WAREHOUSE_URL": url}
    return subprocess.run([RETENTION, "sync", *args], env=env, capture_output=True, text=True, timeout=120, **kwargs)


def test_dry_run_status_and_errors_from_the_command_line(fresh_db: str, tmp_path: Path):
    cfg = seg.write_config(tmp_path / "syncs.yml", seg.spec(tmp=tmp_path / "exports"))
    seg.build(fresh_db, seg.accounts(7), publish=False)
    refused = _cli(fresh_db, "--dry-run", "--config", str(cfg))
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        "accts: error: no published marts: transform_dbt publishes them once their quality gates pass; nothing sent")

    seg.build(fresh_db, seg.accounts(7))
    dry = _cli(fresh_db, "--dry-run", "--config", str(cfg))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "accts (as of 2024-06-30): dry run: 7 adds, 0 updates, 0 removes, 0 unchanged, 0 invalid rows" in dry.stdout
    assert "would not halt" in dry.stdout
    assert not (tmp_path / "exports").exists()

    run = _cli(fresh_db, "--config", str(cfg))
    assert run.returncode == 0 and "succeeded: sent 7 (7 added" in run.stdout and "members.csv" in run.stdout
    # the progress bar (stderr, not a terminal): its final line once, changes sent of those planned
    [bar] = [line for line in run.stderr.splitlines() if line.startswith("sync accts")]
    assert "7/7 changes" in bar and "7 rows" in bar
    status = _cli(fresh_db, "status")
    assert "accts" in status.stdout and "succeeded" in status.stdout and "added 7" in status.stdout

    (tmp_path / "bad.yml").write_text("syncs:\n  - name: accts\n    destination: {kind: nope}\n")
    bad = _cli(fresh_db, "--config", str(tmp_path / "bad.yml"))
    assert bad.returncode == 2
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bad.yml: sync 'accts': destination.kind: unknown kind 'nope'" in errors[0]
    assert bad.stdout == ""
    assert "Traceback" not in bad.stdout + bad.stderr
