"""The pipeline as deployed: a real scheduler, dag-processor, triggerer and API server
(LocalExecutor) as processes, a fresh Airflow home and warehouse, checked only through
the public REST API and the warehouse.

A tiny simulated company whose last day is yesterday (UTC), so the scheduler's own daily
run is one of the two days: day 1 is a manual run with its date (queued before the DAGs
are unpaused, due earlier so it goes first), day 2 the run the scheduler itself starts
on unpause (catchup=False: the latest complete day). From there nothing is triggered by hand: each ingestion DAG
publishes its raw Assets at its end, transform_dbt (and the sync, when its DAG exists)
follow by themselves. Then: day 2's incremental build equals a full rebuild; re-running
day 1's run processes day 1 (and picks up a file that landed late for it); a 3-day
backfill processes each day once, never loading the same tables from two runs at once;
and every run of every DAG succeeded.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_stack import AirflowAPI, airflow_stack
from landed_files import query, segment_file, track
from support.databases import create_database, drop_database

from retention import runtime, warehouse
from retention.config import settings
from retention.hooks.stripe import connection_json
from retention.simulate.config import SimulationConfig
from retention.simulate.engine import simulate
from retention.simulate.stripe_server import serve

pytestmark = [pytest.mark.slow, pytest.mark.scheduler]

REPO = Path(__file__).resolve().parents[2]
INGEST = ["ingest_stripe", "ingest_events"]
SYNC = [d for d in ("sync_segments",) if (REPO / "dags" / f"{d}.py").exists()]
PIPELINE = [*INGEST, "transform_dbt", *SYNC]
EVENT_LOADS = ("load_events", "load_nps", "load_support")
CHAIN_TIMEOUT_S = 2400


def midnight(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def processed(api: AirflowAPI, dag_id: str, run: dict) -> tuple[str, str]:
    value = api.xcom(dag_id, run["dag_run_id"], "run_interval")
    return value["start"], value["end"]


def settled(api: AirflowAPI, dag_id: str) -> list[dict]:
    """The DAG's runs once none is queued or running (else []); a failed run fails the test."""
    runs = api.dag_runs(dag_id)
    failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
    assert not failed, f"{dag_id} runs failed: {failed}"
    return runs if runs and all(r["state"] == "success" for r in runs) else []


def built(api: AirflowAPI) -> list[str]:
    """as_of of every transform_dbt run that published the marts, in run order."""
    days = []
    for run in api.dag_runs("transform_dbt"):
        if api.task_state("transform_dbt", run["dag_run_id"], "publish_marts") == "success":
            days.append(api.xcom("transform_dbt", run["dag_run_id"], "publish_marts")["as_of"])
    return days


def marts_fingerprint(url: str) -> dict[str, tuple[int, str]]:
    tables = [t for (t,) in query(url, "select table_name from information_schema.tables "
                                       "where table_schema = 'marts' and table_type = 'BASE TABLE' order by 1")]
    assert tables
    return {
        t: query(url, f"select count(*), md5(coalesce(string_agg(r::text, '|' order by r::text), '')) from marts.{t} r")[0]
        for t in tables
    }


def all_settled(api: AirflowAPI) -> dict[str, list[dict]] | None:
    runs = {dag_id: settled(api, dag_id) for dag_id in PIPELINE}
    return runs if all(runs.values()) else None


@pytest.fixture
def metadata_db(warehouse_server_url: str) -> Iterator[str]:
    """Airflow's metadata in Postgres (a database of its own on the test's server): with
    SQLite, Airflow refuses to create a backfill while the scheduler writes (HTTP 503)."""
    url = create_database(warehouse_server_url, f"airflow_meta_{secrets.token_hex(4)}")
    yield url
    drop_database(url)


def test_the_pipeline_runs_by_itself_under_the_scheduler(fresh_db, metadata_db, tmp_path):
    started = time.monotonic()
    stages: dict[str, float] = {}  # stage -> seconds since start, printed at the end (docs/scheduling.md)

    def stage(name: str) -> None:
        stages[name] = time.monotonic() - started
    day2 = datetime.now(UTC).date() - timedelta(days=1)
    day1 = day2 - timedelta(days=1)
    company = tmp_path / "company"
    simulate(SimulationConfig(preset="tiny", seed=11, out=company, end_date=day2))
    # one known event on each day (the tiny company does not have a file every day)
    segment_file(company, day1, [track("sched-day1", day=day1)], seq=900)
    segment_file(company, day2, [track("sched-day2", day=day2)], seq=900)

    cfg = settings({"RETENTION_HOME": str(REPO), "AIRFLOW_HOME": str(tmp_path / "airflow"),
                    "RETENTION_DATA_DIR": str(tmp_path / "data")})
    env = runtime.child_env(fresh_db, cfg)
    env.pop("WAREHOUSE_URL")  # tasks get the warehouse from the Airflow connection
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = warehouse.sqlalchemy_url(metadata_db)
    env["RETENTION_EVENTS_URI"] = str(company)
    api_key = "sk_test_sched_" + secrets.token_hex(8)
    with serve(company, api_key=api_key) as stripe:
        env["AIRFLOW_CONN_STRIPE_DEFAULT"] = connection_json(stripe.base_url, api_key)
        stage("company simulated, Stripe API up")
        with airflow_stack(env, tmp_path / "logs", PIPELINE) as api:
            stage("stack up, DAGs parsed")
            # Day 1: manual runs dated day 1 (as the day's scheduled run is), the event
            # history before it through a long look-back; due before the scheduled run.
            day1_runs = {
                dag_id: api.trigger(dag_id, logical_date=midnight(day1), run_after=midnight(day2), conf=conf)
                for dag_id, conf in (("ingest_stripe", {}), ("ingest_events", {"lookback_days": 400}))
            }
            for dag_id in PIPELINE:
                api.unpause(dag_id)  # the scheduler now starts day 2's run of each ingestion DAG

            def chain_done() -> dict | None:
                runs = all_settled(api)
                return runs if runs and all(len(runs[d]) == 2 for d in INGEST) and day2.isoformat() in built(api) else None

            runs = api.wait("day 1 and day 2 through ingest -> transform", chain_done, CHAIN_TIMEOUT_S, 5)
            stage("day 1 and day 2 chain")

            # Each ingestion DAG: day 1 (manual, dated day 1), then day 2 (scheduled, dated day 2).
            for dag_id in INGEST:
                assert [r["run_type"] for r in runs[dag_id]] == ["manual", "scheduled"], runs[dag_id]
                assert [processed(api, dag_id, r) for r in runs[dag_id]] == [
                    (day1.isoformat(), day2.isoformat()), (day2.isoformat(), (day2 + timedelta(days=1)).isoformat())]
            assert query(fresh_db, "select message_id from raw.events where message_id like 'sched-%' order by 1") == [
                ("sched-day1",), ("sched-day2",)]
            # transform_dbt ran only on Asset events, built each day once, in order, and
            # did nothing in runs that brought no newly complete day.
            assert {r["run_type"] for r in runs["transform_dbt"]} == {"asset_triggered"}
            assert built(api) == [day1.isoformat(), day2.isoformat()]
            for dag_id in SYNC:
                assert runs[dag_id], f"{dag_id} did not run after the marts were published"
            # Each build: every task succeeded (a run succeeds with skipped tasks too).
            for run in runs["transform_dbt"]:
                tis = api.task_instances("transform_dbt", run["dag_run_id"])
                if any(ti["task_id"] == "publish_marts" and ti["state"] == "success" for ti in tis):
                    assert not [(ti["task_id"], ti["state"]) for ti in tis if ti["state"] != "success"]

            # Day 2's build was incremental (the default); it equals a full rebuild.
            incremental = marts_fingerprint(fresh_db)
            with warehouse.connect(fresh_db) as conn:  # granted once per build, by the DAG
                conn.execute("set role analyst_readonly")
                for table in incremental:
                    conn.execute(f"select * from marts.{table} limit 1")
            rebuild = subprocess.run(
                [str(Path(runtime.airflow_bin()).parent / "dbt"), "run", "--full-refresh", "--target-path",
                 str(tmp_path / "dbt_target"), "--log-path", str(tmp_path / "dbt_logs")],
                env=env, cwd=cfg.dbt_project_dir, capture_output=True, text=True, timeout=600,
            )
            assert rebuild.returncode == 0, rebuild.stdout[-3000:]
            assert marts_fingerprint(fresh_db) == incremental
            stage("full rebuild compared")

            # Re-running day 1's run (its date) processes day 1 again: a file landed late
            # for day 1 is loaded now.
            segment_file(company, day1, [track("sched-late-day1", day=day1)], seq=901)
            rerun = day1_runs["ingest_events"]["dag_run_id"]
            cleared = api.post(f"/dags/ingest_events/dagRuns/{rerun}/clear", {"dry_run": False})
            assert cleared.status_code == 200, cleared.text

            def rerun_done() -> bool:
                run = api.get(f"/dags/ingest_events/dagRuns/{rerun}")
                return run["state"] == "success" and bool(
                    query(fresh_db, "select 1 from raw.events where message_id = 'sched-late-day1'"))

            api.wait("the re-run of day 1", rerun_done, 600)
            assert processed(api, "ingest_events", {"dag_run_id": rerun}) == (day1.isoformat(), day2.isoformat())
            stage("re-run of day 1")

            # A 3-day backfill (up to 10 runs at once by default): each day once, and no
            # two runs loading the same tables at the same time.
            first = day1 - timedelta(days=9)

            # Its dates are when the runs are due: the run due at D+1 00:00 processes day D.
            created = api.post("/backfills", {"dag_id": "ingest_events", "from_date": midnight(first + timedelta(days=1)),
                                              "to_date": midnight(first + timedelta(days=3))})
            assert created.status_code == 200, created.text
            backfill_id = created.json()["id"]

            def backfill_done() -> list[dict] | None:
                runs = all_settled(api)
                mine = [r for r in (runs or {}).get("ingest_events", []) if r["run_type"] == "backfill"]
                return mine if len(mine) == 3 else None

            backfill = api.wait(f"backfill {backfill_id}", backfill_done, 900, 5)
            stage("3-day backfill")
            assert sorted(processed(api, "ingest_events", r)[0] for r in backfill) == [
                (first + timedelta(days=i)).isoformat() for i in range(3)]
            for task_id in EVENT_LOADS:
                spans = sorted(
                    (ti["start_date"], ti["end_date"])
                    for r in backfill for ti in api.task_instances("ingest_events", r["dag_run_id"])
                    if ti["task_id"] == task_id
                )
                assert len(spans) == 3
                for (_, end), (start, _) in zip(spans, spans[1:]):
                    assert end <= start, f"{task_id} ran in two backfill runs at once: {spans}"

            # Nothing was built twice; every run of every DAG succeeded.
            final = api.wait("every run finished", lambda: all_settled(api), 600, 5)
            assert built(api) == [day1.isoformat(), day2.isoformat()]
            assert all(r["state"] == "success" for runs in final.values() for r in runs)
            stage("every run settled")
    stage("stack stopped")
    print("\nscheduler test, seconds since start: " + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()))
