"""Which Airflow metadata database `retention status` reads: Airflow's own order."""

from __future__ import annotations

import sqlalchemy

from retention.airflow_runs import last_dag_runs, metadata_url


def _metadata_db(path) -> str:
    url = f"sqlite:///{path}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(
            "create table dag_run (id integer primary key, dag_id text, run_id text, run_type text,"
            " state text, start_date text, end_date text)"))
        conn.execute(sqlalchemy.text(
            "insert into dag_run (dag_id, run_id, run_type, state) values"
            " ('transform_dbt', 'old', 'manual', 'failed'), ('transform_dbt', 'new', 'scheduled', 'success')"))
    engine.dispose()
    return url


def test_the_metadata_database_set_in_airflow_cfg_is_the_one_read(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    url = _metadata_db(tmp_path / "elsewhere.db")
    (home / "airflow.cfg").write_text(f"[core]\nload_examples = False\n\n[database]\nsql_alchemy_conn = {url}\n")
    env = {"AIRFLOW_HOME": str(home)}
    assert metadata_url(env) == url
    runs = last_dag_runs(env)
    assert runs["transform_dbt"]["run_id"] == "new" and runs["transform_dbt"]["state"] == "success"


def test_the_environment_wins_and_the_default_is_the_homes_sqlite_file(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "airflow.cfg").write_text("[database]\nsql_alchemy_conn = sqlite:////nowhere/airflow.db\n")
    assert metadata_url({"AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://m/db"}) == (
        "postgresql://m/db")
    bare = tmp_path / "bare"
    bare.mkdir()
    assert metadata_url({"AIRFLOW_HOME": str(bare)}) == f"sqlite:///{bare / 'airflow.db'}"
    assert last_dag_runs({"AIRFLOW_HOME": str(bare)}) == {}  # no database yet: nothing, not an error


def test_a_runs_duration_spans_its_tasks_not_the_logical_date(tmp_path):
    """`airflow dags test` sets dag_run.start_date to the logical date: a run's duration is
    its first task's start to its last task's end (the benchmarks' "DAG run" time)."""
    from retention.airflow_runs import run_seconds

    url = _metadata_db(tmp_path / "airflow.db")
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(
            "create table task_instance (dag_id text, run_id text, task_id text, start_date text, end_date text)"))
        conn.execute(sqlalchemy.text(
            "insert into task_instance values"
            " ('transform_dbt', 'new', 'a', '2026-12-07 00:43:48.5', '2026-12-07 00:44:00.0'),"
            " ('transform_dbt', 'new', 'b', '2026-12-07 00:44:00.0', '2026-12-07 00:45:50.5'),"
            " ('transform_dbt', 'old', 'a', '2024-06-30 00:00:00.0', '2026-12-07 00:00:00.0')"))
        conn.execute(sqlalchemy.text("update dag_run set start_date = '2024-06-30 00:00:00'"))
    engine.dispose()
    assert run_seconds({"AIRFLOW_HOME": str(tmp_path)}, "transform_dbt") == 122.0
    assert run_seconds({"AIRFLOW_HOME": str(tmp_path)}, "sync_segments") is None
