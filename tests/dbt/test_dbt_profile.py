"""The profile Cosmos writes for Airflow's builds carries the project's dbt settings."""

from __future__ import annotations

import json

import yaml

from retention import dbt


def test_airflow_builds_use_the_projects_threads(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps(
        {"conn_type": "postgres", "host": "/tmp/socket-dir", "login": "retention", "schema": "warehouse"}))
    written = yaml.safe_load(dbt.warehouse_profile_mapping("warehouse").get_profile_file_contents(
        profile_name="retention", target_name="warehouse"))
    output = written["retention"]["outputs"]["warehouse"]

    project = yaml.safe_load((dbt.project_dir() / "profiles.yml").read_text())["retention"]["outputs"]["warehouse"]
    assert project["threads"] > 1
    # Without them dbt builds one node at a time in Airflow (Cosmos' mapping sets no threads).
    assert output["threads"] == project["threads"]
    assert output["connect_timeout"] == project["connect_timeout"]
    assert (output["host"], output["user"], output["dbname"]) == ("/tmp/socket-dir", "retention", "warehouse")
