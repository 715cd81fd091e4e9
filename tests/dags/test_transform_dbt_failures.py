"""transform_dbt when a dbt data test fails (Cosmos' watcher mode, `airflow dags test`):
the one `dbt build` fails, the failing model's test task says so, retries by running the
model's tests again on its own (Cosmos' fallback) and then fails for good, and nothing
downstream of it runs, while models that do not depend on it are built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dbt"))  # raw-data builders

import product_raw  # noqa: E402
from test_transform_dbt import _last_run_states  # noqa: E402

from retention import runtime, warehouse  # noqa: E402

pytestmark = pytest.mark.slow


def test_a_failing_dbt_test_stops_what_is_downstream(fresh_db: str, airflow_env):
    product, stripe = product_raw.build_world()
    product.nps_response("acc_000004", "u_bad", 11, "2024-06-25")  # NPS is 0-10: accepted_values fails
    stripe.load(fresh_db)
    product.load(fresh_db)
    env = airflow_env(fresh_db)

    result = subprocess.run(
        [runtime.airflow_bin(), "dags", "test", "transform_dbt", "2024-06-30"], env=env, capture_output=True,
        text=True, timeout=1200,
    )
    log = result.stdout + result.stderr
    assert result.returncode != 0

    states = _last_run_states(env)
    tries = _last_run_states(env, "try_number")
    assert states["gate_raw"] == "success"  # GX does not judge NPS: the dbt test is what catches it
    assert states["dbt.dbt_producer_watcher"] == "failed" and tries["dbt.dbt_producer_watcher"] == 1
    assert states["dbt.stg_nps__responses.run"] == "success"  # the model built; its test failed
    assert states["dbt.stg_nps__responses.test"] == "failed"
    assert tries["dbt.stg_nps__responses.test"] == 3  # retried twice, each retry running the model's tests
    assert log.count("dbt test completed successfully for model") == 0
    # downstream of the failing test: never run
    for task in ("dbt.int_product__health_signals_run", "dbt.accounts_run", "grant_marts", "gate_marts"):
        assert states.get(task) == "upstream_failed", (task, states.get(task))
    assert states.get("publish_marts") in (None, "upstream_failed")
    # independent of it: built and tested from the same dbt build
    for model in ("mrr_monthly", "mrr_movements"):
        assert states[f"dbt.{model}.run"] == "success" and states[f"dbt.{model}.test"] == "success"
    with warehouse.connect(fresh_db) as conn:
        assert conn.execute("select to_regclass('marts.mrr_movements')").fetchone()[0] is not None
        assert conn.execute("select to_regclass('marts.accounts')").fetchone()[0] is None
        assert conn.execute("select to_regclass('activation.mart_publications')").fetchone()[0] is None
