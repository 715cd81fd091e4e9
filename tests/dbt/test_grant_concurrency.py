"""The analysts' grant (`grant_marts_readonly`, the project's on-run-end hook) run by
several dbt processes at once: transform_dbt's one build grants, and so does a model task
rebuilding its node on a retry. Concurrent GRANTs on one table fail each other with
`tuple concurrently updated` unless the macro's advisory lock serialises them."""

from __future__ import annotations

import threading
import pytest

from finance_raw import DBT_PROJECT
from retention import warehouse

pytestmark = pytest.mark.slow

TABLES, SESSIONS, ROUNDS = 30, 6, 4


def grant_sql() -> str:
    """The SQL the hook runs, rendered from the macro file with Jinja (what dbt does with it,
    without a dbt start-up)."""
    import jinja2

    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    macros = env.from_string((DBT_PROJECT / "macros" / "grant_marts_readonly.sql").read_text())
    return str(macros.make_module({"execute": True}).grant_marts_readonly()).strip()


def test_concurrent_grants_all_succeed(fresh_db: str):
    sql = grant_sql()
    assert sql.startswith("do $grant$") and "pg_advisory_xact_lock" in sql, sql[:500]
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        conn.execute("create schema marts")
        for i in range(TABLES):
            conn.execute(f"create table marts.t{i} (x int)")

    errors: list[str] = []
    start = threading.Barrier(SESSIONS)

    def grant() -> None:
        with warehouse.connect(fresh_db, autocommit=True) as conn:
            start.wait()
            for _ in range(ROUNDS):
                try:
                    conn.execute(sql)
                except Exception as exc:  # noqa: BLE001 - every failure is the finding
                    errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=grant) for _ in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with warehouse.connect(fresh_db) as conn:
        conn.execute("set role analyst_readonly")
        assert conn.execute(f"select count(*) from marts.t{TABLES - 1}").fetchone()[0] == 0
