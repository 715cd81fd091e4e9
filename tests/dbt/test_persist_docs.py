"""Descriptions become Postgres comments in one statement per relation
(dbt_project/macros/persist_docs.sql), and a documented column the relation lacks fails
the node, naming the column, where dbt only warned."""

from __future__ import annotations

import shutil
from pathlib import Path

from product_raw import DBT_PROJECT, dbt
from retention import warehouse

SEED, VIEW = "finance_exchange_rates", "stg_finance__exchange_rates"
DOCS = Path("models/staging/finance/_finance_config__models.yml")


def comments(url: str) -> dict[str, str | None]:
    """The view's comment ("") and each column's, by name."""
    with warehouse.connect(url) as conn:
        rows = conn.execute(
            "select a.attname, col_description(a.attrelid, a.attnum) from pg_attribute as a"
            " where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped",
            (f"staging.{VIEW}",)).fetchall()
        view = conn.execute("select obj_description(%s::regclass)", (f"staging.{VIEW}",)).fetchone()[0]
    return {"": view, **dict(rows)}


def test_descriptions_are_comments_and_a_documented_column_that_is_missing_fails(fresh_db: str, tmp_path: Path):
    project = tmp_path / "project"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_ls*.json"))
    target = tmp_path / "target"
    build = ("build", "--select", SEED, VIEW)

    dbt(fresh_db, *build, target=target, project=project)
    got = comments(fresh_db)
    assert got[""].startswith("Exchange rates into the reporting currency")
    assert got["currency"] == "Lower-case ISO 4217 code."
    assert got["next_rate_date"].startswith("The currency's next rate_date")

    # a column documented that the view does not have (a rename the docs missed)
    docs = project / DOCS
    docs.write_text(docs.read_text().replace(
        "      - name: currency\n",
        "      - name: currency_code\n        description: Renamed since.\n      - name: currency\n", 1))
    failed = dbt(fresh_db, *build, target=target, project=project, check=False)
    assert failed.returncode != 0
    assert 'column "currency_code"' in failed.stdout and "does not exist" in failed.stdout
    assert "documented in the model's YAML" in failed.stdout  # says where to look
    assert comments(fresh_db)["currency"] == "Lower-case ISO 4217 code."  # the failed node changed nothing
