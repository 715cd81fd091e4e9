"""Tiny landed files in the contract's layouts, built per test, and warehouse helpers."""

from __future__ import annotations

import csv
import gzip
import json
import os
import signal
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from retention import warehouse
from retention.load.loader import load_source

DAY1 = date(2024, 11, 17)
DAY2 = DAY1 + timedelta(days=1)


def day_ms(day: date) -> str:
    return str(int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000))


def track(mid: str, day: date = DAY1, event: str = "Project Created", account: str = "acc_000001", **extra: Any) -> dict:
    msg = {
        "type": "track",
        "messageId": mid,
        "userId": "usr_000001_01",
        "event": event,
        "timestamp": f"{day.isoformat()}T10:00:00.000Z",
        "receivedAt": f"{day.isoformat()}T10:00:01.000Z",
        "context": {"groupId": account, "library": {"name": "analytics.js"}},
        "properties": {"n": 1},
    }
    msg.update(extra)
    return msg


def identify(mid: str, day: date = DAY1) -> dict:
    return {
        "type": "identify", "messageId": mid, "userId": "usr_000001_01",
        "timestamp": f"{day.isoformat()}T09:00:00Z", "receivedAt": f"{day.isoformat()}T09:00:02Z",
        "context": {"groupId": "acc_000001"}, "traits": {"email": "a@example.com"},
    }


def group(mid: str, day: date = DAY1) -> dict:
    return {
        "type": "group", "messageId": mid, "userId": "usr_000001_01", "groupId": "acc_000001",
        "timestamp": f"{day.isoformat()}T09:00:00Z", "receivedAt": f"{day.isoformat()}T09:00:02Z",
        "traits": {"name": "Acme"},
    }


def encode(item: dict | str | bytes) -> bytes:
    if isinstance(item, dict):
        return json.dumps(item).encode()
    return item.encode() if isinstance(item, str) else item


def segment_file(root: Path, day: date, items: list[dict | str | bytes], *, seq: int = 1, gz: bool = True) -> Path:
    """A Segment object-storage file: events/segment-logs/<source>/<day_ms>/<ms>.<hash>.gz."""
    folder = root / "events" / "segment-logs" / "src_web" / day_ms(day)
    folder.mkdir(parents=True, exist_ok=True)
    body = b"".join(encode(i) + b"\n" for i in items)
    name = f"{int(day_ms(day)) + seq}.h{seq:03d}" + (".gz" if gz else ".jsonl")
    path = folder / name
    path.write_bytes(gzip.compress(body) if gz else body)
    return path


def nps_file(root: Path, month: str, rows: list[dict]) -> Path:
    path = root / "nps" / f"nps_responses_{month}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = ["response_id", "account_id", "user_id", "email", "score", "comment", "responded_at"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)
    return path


def support_file(root: Path, month: str, items: list[dict | str]) -> Path:
    path = root / "support" / f"tickets_{month}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(encode(i) + b"\n" for i in items))
    return path


def run_load(url: str, source: str, root: Path | str, **kwargs: Any) -> dict:
    with warehouse.connect(url, autocommit=True) as conn:
        return load_source(conn, source, str(root), **kwargs).counts()


def query(url: str, sql: str, params: Any = None) -> list[tuple]:
    with warehouse.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Everything a load writes, without load times or file ids (which depend on order)."""
    file_of = "join raw.load_manifest m on m.file_id = t._file_id"
    return {
        "events": query(url, f"select message_id, event, account_id, timestamp, properties::text, m.uri, t._line from raw.events t {file_of} order by 1"),
        "event_ids": query(url, f"select message_id, type, m.uri, t._line from raw.event_ids t {file_of} order by 1"),
        "identifies": query(url, f"select message_id, m.uri, t._line from raw.identifies t {file_of} order by 1"),
        "groups": query(url, f"select message_id, m.uri, t._line from raw.groups t {file_of} order by 1"),
        "nps": query(url, f"select response_id, score, comment, m.uri, t._line from raw.nps_responses t {file_of} order by 1"),
        "support": query(url, f"select ticket_id, t.status, m.uri, t._line from raw.support_tickets t {file_of} order by 1"),
        "quarantine": query(url, "select uri, line, reason from raw.quarantine order by 1, 2"),
        "manifest": query(url, "select uri, sha256, rows_loaded, rows_quarantined, rows_duplicate, truncated, status from raw.load_manifest order by 1"),
    }


BIG_FILE_ROWS = 60_000


def small_then_big_file(root: Path, day: date) -> None:
    """Two files of one day: 10 rows, then 60,000 (long enough to be killed inside)."""
    segment_file(root, day, [track(f"small{i}", day=day) for i in range(10)], seq=1)
    template = json.dumps(track("MID", day=day))
    segment_file(root, day, [template.replace('"MID"', f'"big{i}"') for i in range(BIG_FILE_ROWS)], seq=2)


def wait_inside_copy(proc: subprocess.Popen, url: str, *, past_rows: int = 1000, timeout_s: float = 180) -> None:
    """Return once a COPY into ``url``'s database has passed ``past_rows`` rows, while
    ``proc`` (the load) still runs."""
    deadline = time.monotonic() + timeout_s
    with warehouse.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline and proc.poll() is None:
            row = conn.execute(
                "select tuples_processed from pg_stat_progress_copy where datname = current_database()"
            ).fetchone()
            if row and row[0] > past_rows:
                break
            time.sleep(0.005)
    assert proc.poll() is None, "the load ended before the COPY could be caught"


def kill_inside_copy(proc: subprocess.Popen, url: str, *, past_rows: int = 1000, timeout_s: float = 180) -> None:
    """SIGKILL ``proc`` and its process group (start it with ``start_new_session=True``)
    once a COPY into ``url``'s database has passed ``past_rows`` rows."""
    try:
        wait_inside_copy(proc, url, past_rows=past_rows, timeout_s=timeout_s)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
