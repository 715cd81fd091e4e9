"""End to end: `airflow dags test ingest_events <date>` against a fresh warehouse database."""

from __future__ import annotations

import gzip
import json
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from retention import runtime, warehouse


def _segment(root: Path, day: date, messages: list[dict | str]) -> None:
    ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    folder = root / "events" / "segment-logs" / "src_web" / str(ms)
    folder.mkdir(parents=True)
    lines = (m if isinstance(m, str) else json.dumps(m) for m in messages)
    (folder / f"{ms + 5}.abc.gz").write_bytes(gzip.compress("".join(f"{line}\n" for line in lines).encode()))


def _track(mid: str, day: date, event: str = "Report Created") -> dict:
    return {
        "type": "track", "messageId": mid, "userId": "usr_000001_01", "event": event,
        "timestamp": f"{day}T08:00:00Z", "receivedAt": f"{day}T08:00:01Z",
        "context": {"groupId": "acc_000001"}, "properties": {},
    }


@pytest.mark.slow
def test_daily_run_loads_its_day_partitions(fresh_db, airflow_env, tmp_path):
    landing = tmp_path / "landing"
    _segment(landing, date(2024, 11, 18), [_track("in1", date(2024, 11, 18)), _track("in2", date(2024, 11, 18)), "{oops"])
    _segment(landing, date(2024, 11, 1), [_track("old1", date(2024, 11, 1))])  # outside the window
    (landing / "nps").mkdir()
    (landing / "nps" / "nps_responses_2024-11.csv").write_text(
        "response_id,account_id,user_id,email,score,comment,responded_at\n"
        "r1,acc_000001,usr_000001_01,a@example.com,10,,2024-11-12T10:00:00Z\n"
    )
    (landing / "support").mkdir()
    (landing / "support" / "tickets_2024-11.jsonl").write_text(
        json.dumps({"ticket_id": "t1", "account_id": "acc_000001", "topic": "billing", "created_at": "2024-11-02T08:00:00Z"}) + "\n"
    )
    env = airflow_env(fresh_db)
    env["RETENTION_EVENTS_URI"] = str(landing)

    # Airflow 3's @daily run at 2024-11-19 00:00 covers the day that just ended, 11-18,
    # plus the 2-day look-back.
    proc = runtime.dags_test("ingest_events", env, "2024-11-19", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]

    def q(sql: str) -> list[tuple]:
        with warehouse.connect(fresh_db) as conn:
            return conn.execute(sql).fetchall()

    assert q("select message_id from raw.events order by 1") == [("in1",), ("in2",)]
    assert q("select reason, line from raw.quarantine") == [("malformed_json", 3)]
    assert q("select response_id from raw.nps_responses") == [("r1",)]
    assert q("select ticket_id from raw.support_tickets") == [("t1",)]
    assert q("select source, status from raw.load_manifest order by 1") == [
        ("events", "loaded"), ("nps", "loaded"), ("support", "loaded"),
    ]

    # full=true picks up the older day partition, and leaves the loaded files alone
    # (two event files: on two workers, as the param asks).
    proc = runtime.dags_test(
        "ingest_events", env, "2024-11-20", conf={"full": True, "workers": 2},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert q("select message_id from raw.events order by 1") == [("in1",), ("in2",), ("old1",)]
    assert q("select count(*) from raw.load_manifest") == [(4,)]
    assert "files=2 since=None until=None workers=2" in proc.stdout
