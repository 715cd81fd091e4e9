"""The command line as a person meets it: pass-through flags reach dbt and Airflow, and an
error is one line with a non-zero exit and no traceback (``--debug`` shows it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RETENTION = str(Path(sys.executable).parent / "retention")


def run(*args: str, url: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    if url:
        env["WAREHOUSE_URL"] = url
    return subprocess.run([RETENTION, *args], env=env, capture_output=True, text=True, timeout=300)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def test_flags_pass_through_to_dbt_and_airflow(fresh_db: str):
    dbt = run("dbt", "--version", url=fresh_db)
    assert dbt.returncode == 0 and "Core:" in dbt.stdout + dbt.stderr
    airflow = run("airflow", "--help", url=fresh_db)
    assert airflow.returncode == 0 and "Usage: airflow" in airflow.stdout
    assert run("--version").stdout.startswith("retention ")


def test_an_unwritable_output_is_one_line_without_a_traceback(tmp_path: Path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    proc = run("simulate", "--preset", "tiny", "--out", str(blocked / "company"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(error_lines(proc)) == 1 and str(blocked) in error_lines(proc)[0]
    debug = run("--debug", "simulate", "--preset", "tiny", "--out", str(blocked / "company"))
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_a_missing_stripe_connection_says_what_to_set(fresh_db: str):
    proc = run("stripe-ingest", "--object", "prices", url=fresh_db)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert error_lines(proc) == [
        "error: the Airflow connection 'stripe_default' is not defined: set AIRFLOW_CONN_STRIPE_DEFAULT "
        "(README: Pointing it at your own sources) (--debug shows the traceback)"
    ]

