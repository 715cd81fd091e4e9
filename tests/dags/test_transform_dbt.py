"""transform_dbt end to end: `airflow dags test` (real Airflow, Cosmos, dbt, Postgres) on a
fresh database holding raw Stripe and product data. One `dbt build` (Cosmos' watcher
producer) and one task per model (one for the seeds, one for the staging models)
reporting its result and its tests'."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dbt"))  # raw-data builders

import product_raw  # noqa: E402

from retention import runtime, warehouse  # noqa: E402

pytestmark = pytest.mark.slow


def _last_run_states(env: dict[str, str], column: str = "state") -> dict[str, str]:
    """task_id -> ``column`` (state, try_number) of the newest transform_dbt run in the
    test's Airflow metadata DB."""
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as meta:
        run_id, = meta.execute(
            "select run_id from dag_run where dag_id = 'transform_dbt' order by id desc limit 1"
        ).fetchone()
        return dict(meta.execute(
            f"select task_id, {column} from task_instance where dag_id = 'transform_dbt' and run_id = ?", (run_id,)
        ).fetchall())


def _xcom(env: dict[str, str], task_id: str, key: str = "return_value"):
    """A task's XCom in the newest transform_dbt run."""
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as meta:
        value, = meta.execute(
            "select x.value from xcom x join dag_run r on r.id = x.dag_run_id where x.dag_id = 'transform_dbt'"
            " and x.task_id = ? and x.key = ? order by r.id desc limit 1", (task_id, key),
        ).fetchone()
    return json.loads(value)


def test_transform_dbt_builds_every_model_with_its_tests(fresh_db: str, airflow_env):
    product, stripe = product_raw.build_world()
    stripe.load(fresh_db)
    product.load(fresh_db)
    env = airflow_env(fresh_db)
    for key in ("WAREHOUSE_HOST", "WAREHOUSE_PORT", "WAREHOUSE_USER", "WAREHOUSE_PASSWORD", "WAREHOUSE_DBNAME"):
        env.pop(key)  # dbt must get the warehouse from the Airflow connection only

    # The world ends on 2024-06-30: the gates judge freshness as of the run's date.
    result = subprocess.run(
        [runtime.airflow_bin(), "dags", "test", "transform_dbt", "2024-06-30"], env=env, capture_output=True,
        text=True, timeout=900,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert "START unit_test" not in result.stdout + result.stderr  # CI runs them; production skips them

    states = _last_run_states(env)
    assert states["dbt.dbt_producer_watcher"] == "success"  # the one dbt build
    for model in ("mrr_monthly", "mrr_movements", "cohort_retention"):
        assert states.get(f"dbt.{model}_run") == "success", states
    assert states["dbt.seeds"] == states["dbt.staging"] == "success"  # one task for each of these groups
    assert not any(t.endswith(".test") for t in states), states  # tests: reported by their nodes' task
    assert "dbt.staging built (stg_finance__exchange_rates, " in result.stdout + result.stderr
    assert states.get("publish_marts") == "success"
    assert set(states.values()) == {"success"}
    # One task per stage; each suite's result in its XCom. The first build reads every row
    # (a daily run the newly landed events: tests/plugins/quality/test_gates.py).
    for stage, gates in (("raw", ["raw_events", "raw_quarantine", "raw_stripe_invoices"]),
                         ("marts", ["marts_account_health_daily", "marts_segment_members"])):
        results = _xcom(env, f"gate_{stage}")
        assert [r["gate"] for r in results] == gates
        assert all(r["success"] and r["evaluated"] > 0 for r in results), results
    assert "raw.events read whole (first build or full refresh)" in result.stdout + result.stderr

    with warehouse.connect(fresh_db) as conn:
        paying = conn.execute("select count(distinct account_id) from marts.mrr_monthly where is_paying").fetchone()[0]
        bridge_ok = conn.execute(
            "select bool_and(start_mrr + new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr"
            " - churned_mrr = end_mrr) from marts.mrr_movements"
        ).fetchone()[0]
        published = conn.execute("select as_of, relations ? 'marts.segment_members' from activation.mart_publications").fetchall()
        conn.execute("set role analyst_readonly")
        readable = conn.execute("select count(*) from marts.cohort_retention").fetchone()[0]
    assert paying == 12  # the twelve seat-priced accounts of product_raw.build_world
    assert bridge_ok is True
    assert readable > 0
    assert published == [(date(2024, 6, 30), True)]  # the sync may read what the gates passed


def test_a_failing_raw_gate_stops_the_build_before_any_model(fresh_db: str, airflow_env):
    product, stripe = product_raw.build_world()
    stripe.load(fresh_db)
    product.load(fresh_db)
    env = airflow_env(fresh_db)
    # The newest event is 2024-06-30: three months later the raw events are stale.
    result = subprocess.run(
        [runtime.airflow_bin(), "dags", "test", "transform_dbt", "2024-09-30"], env=env, capture_output=True,
        text=True, timeout=600,
    )
    assert result.returncode != 0
    assert "expect_column_max_to_be_between" in result.stdout + result.stderr

    states = _last_run_states(env)
    assert states["gate_raw"] == "failed"
    assert _last_run_states(env, "try_number")["gate_raw"] == 1  # a data failure is final
    # every suite ran: the others' results are in the XCom
    results = {r["gate"]: r for r in _xcom(env, "gate_raw")}
    assert not results["raw_events"]["success"] and results["raw_stripe_invoices"]["success"]
    assert any("expect_column_max_to_be_between" in f for f in results["raw_events"]["failed"])
    assert states["dbt.dbt_producer_watcher"] == "upstream_failed"
    assert not any(s == "success" for t, s in states.items()  # (Cosmos' marker after the build aside)
                   if t.startswith("dbt.") and t != "dbt.dbt_producer_watcher_done"), states
    assert states.get("publish_marts") in (None, "upstream_failed")
    with warehouse.connect(fresh_db) as conn:
        assert conn.execute("select to_regclass('marts.mrr_monthly')").fetchone()[0] is None
        assert conn.execute("select to_regclass('activation.mart_publications')").fetchone()[0] is None  # no sync
