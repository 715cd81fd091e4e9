"""Views whose SQL and docs did not change, and seeds whose file and config did not, are
kept by dbt runs, not replaced (dbt_project/macros/materialization_view.sql,
materialization_seed.sql); any change, a missing relation or --full-refresh replaces them
as dbt does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from product_raw import DBT_PROJECT, dbt
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


SEED = "finance_exchange_rates"  # read by the view VIEW


def table_oid(url: str, relation: str) -> int | None:
    with warehouse.connect(url) as conn:
        return conn.execute("select to_regclass(%s)::oid", (relation,)).fetchone()[0]


def test_an_unchanged_seed_is_kept_with_the_views_on_it_and_any_change_reloads_it(fresh_db: str, tmp_path: Path):
    # a copy of the project, so the test can change a seed file
    project = tmp_path / "project"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_ls*.json"))
    target = tmp_path / "target"
    build = ("build", "--select", SEED, VIEW)

    def oids() -> tuple[int | None, int | None]:
        return table_oid(fresh_db, f"config.{SEED}"), table_oid(fresh_db, f"staging.{VIEW}")

    dbt(fresh_db, *build, target=target, project=project)
    seeded, view = oids()
    assert None not in (seeded, view)

    out = dbt(fresh_db, *build, target=target, project=project).stdout
    assert oids() == (seeded, view)  # same file, same config: the table and the view on it kept
    assert "KEPT 0" in out

    # the file changes (a release): reloaded, and the view dropped with the old table is created again
    csv = project / "seeds" / f"{SEED}.csv"
    csv.write_text(csv.read_text().rstrip("\n") + "\neur,2024-01-01,1.1\n")
    dbt(fresh_db, *build, target=target, project=project)
    reloaded, recreated = oids()
    assert reloaded not in (None, seeded) and recreated not in (None, view)
    with warehouse.connect(fresh_db) as conn:
        assert conn.execute(f"select rate from staging.{VIEW} where currency = 'eur'").fetchone() is not None

    # dropped by hand: loaded again; --full-refresh: reloaded whatever the record says
    with warehouse.connect(fresh_db) as conn:
        conn.execute(f"drop table config.{SEED} cascade")
    dbt(fresh_db, *build, target=target, project=project)
    again, _ = oids()
    assert again not in (None, reloaded)
    dbt(fresh_db, *build, "--full-refresh", target=target, project=project)
    assert oids()[0] not in (None, again)
