"""sync_segments end to end through one `airflow dags test` run: one sync delivers a
published segment to the files destination; another, whose mart was rebuilt after the
publication (its gates never passed), is refused with one line and sends nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "sync"))  # test input builders

import segments as seg  # noqa: E402

from retention import runtime  # noqa: E402
from retention.sync.config import CONFIG_ENV  # noqa: E402

pytestmark = pytest.mark.slow


def _last_run(env: dict[str, str]) -> tuple[dict[tuple[str, int], str], list[str]]:
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as meta:
        run_id, = meta.execute(
            "select run_id from dag_run where dag_id = 'sync_segments' order by id desc limit 1").fetchone()
        rows = meta.execute("select task_id, map_index, state, rendered_map_index from task_instance"
                            " where dag_id = 'sync_segments' and run_id = ?", (run_id,)).fetchall()
        xcoms = [str(v) for (v,) in meta.execute(
            "select value from xcom where dag_id = 'sync_segments' and run_id = ?", (run_id,)).fetchall()]
    return {(t, m): s for t, m, s, _ in rows} | {(t, r): s for t, m, s, r in rows if r}, xcoms


def test_sync_segments_syncs_published_marts_and_refuses_the_rest(fresh_db: str, airflow_env, tmp_path: Path):
    exports = tmp_path / "exports"
    rebuilt = seg.spec("rebuilt", tmp=exports, source={"model": "marts.other_members"})
    cfg = seg.write_config(tmp_path / "syncs.yml", seg.spec("accts", tmp=exports), rebuilt,
                           seg.spec("off", tmp=exports).model_copy(update={"enabled": False}))
    seg.build(fresh_db, seg.accounts(5), table="marts.other_members", publish=False)
    seg.build(fresh_db, seg.accounts(9))  # publishes both marts
    seg.build(fresh_db, seg.accounts(6), table="marts.other_members", publish=False)  # rebuilt, gates not passed
    env = {**airflow_env(fresh_db), CONFIG_ENV: str(cfg)}

    result = subprocess.run([runtime.airflow_bin(), "dags", "test", "sync_segments"], env=env,
                            capture_output=True, text=True, timeout=400)
    output = result.stdout + result.stderr
    assert result.returncode != 0  # one sync was refused
    states, xcoms = _last_run(env)
    assert states[("sync_files", "accts")] == "success"
    assert states[("sync_files", "rebuilt")] == "failed"
    assert ("sync_files", 2) not in states  # the disabled sync is not planned
    assert states[("sync_webhook", -1)] == "skipped"  # no webhook sync: nothing to map
    assert states[("summary", -1)] == "upstream_failed"
    assert states[("report", -1)] == "success"  # the report is rebuilt whatever the syncs did
    report = Path(env["RETENTION_REPORTS_DIR"]) / "retention_report.html"
    assert "Last sync per destination" in report.read_text()
    assert "marts.other_members was rebuilt after the last publication (as of 2024-06-30)" in output

    assert len(seg.change_files(exports, "accts")) == 9
    assert not (exports / "rebuilt").exists() and not (exports / "off").exists()
    assert seg.table(fresh_db, "select sync_name, status, added from activation.sync_runs") == [("accts", "succeeded", 9)]
    text = " ".join(xcoms)
    assert "acct_00001" not in text and "example.com" not in text  # XCom carries counts, never rows
    assert '"added": 9' in text or "'added': 9" in text
