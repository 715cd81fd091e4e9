"""RETENTION_EVENTS_SOURCE decides what the DAGs wait for, build, gate and monitor
(retention.sources): files (default), warehouse (Segment/RudderStack tables read in
place), none (billing only).

End to end: a billing-only team runs `ingest_stripe` then `transform_dbt` (`airflow dags
test`, local Stripe server, no event tables ever loaded) and gets its finance marts."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from retention import runtime, warehouse
from retention.config import EVENTS_SOURCE_VAR
from retention.hooks.stripe import connection_json
from retention.simulate.stripe_server import serve
from retention.sources import STRIPE_TABLES, SourceMode, mode

DAGS = Path(__file__).resolve().parents[2] / "dags"
KEY = "sk_test_source_modes_77"


def _dag(name: str, source: str, monkeypatch: pytest.MonkeyPatch):
    """Parse dags/<name>.py with RETENTION_EVENTS_SOURCE=source, as the dag-processor would."""
    from airflow.sdk import DAG

    monkeypatch.setenv(EVENTS_SOURCE_VAR, source)
    spec = importlib.util.spec_from_file_location(f"modes_{name}_{source}", DAGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    [dag] = [v for v in vars(module).values() if isinstance(v, DAG)]
    return module, dag


def _builds(tasks: set[str], model: str) -> bool:
    """Whether the rendered dbt task group holds ``model`` (alone, or in a group with its tests)."""
    return f"dbt.{model}_run" in tasks or f"dbt.{model}.run" in tasks


def test_the_mode_comes_from_one_variable_and_an_unknown_value_is_one_clear_error():
    assert mode({}).events_source == "files"
    assert mode({EVENTS_SOURCE_VAR: " Warehouse "}).events_source == "warehouse"
    with pytest.raises(ValueError, match="RETENTION_EVENTS_SOURCE must be one of files, warehouse, none, not 'kafka'"):
        mode({EVENTS_SOURCE_VAR: "kafka"})


def test_stripe_tables_are_those_ingest_stripe_publishes():
    from retention.extract.stripe import STRIPE_OBJECTS

    assert set(STRIPE_TABLES) == {t for spec in STRIPE_OBJECTS.values() for t in spec.tables}


@pytest.mark.parametrize("source", ["files", "warehouse", "none"])
def test_each_dag_follows_the_mode(source: str, monkeypatch: pytest.MonkeyPatch):
    transform, dag = _dag("transform_dbt", source, monkeypatch)
    waited = {a.name for a in transform.RAW}
    tasks = set(dag.task_dict)
    gates = dag.task_dict["gate_raw"].doc_md
    assert dag.task_dict["dbt.dbt_producer_watcher"].selector == ("finance" if source == "none" else None)
    _, freshness = _dag("monitor_freshness", source, monkeypatch)
    _, events = _dag("ingest_events", source, monkeypatch)
    loads = {t for t in events.task_dict if t.startswith("load_")}
    stripe = {f"raw.{t}" for t in STRIPE_TABLES}
    if source == "files":
        assert waited == stripe | {"raw.events", "raw.identifies", "raw.groups", "raw.nps_responses",
                                   "raw.support_tickets"}
        assert gates == "Quality gates: raw_events, raw_quarantine, raw_stripe_invoices"
        assert _builds(tasks, "account_health_daily") and _builds(tasks, "mrr_monthly")
        assert loads == {"load_events", "load_nps", "load_support"}
    elif source == "warehouse":
        assert waited == stripe  # nothing lands the events: a build waits for Stripe only
        assert gates == "Quality gates: warehouse_tracks, raw_quarantine, raw_stripe_invoices"
        assert _builds(tasks, "account_health_daily") and _builds(tasks, "mrr_monthly")
        assert loads == {"load_nps", "load_support"}
    else:
        assert waited == stripe
        assert gates == "Quality gates: raw_stripe_invoices"
        assert _builds(tasks, "mrr_monthly")
        product = [t for t in tasks if any(m in t for m in ("stg_segment", "usage", "health", "segment_members"))]
        assert product == []
        assert loads == set()
    assert set(freshness.task_dict) == ({"check_stripe"} if source == "none" else {"check_events", "check_stripe"})


def test_warehouse_mode_gates_and_monitors_the_destination_tracks_table(fresh_db: str):
    from retention.quality.freshness import check
    from retention.quality.gate import run_gates
    from retention.quality.suites import GATES, WAREHOUSE_EVENTS_GATE, GateSettings

    assert GATES[WAREHOUSE_EVENTS_GATE].schema == "segment"  # RETENTION_EVENTS_WAREHOUSE_SCHEMA's default
    now = datetime(2025, 3, 10, 12, tzinfo=timezone.utc)
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        conn.execute("create schema segment")
        conn.execute('create table segment.tracks (id text, event text, user_id text, anonymous_id text,'
                     ' context_group_id text, "timestamp" timestamptz, received_at timestamptz)')
        conn.execute("insert into segment.tracks select 'm' || i, 'Report Viewed', 'u1', null, 'acc_1',"
                     " %s - i * interval '1 hour', %s - i * interval '1 hour' from generate_series(0, 9) i",
                     (now, now))
    [ok] = run_gates(fresh_db, [WAREHOUSE_EVENTS_GATE], GateSettings(as_of=date(2025, 3, 10)))
    assert ok.success, ok.failed
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        conn.execute("insert into segment.tracks values ('m1', null, 'u2', null, null, %s, %s)", (now, now))
    [bad] = run_gates(fresh_db, [WAREHOUSE_EVENTS_GATE], GateSettings(as_of=date(2025, 3, 20)),
                      raise_on_failure=False)
    assert not bad.success
    assert {"expect_column_values_to_be_unique", "expect_column_values_to_not_be_null",
            "expect_column_max_to_be_between"} <= {f.split("(")[0] for f in bad.failed}, bad.failed
    wh = SourceMode("warehouse", "segment")
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        assert check(conn, "events", timedelta(hours=26), now=now + timedelta(hours=1), source_mode=wh).ok
        stale = check(conn, "events", timedelta(hours=26), now=now + timedelta(days=3), source_mode=wh)
    assert stale.message().startswith("events is stale: newest tracks 3.0d ago (limit 26h)")
    assert "warehouse destination" in stale.message()
    # the newest day's volume collapsed against the trailing week (as raw_events is judged)
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        conn.execute("truncate segment.tracks")
        conn.execute("insert into segment.tracks select 'v' || d || '_' || i, 'Report Viewed', 'u1', null, 'acc_1',"
                     " t, t from generate_series(1, 9) d, generate_series(1, 100) i,"
                     " lateral (select timestamptz '2025-03-01 12:00+00' + (d - 1) * interval '1 day' as t) ts"
                     " where d < 9 or i <= 5")
    [collapsed] = run_gates(fresh_db, [WAREHOUSE_EVENTS_GATE], GateSettings(as_of=date(2025, 3, 9)),
                            raise_on_failure=False)
    assert not collapsed.success
    assert collapsed.failed == ["newest day's event volume >= ratio x trailing 7-day average"], collapsed.failed



def _states(env: dict[str, str], dag_id: str) -> dict[str, str]:
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as meta:
        run_id, = meta.execute("select run_id from dag_run where dag_id = ? order by id desc limit 1",
                               (dag_id,)).fetchone()
        return dict(meta.execute("select task_id, state from task_instance where dag_id = ? and run_id = ?",
                                 (dag_id, run_id)).fetchall())


def _xcom(env: dict[str, str], dag_id: str, task_id: str):
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as meta:
        value, = meta.execute(
            "select x.value from xcom x join dag_run r on r.id = x.dag_run_id where x.dag_id = ?"
            " and x.task_id = ? and x.key = 'return_value' order by r.id desc limit 1", (dag_id, task_id),
        ).fetchone()
    return json.loads(value)


@pytest.mark.slow
def test_a_billing_only_team_ingests_stripe_then_builds_its_finance_marts(fresh_db: str, airflow_env, tmp_path):
    company = tmp_path / "company"  # the simulator's tiny company: its Stripe account only is used
    subprocess.run([str(Path(sys.executable).parent / "retention"), "simulate", "--preset", "tiny", "--seed", "3",
                    "--out", str(company)], check=True, capture_output=True)
    end_date = json.loads((company / "simulation.json").read_text())["parameters"]["end_date"]
    day = json.dumps({"day": end_date})
    env = airflow_env(fresh_db)
    env[EVENTS_SOURCE_VAR] = "none"
    with serve(company, api_key=KEY) as server:
        env["AIRFLOW_CONN_STRIPE_DEFAULT"] = connection_json(server.base_url, KEY)
        ingest = subprocess.run([runtime.airflow_bin(), "dags", "test", "ingest_stripe", "-c", day], env=env,
                                capture_output=True, text=True, timeout=600)
    assert ingest.returncode == 0, (ingest.stdout + ingest.stderr)[-4000:]
    with warehouse.connect(fresh_db) as conn:
        # the project's raw tables exist (empty): nothing ever loads events here
        assert conn.execute("select count(*) from raw.events").fetchone()[0] == 0
        assert conn.execute("select count(*) from raw.nps_responses").fetchone()[0] == 0

    build = subprocess.run([runtime.airflow_bin(), "dags", "test", "transform_dbt", "-c", day],
                           env=env, capture_output=True, text=True, timeout=900)
    output = build.stdout + build.stderr
    assert build.returncode == 0, output[-5000:]
    assert _xcom(env, "transform_dbt", "run_interval")["as_of"] == end_date
    assert [g["gate"] for g in _xcom(env, "transform_dbt", "gate_raw")] == ["raw_stripe_invoices"]
    assert _xcom(env, "transform_dbt", "gate_marts") == []  # the marts gates read product marts: not built
    states = _states(env, "transform_dbt")
    assert states["dbt.dbt_producer_watcher"] == "success"
    assert {t: s for t, s in states.items() if s not in ("success", "skipped")} == {}
    with warehouse.connect(fresh_db) as conn:
        marts = {r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'")}
        rows, snapshot = conn.execute("select count(*), max(snapshot_at) from marts.mrr_monthly").fetchone()
    assert rows > 20
    # as of the end of the interval ingest_stripe recorded (the day after end_date), not the latest invoice
    assert snapshot == datetime.combine(date.fromisoformat(end_date) + timedelta(days=1), datetime.min.time(),
                                        timezone.utc)
    assert "account_health_daily" not in marts and "segment_members" not in marts

