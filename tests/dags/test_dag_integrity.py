"""DAG integrity, one case per DAG file (Astronomer template / telemetry-airflow style).

Each file must import on its own with no database or network work at parse time, hold
exactly one DAG whose dag_id is the file name, and follow the project's defaults.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pytest

from retention.airflow_defaults import ALLOWED_TAGS
from retention.notifications import FailureAlert

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
# DAGs meant to backfill history may set catchup=True; list them here on purpose.
CATCHUP_ALLOWED: set[str] = set()
# Tasks that must not retry, and why.
NO_RETRIES = {
    # Cosmos' watcher producer (the one dbt build) only skips itself on a retry; the tasks
    # that report each model retry instead, by running their own model (retention.dbt).
    "dbt.dbt_producer_watcher",
}


class _NoNetwork(socket.socket):
    def connect(self, *args, **kwargs):  # noqa: D102
        raise AssertionError(f"network access at DAG parse time: {args}")


def _load(path: Path, monkeypatch: pytest.MonkeyPatch):
    import psycopg

    from airflow.sdk import DAG

    def _forbidden(*a, **k):
        raise AssertionError("database connection at DAG parse time")

    monkeypatch.setattr(socket, "socket", _NoNetwork)
    monkeypatch.setattr(psycopg, "connect", _forbidden)
    spec = importlib.util.spec_from_file_location(f"dagfile_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return [v for v in vars(module).values() if isinstance(v, DAG)]


def test_there_are_dag_files():
    assert DAG_FILES, f"no DAG files under {DAGS_DIR}"


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.stem for p in DAG_FILES])
def test_dag_file_integrity(path: Path, monkeypatch: pytest.MonkeyPatch):
    dags = _load(path, monkeypatch)
    assert len(dags) == 1, f"{path.name} must define exactly one DAG, found {len(dags)}"
    dag = dags[0]
    assert dag.dag_id == path.stem, "dag_id must equal the file name"
    assert dag.doc_md and dag.doc_md.strip(), "set doc_md=__doc__"
    assert dag.tags, "DAG needs tags"
    assert set(dag.tags) <= ALLOWED_TAGS, f"tags not in allow-list: {set(dag.tags) - ALLOWED_TAGS}"
    if dag.dag_id not in CATCHUP_ALLOWED:
        assert dag.catchup is False, "catchup must be off unless listed in CATCHUP_ALLOWED"
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow", f"{task.task_id}: set an owner"
        if task.task_id in NO_RETRIES:
            assert task.retries == 0, f"{task.task_id}: must not retry"
        else:
            assert task.retries >= 2, f"{task.task_id}: retries must be >= 2"
        callbacks = task.on_failure_callback if isinstance(task.on_failure_callback, list) else [task.on_failure_callback]
        assert any(isinstance(c, FailureAlert) for c in callbacks), f"{task.task_id}: no failure alert (DEFAULT_ARGS)"
