"""Airflow sized for the machine (runtime.airflow_sizing), unless the environment says otherwise."""

from __future__ import annotations

from retention import runtime
from retention.config import settings


def test_two_task_slots_per_core_one_parser_one_api_worker():
    sizing = runtime.airflow_sizing(cpus=2)
    assert sizing["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert sizing["AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG"] == "4"
    assert sizing["AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT"] == "4"
    assert sizing["AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES"] == "1"
    assert sizing["AIRFLOW__API__WORKERS"] == "1"
    assert sizing["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert runtime.airflow_sizing(cpus=8)["AIRFLOW__CORE__PARALLELISM"] == "16"


def test_the_environment_overrides_the_sizing_and_cosmos_caches_per_airflow_home(tmp_path, monkeypatch):
    cfg = settings({"RETENTION_HOME": str(tmp_path)})
    url = "postgresql://etl:pw@db.internal:5433/analytics"
    monkeypatch.delenv("AIRFLOW__CORE__PARALLELISM", raising=False)
    monkeypatch.delenv("AIRFLOW__COSMOS__CACHE_DIR", raising=False)
    env = runtime.pipeline_env(url, cfg)
    assert env["AIRFLOW__CORE__PARALLELISM"] == runtime.airflow_sizing()["AIRFLOW__CORE__PARALLELISM"]
    assert env["AIRFLOW__COSMOS__CACHE_DIR"] == str(cfg.airflow_home / "cosmos")
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "12")
    assert "AIRFLOW__CORE__PARALLELISM" not in runtime.pipeline_env(url, cfg)  # the caller's value stays
