"""Warehouse-events mode end to end (RETENTION_EVENTS_SOURCE=warehouse, retention.sources):
the events sit in a Segment warehouse destination's tables, nothing is loaded into
raw.events, and `airflow dags test transform_dbt` builds every mart from them, gating the
destination's `tracks` table instead of raw.events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dbt"))  # raw-data builders

from finance_raw import ingest_simulated_stripe  # noqa: E402
from test_source_modes import _states, _xcom  # noqa: E402

from retention import runtime, warehouse  # noqa: E402
from retention.config import EVENTS_SOURCE_VAR  # noqa: E402
from retention.load.schema import ensure_schema  # noqa: E402


def _segment_destination(url: str, company: Path, schema: str) -> int:
    """Write the simulated company's Segment messages into ``schema`` the way Segment's
    warehouse destination lays them out: ``tracks`` / ``identifies`` / ``groups``, traits
    as columns, one table per event with its properties as columns. Returns the tracks."""
    import gzip
    import re

    from psycopg import sql

    def column_type(value) -> str:
        return {bool: "boolean", int: "bigint", float: "double precision"}.get(type(value), "text")

    tables: dict[str, dict[str, str]] = {}
    rows: dict[str, list[dict]] = {}

    def add(table: str, row: dict) -> None:
        # the message's own columns always exist, even when every value is null
        columns = tables.setdefault(table, {"id": "text", "user_id": "text", "anonymous_id": "text",
                                            "timestamp": "timestamptz", "received_at": "timestamptz"})
        for key, value in row.items():
            if value is not None:
                columns.setdefault(key, "timestamptz" if key in ("timestamp", "received_at") else column_type(value))
        rows.setdefault(table, []).append(row)

    for path in sorted(company.glob("events/**/*.gz")):
        for line in gzip.open(path, "rt"):
            m = json.loads(line)
            base = {"id": m["messageId"], "user_id": m.get("userId"), "anonymous_id": m.get("anonymousId"),
                    "timestamp": m["timestamp"], "received_at": m["receivedAt"]}
            if m["type"] == "track":
                add("tracks", {**base, "event": m["event"], "event_text": m["event"],
                               "context_group_id": (m.get("context") or {}).get("groupId")})
                name = re.sub(r"[^a-z0-9]+", "_", m["event"].lower()).strip("_")
                add(name, {**base, "event": m["event"], "context_group_id": (m.get("context") or {}).get("groupId"),
                           **(m.get("properties") or {})})
            elif m["type"] == "identify":
                add("identifies", {**base, **(m.get("traits") or {})})
            elif m["type"] == "group":
                add("groups", {**base, "group_id": m["groupId"], **(m.get("traits") or {})})
    with warehouse.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        for table, columns in tables.items():
            names = list(columns)
            conn.execute(sql.SQL("create table {} ({})").format(
                sql.Identifier(schema, table),
                sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns.items())))
            with conn.cursor().copy(sql.SQL("copy {} ({}) from stdin").format(
                    sql.Identifier(schema, table), sql.SQL(", ").join(map(sql.Identifier, names)))) as copy:
                for row in rows[table]:
                    copy.write_row([row.get(c) if not isinstance(row.get(c), (dict, list)) else json.dumps(row[c])
                                    for c in names])
    return len(rows.get("tracks", []))


@pytest.mark.slow
def test_warehouse_mode_builds_every_mart_from_the_destination_tables(fresh_db: str, airflow_env, tmp_path):
    company = tmp_path / "company"
    subprocess.run([str(Path(sys.executable).parent / "retention"), "simulate", "--preset", "tiny", "--seed", "3",
                    "--out", str(company)], check=True, capture_output=True)
    end_date = json.loads((company / "simulation.json").read_text())["parameters"]["end_date"]
    tracks = _segment_destination(fresh_db, company, "segment_prod")
    env = airflow_env(fresh_db)
    env.update({EVENTS_SOURCE_VAR: "warehouse", "RETENTION_EVENTS_WAREHOUSE_SCHEMA": "segment_prod"})
    day = json.dumps({"day": end_date})
    # Stripe through the same extraction ingest_stripe runs (its DAG is tested billing-only in
    # test_source_modes.py), and the raw tables its raw_schema task creates
    ingest_simulated_stripe(fresh_db, company)
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        ensure_schema(conn)
    build = subprocess.run([runtime.airflow_bin(), "dags", "test", "transform_dbt", "-c", day],
                           env=env, capture_output=True, text=True, timeout=900)
    output = build.stdout + build.stderr
    (tmp_path / "transform.log").write_text(output)
    assert build.returncode == 0, {t: s for t, s in _states(env, "transform_dbt").items() if s != "success"}
    gates = {g["gate"]: g["success"] for g in _xcom(env, "transform_dbt", "gate_raw")}
    assert gates == {"warehouse_tracks": True, "raw_quarantine": True, "raw_stripe_invoices": True}
    states = _states(env, "transform_dbt")
    assert {t: s for t, s in states.items() if s not in ("success", "skipped")} == {}
    with warehouse.connect(fresh_db) as conn:
        assert conn.execute("select count(*) from raw.events").fetchone()[0] == 0  # nothing was loaded
        assert conn.execute("select count(*) from staging.stg_segment__events").fetchone()[0] == tracks
        scored = conn.execute("select count(distinct account_id) from marts.account_health_daily").fetchone()[0]
    assert scored > 0
