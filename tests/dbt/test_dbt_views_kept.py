"""Views whose SQL and docs did not change are kept by dbt runs, not replaced
(dbt_project/macros/materialization_view.sql); any change, a missing view or
--full-refresh replaces them as dbt does."""

from __future__ import annotations

import json
from pathlib import Path

from product_raw import dbt
from retention import warehouse

VIEW = "stg_finance__exchange_rates"


def view_oid(url: str) -> int | None:
    with warehouse.connect(url) as conn:
        row = conn.execute("select to_regclass(%s)::oid", (f"staging.{VIEW}",)).fetchone()
    return row[0]


def test_an_unchanged_view_is_kept_and_any_change_replaces_it(fresh_db: str, tmp_path: Path):
    dbt(fresh_db, "seed", "--select", "finance_exchange_rates", target=tmp_path)
    run = ("run", "--select", VIEW)
    dbt(fresh_db, *run, target=tmp_path)
    created = view_oid(fresh_db)
    assert created is not None

    dbt(fresh_db, *run, target=tmp_path)
    assert view_oid(fresh_db) == created  # same SQL, same docs: kept

    # other compiled SQL (the rates read through var finance_exchange_rates_relation): replaced
    other_sql = ("--vars", json.dumps({"finance_exchange_rates_relation": "config.finance_exchange_rates"}))
    dbt(fresh_db, *run, *other_sql, target=tmp_path)
    replaced = view_oid(fresh_db)
    assert replaced not in (None, created)
    dbt(fresh_db, *run, *other_sql, target=tmp_path)
    assert view_oid(fresh_db) == replaced

    # dropped since (by hand, or by a cascading drop of what it reads): created again
    with warehouse.connect(fresh_db) as conn:
        conn.execute(f"drop view staging.{VIEW}")
    dbt(fresh_db, *run, *other_sql, target=tmp_path)
    recreated = view_oid(fresh_db)
    assert recreated not in (None, replaced)
    with warehouse.connect(fresh_db) as conn:  # and readable
        assert conn.execute(f"select count(*) from staging.{VIEW}").fetchone() is not None

    dbt(fresh_db, *run, *other_sql, "--full-refresh", target=tmp_path)
    assert view_oid(fresh_db) not in (None, recreated)
