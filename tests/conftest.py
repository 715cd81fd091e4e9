"""Shared fixtures: a real Postgres (embedded, or WAREHOUSE_URL) and an Airflow home.

* ``warehouse_server_url``: one server for the whole session. With ``WAREHOUSE_URL`` set
  the tests use that server; otherwise an embedded pgserver starts in a temp directory
  and is stopped at the end.
* ``fresh_db``: a new, empty database on that server per test (isolation without a
  server per test).
* ``airflow_env``: environment for ``airflow dags test`` subprocesses, with a migrated
  SQLite metadata DB in a session temp dir and the warehouse connection pointing at
  the database given.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from retention import runtime, warehouse
from retention.config import settings
from support.databases import create_database

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def warehouse_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("WAREHOUSE_URL")
    if external:
        yield external
        return
    # Short path: Unix socket paths are limited to ~107 bytes.
    pgdata = Path(tmp_path_factory.mktemp("pg", numbered=True)) / "d"
    url = warehouse.start_embedded(pgdata)
    yield url
    warehouse.stop_embedded(pgdata)


@pytest.fixture
def fresh_db(warehouse_server_url: str, request: pytest.FixtureRequest) -> str:
    """URL of a new empty database, named after the test."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    return create_database(warehouse_server_url, f"t_{slug}_{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory, warehouse_server_url: str) -> Path:
    home = tmp_path_factory.mktemp("airflow")
    env = _airflow_env(home, warehouse_server_url, tmp_path_factory.mktemp("data"))
    runtime.ensure_airflow_db(env)
    return home


def _airflow_env(home: Path, url: str, data_dir: Path) -> dict[str, str]:
    cfg = settings({"RETENTION_HOME": str(REPO), "AIRFLOW_HOME": str(home), "RETENTION_DATA_DIR": str(data_dir),
                    "RETENTION_REPORTS_DIR": str(data_dir / "reports")})
    env = runtime.child_env(url, cfg)
    env.pop("WAREHOUSE_URL", None)  # tasks must use the Airflow connection, not the env
    env["RETENTION_RETRY_DELAY_S"] = "1"  # retries still happen; `dags test` need not idle 30 s for each
    return env


@pytest.fixture
def airflow_env(airflow_home: Path, tmp_path: Path) -> Callable[[str], dict[str, str]]:
    """``airflow_env(url)`` -> env for ``airflow dags test`` against database ``url``."""

    def make(url: str) -> dict[str, str]:
        return _airflow_env(airflow_home, url, tmp_path / "data")

    return make


# `make test` runs the files on two workers, each file whole on one (`--dist loadfile`),
# handed out in collection order (`--no-loadscope-reorder`): these, the longest measured
# (`--durations` on a clean clone), are collected first, so that no long file starts
# last and runs on alone while the other worker idles. The rest keep pytest's order.
LONGEST_FIRST = (
    "tests/integration/test_scheduler.py",
    "tests/dags/test_ingest_events.py",
    "tests/dbt/test_product_incremental.py",
    "tests/dags/test_transform_dbt.py",
    "tests/dags/test_ingest_stripe.py",
    "tests/dags/test_transform_dbt_failures.py",
    "tests/integration/test_second_postgres.py",
    "tests/dbt/test_finance_incremental.py",
    "tests/plugins/report/test_report.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: files stay whole
