"""A table model is swapped in atomically (dbt_project/macros/materialization_table.sql):
the old relation, whatever its kind, is replaced in one transaction, nothing is left behind,
and a build that fails leaves the old table as it was."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from product_raw import DBT_PROJECT, dbt
from retention import warehouse

SEED, MODEL = "product_segment_rules", "segment_definitions"
SQL = Path("models/marts/product/segment_definitions.sql")


def relations(url: str) -> dict[str, tuple[int, str]]:
    """Every relation of schema marts: name -> (oid, kind: r table, v view)."""
    with warehouse.connect(url) as conn:
        rows = conn.execute(
            "select c.relname, c.oid::bigint, c.relkind::text from pg_class as c"
            " inner join pg_namespace as n on n.oid = c.relnamespace"
            " where n.nspname = 'marts' and c.relkind in ('r', 'v')").fetchall()
    return {name: (oid, kind) for name, oid, kind in rows}


def rows_and_comment(url: str) -> tuple[int, str | None]:
    with warehouse.connect(url) as conn:
        count = conn.execute(f"select count(*) from marts.{MODEL}").fetchone()[0]
        comment = conn.execute("select obj_description(%s::regclass)", (f"marts.{MODEL}",)).fetchone()[0]
    return count, comment


def test_a_table_model_replaces_what_was_there_and_a_failed_build_keeps_it(fresh_db: str, tmp_path: Path):
    project = tmp_path / "project"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_ls*.json"))
    target = tmp_path / "target"
    with (project / "seeds" / f"{SEED}.csv").open(newline="") as f:
        seeded = sum(1 for _ in csv.DictReader(f))

    # a view of that name already there (the model was a view in an older release)
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        conn.execute("create schema marts")
        conn.execute(f"create view marts.{MODEL} as select 1 as segment_key")
    dbt(fresh_db, "seed", "--select", SEED, target=target, project=project)
    dbt(fresh_db, "run", "--select", MODEL, target=target, project=project)
    first = relations(fresh_db)
    assert set(first) == {MODEL} and first[MODEL][1] == "r"  # a table now, no __dbt_tmp or __dbt_backup left
    count, comment = rows_and_comment(fresh_db)
    assert count == seeded > 0
    assert comment.startswith("What each segment means")

    # rebuilt: a new table in its place; a view on the old one goes with it, as with dbt's
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        conn.execute(f"create view marts.on_top as select * from marts.{MODEL}")
    dbt(fresh_db, "run", "--select", MODEL, target=target, project=project)
    second = relations(fresh_db)
    assert set(second) == {MODEL} and second[MODEL][1] == "r"
    assert second[MODEL][0] != first[MODEL][0]
    assert rows_and_comment(fresh_db) == (count, comment)

    # a build that fails halfway (the query errors) changes nothing
    sql = project / SQL
    sql.write_text(sql.read_text().replace("days::integer as days", "(1 / 0)::integer as days"))
    failed = dbt(fresh_db, "run", "--select", MODEL, target=target, project=project, check=False)
    assert failed.returncode != 0 and "division by zero" in failed.stdout
    assert relations(fresh_db) == second
    assert rows_and_comment(fresh_db) == (count, comment)
