"""The product as-of date: the last day with events, never past the last day the events
landed completely (raw.landed_intervals, retention.load.landed)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from product_raw import ProductData, at, dbt

from retention import warehouse
from retention.load import landed

pytestmark = pytest.mark.slow


def _as_of(url: str, target: Path) -> date:
    dbt(url, "build", "--select", "+int_product__as_of", "--exclude-resource-type", "test", "unit_test",
        target=target)
    with warehouse.connect(url) as conn:
        return conn.execute("select as_of_date from intermediate.int_product__as_of").fetchone()[0]


def test_events_past_the_landed_interval_are_not_scored(fresh_db: str, tmp_path: Path):
    product = ProductData()
    users = product.account("acc_000001", "2024-02-20", "Acme", "starter", 2)
    for day in ("2024-03-01", "2024-03-02", "2024-03-03"):
        product.track("acc_000001", users[0], "Project Created", at(day))
    product.track("acc_000001", users[1], "Signed In", at("2024-03-04", 1))  # today's first files: a partial day
    product.load(fresh_db)

    assert _as_of(fresh_db, tmp_path / "t1") == date(2024, 3, 4)  # nothing recorded: the last day with events
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        landed.record(conn, "events", date(2024, 3, 4))  # ingest_events' run for 03-03
        landed.record(conn, "nps", date(2024, 3, 9))  # other sources do not bound it
    assert _as_of(fresh_db, tmp_path / "t2") == date(2024, 3, 3)
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        landed.record(conn, "events", date(2024, 3, 1))  # a backfill of an earlier day
        assert landed.landed_end(conn, "events").date() == date(2024, 3, 4)  # never moves back
