"""transform_dbt when things fail inside the one `dbt build` (Cosmos' watcher producer;
`airflow dags test`, real Airflow, dbt and Postgres), in one run:

* a dbt data test fails (an NPS score of 11, a staging model): the staging models' task
  fails for good, naming the model and the test, and nothing downstream of it runs;
  inside the build dbt still built the models that do not depend on it (Airflow, rendering
  the staging models as one task, marks them upstream_failed);
* a model fails in the build for a passing reason (its table is locked past the
  session's `lock_timeout`): its task fails, and its retry rebuilds the model and its
  tests on its own (`dbt build --select`) and succeeds."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dbt"))  # raw-data builders

import product_raw  # noqa: E402
from test_transform_dbt import _last_run_states  # noqa: E402

from retention import runtime, warehouse  # noqa: E402

pytestmark = pytest.mark.slow

PRODUCER = "dbt.dbt_producer_watcher"


def _hold_lock_until_built(url: str, table: str, meta_db: Path, since: str, stop: threading.Event) -> None:
    """Hold an exclusive lock on ``table`` until the producer (the one `dbt build`) has
    ended: the build's statement on it times out; the model's retry then finds it free.
    The Airflow home is the session's: only a producer that ended ``since`` (UTC, as
    Airflow's SQLite stores it) counts, not an earlier test's run of the DAG."""
    with warehouse.connect(url) as conn:
        conn.execute(f"lock table {table} in access exclusive mode")
        while not stop.is_set():
            time.sleep(1)
            if not meta_db.exists():
                continue
            try:
                with sqlite3.connect(meta_db, timeout=1) as meta:
                    row = meta.execute("select state from task_instance where dag_id = 'transform_dbt'"
                                       " and task_id = ? and state in ('success', 'failed') and end_date >= ?",
                                       (PRODUCER, since)).fetchone()
            except sqlite3.OperationalError:  # Airflow is writing: look again
                continue
            if row:
                break
        conn.rollback()


def test_a_failing_test_stops_downstream_and_a_retry_repairs_a_failed_model(fresh_db: str, airflow_env):
    product, stripe = product_raw.build_world()
    product.nps_response("acc_000004", "u_bad", 11, "2024-06-25")  # NPS is 0-10: accepted_values fails
    stripe.load(fresh_db)
    product.load(fresh_db)
    with warehouse.connect(fresh_db, autocommit=True) as conn:  # a leaf mart, there from an earlier build
        conn.execute("create schema if not exists marts")
        conn.execute("create table marts.segment_definitions (earlier int)")
    env = airflow_env(fresh_db)
    env["PGOPTIONS"] = "-c lock_timeout=3s"  # every warehouse session of the run
    stop = threading.Event()
    locker = threading.Thread(target=_hold_lock_until_built, daemon=True, args=(
        fresh_db, "marts.segment_definitions", Path(env["AIRFLOW_HOME"]) / "airflow.db",
        datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), stop))
    locker.start()
    try:
        result = subprocess.run(
            [runtime.airflow_bin(), "dags", "test", "transform_dbt", "2024-06-30"], env=env, capture_output=True,
            text=True, timeout=1200,
        )
    finally:
        stop.set()
        locker.join(timeout=30)
    log = result.stdout + result.stderr
    assert result.returncode != 0

    states = _last_run_states(env)
    tries = _last_run_states(env, "try_number")
    assert states["gate_raw"] == "success"  # GX does not judge NPS: the dbt test is what catches it
    assert states[PRODUCER] == "failed" and tries[PRODUCER] == 1
    # the model built; its test failed: final (the data would not change on a retry), named
    assert states["dbt.staging"] == "failed" and tries["dbt.staging"] == 1
    assert "data tests failed: stg_nps__responses: accepted_values_stg_nps__responses_score" in log
    assert states["dbt.seeds"] == "success"
    # downstream of the failing test: never run
    for task in ("dbt.int_product__health_signals_run", "dbt.accounts_run", "gate_marts"):
        assert states.get(task) == "upstream_failed", (task, states.get(task))
    assert states.get("publish_marts") in (None, "upstream_failed")
    # independent of it inside dbt (built by the build), downstream of the staging task in Airflow
    assert states["dbt.mrr_movements_run"] == "upstream_failed"
    # the locked model failed in the build; its retry built it (and its tests) alone
    assert states["dbt.segment_definitions_run"] == "success"
    assert tries["dbt.segment_definitions_run"] == 2, tries["dbt.segment_definitions_run"]
    assert "dbt.segment_definitions_run: try 2 after the build; running `dbt build --select`" in log
    with warehouse.connect(fresh_db) as conn:
        assert conn.execute("select to_regclass('marts.mrr_movements')").fetchone()[0] is not None
        assert conn.execute("select to_regclass('marts.accounts')").fetchone()[0] is None
        assert conn.execute("select to_regclass('activation.mart_publications')").fetchone()[0] is None
        assert conn.execute("select count(*) from marts.segment_definitions").fetchone()[0] > 0
        assert conn.execute(
            "select count(*) from information_schema.columns where table_schema = 'marts'"
            " and table_name = 'segment_definitions' and column_name = 'earlier'").fetchone()[0] == 0
