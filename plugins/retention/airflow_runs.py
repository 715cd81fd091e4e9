"""What Airflow's metadata database says about the runs, and task logs of ``dags test`` runs.

``airflow dags test`` (what ``retention demo`` and ``retention run`` use) runs the tasks
one after another inside its own process, so Airflow writes no task log files: the UI
would show a finished run whose tasks have no logs. :func:`write_task_logs` fills that
gap from the command's output: each task's part starts at Airflow's ``[DAG TEST]
starting task_id=... map_index=...`` line, and is written, as plain lines (the log
reader shows them as they are), to the file the UI reads for that task's last attempt
under ``$AIRFLOW_HOME/logs`` (Airflow's default ``log_filename_template``).

(``airflow dags test --use-executor`` writes real log files, but needs a running API
server and, for deferrable tasks, a triggerer; each task is then a process of its own.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

STARTING = re.compile(r"\[DAG TEST\] starting task_id=(\S+) map_index=(-?\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def metadata_url(env: Mapping[str, str]) -> str:
    """Where the Airflow of ``env`` keeps its metadata, in Airflow's own order: the
    environment variable, then ``[database] sql_alchemy_conn`` in ``$AIRFLOW_HOME/airflow.cfg``,
    then Airflow's default SQLite file in that home."""
    import configparser

    home = Path(env["AIRFLOW_HOME"])
    if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        return env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(home / "airflow.cfg")
    return cfg.get("database", "sql_alchemy_conn", fallback="").strip() or f"sqlite:///{home / 'airflow.db'}"


def _engine(env: Mapping[str, str]):
    import sqlalchemy

    url = metadata_url(env)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    return sqlalchemy.create_engine(url)


def _query(env: Mapping[str, str], sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of ``sql`` on the metadata database of ``env`` (none before Airflow's first start)."""
    import sqlalchemy

    engine = _engine(env)
    if engine is None:
        return []
    try:
        with engine.connect() as conn:
            if not sqlalchemy.inspect(conn).has_table("dag_run"):
                return []
            return [dict(row) for row in conn.execute(sqlalchemy.text(sql), params).mappings()]
    finally:
        engine.dispose()


def last_dag_runs(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The newest run of each DAG."""
    rows = _query(env, "select dag_id, run_id, run_type, state, start_date, end_date from dag_run d"
                       " where id = (select max(id) from dag_run where dag_id = d.dag_id)")
    return {row["dag_id"]: row for row in rows}


def run_seconds(env: Mapping[str, str], dag_id: str) -> float | None:
    """How long the newest run of ``dag_id`` took, from its first task's start to its last
    task's end, as the metadata database (and the Airflow UI) records it: without the
    ``airflow dags test`` process's own start-up and DAG parsing. (Not the run's
    ``start_date``: ``airflow dags test`` sets it to the logical date.)"""
    from datetime import datetime

    rows = _query(env, "select min(start_date) as started, max(end_date) as ended from task_instance"
                       " where dag_id = :dag_id and run_id = (select run_id from dag_run where dag_id = :dag_id"
                       " order by id desc limit 1)", dag_id=dag_id)
    if not rows or not rows[0]["started"] or not rows[0]["ended"]:
        return None
    started, ended = (datetime.fromisoformat(v) if isinstance(v, str) else v
                      for v in (rows[0]["started"], rows[0]["ended"]))
    return (ended - started).total_seconds()


def task_seconds(env: Mapping[str, str], dag_id: str) -> dict[str, float]:
    """How long each task of the newest run of ``dag_id`` took (its last try), by task id."""
    from datetime import datetime

    rows = _query(env, "select task_id, start_date, end_date from task_instance where dag_id = :dag_id"
                       " and run_id = (select run_id from dag_run where dag_id = :dag_id order by id desc limit 1)"
                       " and start_date is not null and end_date is not null", dag_id=dag_id)
    parse = lambda v: datetime.fromisoformat(v) if isinstance(v, str) else v  # noqa: E731 (SQLite gives text)
    return {row["task_id"]: (parse(row["end_date"]) - parse(row["start_date"])).total_seconds() for row in rows}


def split_by_task(lines: Iterable[str]) -> dict[tuple[str, int], list[str]]:
    """The output of ``airflow dags test`` cut into each task's part, by (task id, map index)."""
    parts: dict[tuple[str, int], list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        started = STARTING.search(line)
        if started:
            current = parts.setdefault((started.group(1), int(started.group(2))), [])
        if current is not None:
            current.append(_ANSI.sub("", line))
    return parts


def write_task_logs(env: Mapping[str, str], dag_id: str, lines: Iterable[str]) -> list[Path]:
    """Write each task's part of a ``dags test`` output to its log file; the files written."""
    parts = split_by_task(lines)
    runs = _query(env, "select run_id from dag_run where dag_id = :dag_id order by id desc limit 1", dag_id=dag_id)
    if not parts or not runs:
        return []
    run_id = runs[0]["run_id"]
    tries = {(r["task_id"], r["map_index"]): r["try_number"] for r in _query(
        env, "select task_id, map_index, try_number from task_instance where dag_id = :dag_id and run_id = :run_id",
        dag_id=dag_id, run_id=run_id)}
    written = []
    for (task_id, map_index), part in parts.items():
        folder = Path(env["AIRFLOW_HOME"]) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder /= f"map_index={map_index}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"attempt={max(tries.get((task_id, map_index), 1), 1)}.log"
        path.write_text("".join(part))
        written.append(path)
    return written
