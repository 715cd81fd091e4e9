"""End to end: `airflow dags test ingest_events <date>` against a fresh warehouse database.

The DAG's scheduled life on a simulated company with injected bad input: a first daily
run, the next day's (incremental) run, a rerun of the same interval, a backfill of an
earlier interval and a full run, each checked file by file against the simulator's
injection report and its clean twin; and a run killed in the middle of a file, then
run again.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from landed_files import (
    kill_inside_copy,
    nps_file,
    query,
    run_load,
    segment_file,
    small_then_big_file,
    snapshot,
    support_file,
    track,
)

from retention import runtime
from retention.local_servers.base import serve
from retention.simulate.config import SimulationConfig
from retention.simulate.engine import simulate
from support.databases import create_database

SEED = 11
BAD_INPUT_RATE = 0.05
RAW_FILE_ASSETS = ("raw.events", "raw.identifies", "raw.groups", "raw.nps_responses", "raw.support_tickets")


@pytest.mark.slow
def test_daily_run_loads_its_day_partitions(fresh_db, airflow_env, tmp_path):
    landing = tmp_path / "landing"
    day = date(2024, 11, 18)
    segment_file(landing, day, [track("in1", day=day), track("in2", day=day), "{oops"])
    segment_file(landing, date(2024, 11, 1), [track("old1", day=date(2024, 11, 1))])  # outside the window
    nps_file(landing, "2024-11", [{"response_id": "r1", "account_id": "acc_000001", "user_id": "usr_000001_01",
                                   "email": "a@example.com", "score": "10", "responded_at": "2024-11-12T10:00:00Z"}])
    support_file(landing, "2024-11", [{"ticket_id": "t1", "account_id": "acc_000001", "topic": "billing",
                                       "created_at": "2024-11-02T08:00:00Z"}])
    env = airflow_env(fresh_db)
    env["RETENTION_EVENTS_URI"] = str(landing)

    # The run for 11-18 (dated 11-18, started at 11-19 00:00) reads 11-18 plus the 2-day
    # look-back (retention.schedule).
    _run(env, "2024-11-18")
    assert query(fresh_db, "select message_id from raw.events order by 1") == [("in1",), ("in2",)]
    assert query(fresh_db, "select reason, line from raw.quarantine") == [("malformed_json", 3)]
    assert query(fresh_db, "select response_id from raw.nps_responses") == [("r1",)]
    assert query(fresh_db, "select ticket_id from raw.support_tickets") == [("t1",)]
    assert query(fresh_db, "select source, status from raw.load_manifest order by 1") == [
        ("events", "loaded"), ("nps", "loaded"), ("support", "loaded"),
    ]
    # each source landed its day completely: the product as-of never passes 11-18
    landed_through = [(source, date(2024, 11, 19)) for source in ("events", "nps", "support")]
    assert query(fresh_db, "select source, (interval_end at time zone 'UTC')::date from raw.landed_intervals"
                           " order by 1") == landed_through

    # full=true picks up the older day partition, and leaves the loaded files alone
    # (two event files: on two workers, as the param asks).
    out = _run(env, "2024-11-20", {"full": True, "workers": 2})
    assert query(fresh_db, "select message_id from raw.events order by 1") == [("in1",), ("in2",), ("old1",)]
    assert query(fresh_db, "select count(*) from raw.load_manifest") == [(4,)]
    assert "files=2 late=0 since=None until=None workers=2" in out
    # a load of every file has no end: what was landed completely stays as it was
    assert query(fresh_db, "select source, (interval_end at time zone 'UTC')::date from raw.landed_intervals"
                           " order by 1") == landed_through


# --- the DAG's life on a simulated company with bad input ---------------------------


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny company (2025-07..12, one event file a day) with bad input injected, and
    its clean twin: the same files without the faults, i.e. exactly the rows to keep."""
    base = tmp_path_factory.mktemp("ingest_dag")
    for name, rate in (("clean", 0.0), ("faulty", BAD_INPUT_RATE)):
        simulate(SimulationConfig(preset="tiny", seed=SEED, out=base / name, bad_input_rate=rate))
    return base / "clean", base / "faulty"


def _run(env: dict[str, str], logical_date: str, conf: dict | None = None) -> str:
    proc = runtime.dags_test(
        "ingest_events", env, logical_date, conf=conf, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


def _asset_events(env: dict[str, str]) -> Counter[str]:
    """Asset events per Asset name in the Airflow metadata database of ``env``."""
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as db:
        return Counter(dict(db.execute(
            "select a.name, count(*) from asset_event e join asset a on a.id = e.asset_id group by a.name"
        ).fetchall()))


def _day(relpath: str) -> date:
    """The day partition of ``events/segment-logs/<source>/<day_ms>/<file>``."""
    return datetime.fromtimestamp(int(relpath.split("/")[-2]) / 1000, UTC).date()


def _days(first: date, last: date) -> set[date]:
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


def _expected_per_file(clean: Path, report: dict) -> dict[str, tuple[int, int, int]]:
    """Per event file: (rows kept, rows quarantined, duplicates dropped), from the clean
    twin's lines and the injection report's faults of that file."""
    faults = Counter((f["file"], f["fault"] == "duplicate_message_id") for f in report["faults"])
    expected = {}
    for path in sorted((clean / "events").rglob("*.gz")):
        rel = path.relative_to(clean).as_posix()
        kept = gzip.decompress(path.read_bytes()).count(b"\n")
        expected[rel] = (kept, faults[rel, False], faults[rel, True])
    assert {f["file"] for f in report["faults"]} <= set(expected)
    return expected


def _manifest(url: str, landing: str) -> dict[str, tuple[int, int, int]]:
    rows = query(
        url,
        "select uri, rows_loaded, rows_quarantined, rows_duplicate from raw.load_manifest "
        "where source = 'events' and status = 'loaded'",
    )
    return {uri.removeprefix(f"{landing}/"): tuple(counts) for uri, *counts in rows}


@pytest.mark.slow
def test_daily_rerun_backfill_and_full_runs_match_the_injection_report(
    company, fresh_db, warehouse_server_url, airflow_env
):
    clean, faulty = company
    report = json.loads((faulty / "faults_report.json").read_text())
    expected = _expected_per_file(clean, report)

    def files_of(*days: set[date]) -> dict[str, tuple[int, int, int]]:
        wanted = set().union(*days)
        return {rel: counts for rel, counts in expected.items() if _day(rel) in wanted}

    # The landing location as an object-storage URL: read through Airflow's
    # ObjectStoragePath / fsspec (``local://`` is the scheme Airflow itself registers;
    # ``s3://``, ``gs://`` ... take the same path once their provider is installed).
    landing = f"local://{faulty}"
    env = airflow_env(fresh_db)
    env["RETENTION_EVENTS_URI"] = landing

    # First load: the daily run for 12-09 reads 12-09 plus its 2-day look-back.
    first_days = _days(date(2025, 12, 7), date(2025, 12, 9))
    assets_before = _asset_events(env)
    _run(env, "2025-12-09")
    assert _manifest(fresh_db, landing) == files_of(first_days)
    # Each load task updated the Assets of the raw tables it writes (what downstream
    # DAGs such as transform_dbt are scheduled on).
    updated = _asset_events(env) - assets_before
    assert {name: updated[name] for name in RAW_FILE_ASSETS} == dict.fromkeys(RAW_FILE_ASSETS, 1)

    # Incremental: the next day's run adds 12-10 and skips the days it looks back on.
    next_days = _days(date(2025, 12, 8), date(2025, 12, 10))
    _run(env, "2025-12-10")
    assert _manifest(fresh_db, landing) == files_of(first_days, next_days)

    # A rerun of the same interval changes nothing.
    before = snapshot(fresh_db)
    _run(env, "2025-12-10")
    assert snapshot(fresh_db) == before

    # A backfill of an earlier interval loads just its days.
    backfill_days = _days(date(2025, 8, 2), date(2025, 8, 4))
    _run(env, "2025-08-04")
    assert _manifest(fresh_db, landing) == files_of(first_days, next_days, backfill_days)

    # A full run loads the rest; every file's counts are the report's.
    _run(env, "2025-12-11", {"full": True})
    assert _manifest(fresh_db, landing) == expected
    assert dict(query(fresh_db, "select reason, count(*)::int from raw.quarantine group by 1")) == {
        reason: n for reason, n in report["expected_quarantine"].items() if n
    }
    assert query(fresh_db, "select sum(rows_duplicate)::int from raw.load_manifest where source = 'events'") == [
        (report["expected_dropped_duplicates"],)
    ]
    # Every good row is there, once: the message ids are exactly the clean twin's.
    kept = query(
        fresh_db,
        "select message_id from raw.events union all select message_id from raw.identifies "
        "union all select message_id from raw.groups",
    )
    clean_ids = [
        json.loads(line)["messageId"]
        for path in (clean / "events").rglob("*.gz")
        for line in gzip.decompress(path.read_bytes()).splitlines()
    ]
    assert len(kept) == report["clean_records"] == len(clean_ids)
    assert sorted(mid for (mid,) in kept) == sorted(clean_ids)

    # Out-of-order daily runs and backfills end with the rows of one in-order load.
    in_order = create_database(warehouse_server_url, fresh_db.rsplit("/", 1)[1].split("?")[0] + "_ref")
    for source in ("events", "nps", "support"):
        run_load(in_order, source, landing)
    assert snapshot(fresh_db) == snapshot(in_order)


@pytest.mark.slow
def test_a_run_killed_mid_file_is_resumed_by_running_it_again(fresh_db, airflow_env, tmp_path):
    landing = tmp_path / "landing"
    small_then_big_file(landing, date(2024, 11, 18))
    env = airflow_env(fresh_db)
    env["RETENTION_EVENTS_URI"] = str(landing)
    runtime.ensure_airflow_db(env)

    # One worker: the small file commits first, then the run is killed inside the big one.
    cmd = [runtime.airflow_bin(), "dags", "test", "ingest_events", "2024-11-19", "-c", json.dumps({"workers": 1})]
    with (tmp_path / "killed.log").open("w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    kill_inside_copy(proc, fresh_db)
    # The big file's rows and manifest entry rolled back together; the small one stays.
    assert query(fresh_db, "select rows_loaded from raw.load_manifest where source = 'events'") == [(10,)]
    assert query(fresh_db, "select count(*) from raw.events") == [(10,)]

    # Running the same date again resumes: exactly every row once.
    _run(env, "2024-11-19", {"workers": 1})
    assert query(fresh_db, "select rows_loaded, status from raw.load_manifest where source = 'events' order by 1") == [
        (10, "loaded"), (60_000, "loaded"),
    ]
    assert query(fresh_db, "select count(*), count(distinct message_id) from raw.events") == [(60_010, 60_010)]
    assert query(fresh_db, "select count(*) from raw.event_ids") == [(60_010,)]


@pytest.mark.slow
def test_a_missing_landing_location_fails_the_run_at_once_and_says_what_to_set(fresh_db, airflow_env, tmp_path):
    env = airflow_env(fresh_db)
    env["RETENTION_EVENTS_URI"] = str(tmp_path / "nowhere")
    token = "xoxb-canary-dag-alert-91"
    with serve("slack", token=token, channels=["C0ALERTS"], per_channel_per_s=100) as slack:
        env["AIRFLOW_CONN_SLACK_ALERTS"] = json.dumps(
            {"conn_type": "retention_slack", "host": f"{slack.base_url}/api", "password": token,
             "extra": {"channel": "C0ALERTS"}})
        proc = runtime.dags_test(
            "ingest_events", env, "2024-11-19", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        alerts = [m["text"] for m in slack.control.view("slack")["messages"]]
    assert proc.returncode != 0
    assert f"landing location {tmp_path / 'nowhere'} does not exist; check RETENTION_EVENTS_URI" in proc.stdout
    # Configuration errors are not retried: the load tasks go straight to failed.
    assert "new_state=failed" in proc.stdout
    assert "up_for_retry" not in proc.stdout
    # The failure alert (DEFAULT_ARGS): one Slack message per task that failed, no secret in it.
    assert sorted(a.split(" failed")[0] for a in alerts) == [
        "Airflow: ingest_events.load_events", "Airflow: ingest_events.load_nps", "Airflow: ingest_events.load_support"]
    assert all(token not in a for a in alerts) and token not in proc.stdout
