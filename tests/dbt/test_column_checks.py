"""The generic test column_checks (dbt_project/tests/generic/column_checks.sql): one node
holding a table's not_null / unique / accepted_values / expression checks fails with one
row per failing check, counting the rows the one-check tests would have returned."""

from __future__ import annotations

from pathlib import Path

from product_raw import dbt
from retention import warehouse


def test_column_checks_names_each_failing_check(fresh_db: str, tmp_path: Path):
    dbt(fresh_db, "seed", "--select", "product_health_weights", target=tmp_path)
    with warehouse.connect(fresh_db) as conn:
        conn.execute("insert into config.product_health_weights (component, weight, description) values "
                     "('speed', 0.2, 'not a component'), (null, 0.3, 'no component'), (null, 0.1, 'none either'), ('nps', -1, 'twice, negative')")
    proc = dbt(fresh_db, "test", "--select", "product_health_weights_column_checks", "--store-failures",
               target=tmp_path, check=False)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "product_health_weights_column_checks" in proc.stdout and "Got 5 results" in proc.stdout  # failing rows, not checks
    with warehouse.connect(fresh_db) as conn:
        schema = conn.execute("select table_schema from information_schema.tables "
                              "where table_name = 'product_health_weights_column_checks'").fetchone()[0]
        failed = dict(conn.execute(
            f'select failed_check, failing_rows from "{schema}".product_health_weights_column_checks').fetchall())
    # the null components fail not_null only (unique and accepted_values let nulls pass, as dbt's do);
    # 'nps' twice is one surplus row; -1 fails the expression
    assert failed == {"not_null: component": 2, "unique: component": 1,
                      "accepted_values: component": 1, "expression: weight >= 0": 1}
