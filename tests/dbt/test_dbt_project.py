"""Project-level behaviour of the dbt project: the analysts' read-only role, docs
generation, and one clear failure on bad raw input. Real dbt against real Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import finance_scenarios
from finance_raw import StripeData, build_finance, line, run_dbt
from retention import warehouse
from support.databases import create_database

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built_db(warehouse_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = create_database(warehouse_server_url, "t_dbt_project")
    finance_scenarios.build().load(url)
    result = build_finance(url, tmp_path_factory.mktemp("dbt_target"))
    assert result.returncode == 0, result.stdout[-4000:]
    yield url


def _as_analyst(url: str, sql: str):
    with warehouse.connect(url) as conn:
        conn.execute("set role analyst_readonly")
        return conn.execute(sql).fetchall()


def test_analyst_role_reads_marts_and_nothing_else(built_db: str, tmp_path: Path):
    # the hook is idempotent: running it again changes nothing and does not fail
    again = run_dbt(built_db, tmp_path, "run-operation", "grant_marts_readonly")
    assert again.returncode == 0, again.stdout[-2000:]

    assert _as_analyst(built_db, "select count(*) from marts.mrr_monthly")[0][0] > 0
    assert _as_analyst(built_db, "select count(*) from marts.mrr_movements")[0][0] > 0
    for relation in ("raw.stripe_invoices", "staging.stg_stripe__invoices", "intermediate.int_invoice_lines_normalized"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _as_analyst(built_db, f"select 1 from {relation} limit 1")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _as_analyst(built_db, "create table marts.scratch (x int)")
    with warehouse.connect(built_db) as conn:
        can_login, = conn.execute("select rolcanlogin from pg_roles where rolname = 'analyst_readonly'").fetchone()
    assert can_login is False


def test_docs_generate(built_db: str, tmp_path: Path):
    result = run_dbt(built_db, tmp_path, "docs", "generate", "--select", "models/marts/finance")
    assert result.returncode == 0, result.stdout[-2000:]
    catalog = (tmp_path / "catalog.json").read_text()
    assert '"model.retention.mrr_movements"' in catalog


def test_line_with_unknown_price_fails_the_build_by_name(fresh_db: str, tmp_path: Path):
    data = StripeData()
    customer = data.customer("acc_bad")
    data.invoice(customer, "2024-01-01", [line("sub_bad", "price_missing", "2024-01-01", "2024-02-01", amount=1000)])
    data.load(fresh_db)
    result = build_finance(fresh_db, tmp_path)
    assert result.returncode != 0
    assert "relationships_stg_stripe__invoice_line_items_price_id" in result.stdout
    with warehouse.connect(fresh_db) as conn:
        marts = conn.execute("select count(*) from pg_tables where schemaname = 'marts'").fetchone()[0]
    assert marts == 0, "no mart may be built from data that failed its tests"
