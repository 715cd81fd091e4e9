"""Bad-input mode: an independent reader finds exactly the faults the report lists, and nothing else changed."""

from __future__ import annotations

import json
import zlib
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from retention.simulate.config import SimulationConfig
from retention.simulate.engine import simulate
from sim_files import event_files

RATE = 0.05
REQUIRED = {"messageId": str, "type": str, "timestamp": str, "receivedAt": str, "userId": str}
PER_TYPE = {"track": {"event": str, "properties": dict}, "identify": {"traits": dict}, "group": {"traits": dict}}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("faults")
    simulate(SimulationConfig(preset="tiny", seed=5, out=base / "clean"))
    simulate(SimulationConfig(preset="tiny", seed=5, out=base / "faulty", bad_input_rate=RATE))
    return base / "clean", base / "faulty"


def read_file(data: bytes) -> tuple[list[bytes], bool]:
    """Complete lines over all gzip members, and whether the last member is cut off."""
    out, truncated = b"", False
    while data:
        member = zlib.decompressobj(wbits=31)
        out += member.decompress(data)
        if not member.eof:
            truncated = True
            break
        data = member.unused_data
    return out.split(b"\n")[:-1], truncated


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def classify(line: bytes) -> tuple[str | None, dict | None]:
    """The documented reason a line is rejected (None: a valid record)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8", None
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "malformed_json", None
    if not isinstance(msg, dict):
        return "malformed_json", None
    fields = {**REQUIRED, **PER_TYPE.get(msg.get("type"), {})}
    context = msg.get("context")
    if any(key not in msg for key in fields) or not isinstance(context, dict) or "groupId" not in context:
        return "missing_field", None
    if any(not isinstance(msg[key], kind) for key, kind in fields.items()) or not isinstance(context["groupId"], str):
        return "wrong_type", None
    if msg["type"] not in ("track", "page", "screen", "identify", "group"):
        return "unknown_event", None
    ts, received = _time(msg["timestamp"]), _time(msg["receivedAt"])
    if ts > received + timedelta(days=1) or ts < received - timedelta(days=30):
        return "timestamp_out_of_range", None
    return None, msg


def test_report_matches_an_independent_reading(pair: tuple[Path, Path]) -> None:
    clean, faulty = pair
    report = json.loads((faulty / "faults_report.json").read_text())
    found: set[tuple[str, int, str]] = set()
    seen: set[str] = set()
    valid: list[bytes] = []
    for path in event_files(faulty):
        rel = path.relative_to(faulty).as_posix()
        lines, truncated = read_file(path.read_bytes())
        for n, line in enumerate(lines, start=1):
            reason, msg = classify(line)
            if msg is not None and msg["messageId"] in seen:
                reason = "duplicate_message_id"
            if reason:
                found.add((rel, n, reason))
                continue
            seen.add(msg["messageId"])
            valid.append(line)
        if truncated:
            found.add((rel, len(lines) + 1, "truncated_gzip"))
    reported = {(f["file"], f["line"], f["fault"]) for f in report["faults"]}
    assert found == reported
    counts = Counter(reason for _, _, reason in found)
    assert {r: n for r, n in report["counts"].items() if n} == dict(counts)
    assert set(counts) == set(report["reasons"])  # every kind of fault occurs at this rate
    assert report["expected_dropped_duplicates"] == counts["duplicate_message_id"]
    # Faults are extra lines: the valid, first-seen records are exactly the clean company's.
    clean_lines = [line for p in event_files(clean) for line in read_file(p.read_bytes())[0]]
    assert sorted(valid) == sorted(clean_lines)
    assert report["clean_records"] == len(clean_lines)


def test_share_of_faulty_lines_follows_the_rate(pair: tuple[Path, Path]) -> None:
    report = json.loads((pair[1] / "faults_report.json").read_text())
    line_faults = [f for f in report["faults"] if f["fault"] != "truncated_gzip" and "truncated" not in f["detail"]]
    share = len(line_faults) / report["clean_records"]
    assert RATE * 0.6 < share < RATE * 1.4


def test_byte_offsets_point_at_the_lines(pair: tuple[Path, Path]) -> None:
    faulty = pair[1]
    report = json.loads((faulty / "faults_report.json").read_text())
    for fault in report["faults"][:40]:
        data = (faulty / fault["file"]).read_bytes()
        stream = b"".join(line + b"\n" for line in read_file(data)[0])
        assert stream[: fault["byte_offset"]].count(b"\n") == fault["line"] - 1


def test_ingestion_quarantines_exactly_the_reported_faults(pair: tuple[Path, Path], fresh_db: str) -> None:
    """The contract with the next stage: the real loader, on a real Postgres, agrees with the report."""
    from retention import warehouse
    from retention.load.loader import load_source

    faulty = pair[1]
    report = json.loads((faulty / "faults_report.json").read_text())
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        counts = load_source(conn, "events", str(faulty)).counts()
        rows = conn.execute(
            "select m.uri, q.line, q.reason from raw.quarantine q join raw.load_manifest m using (file_id)"
        ).fetchall()
    quarantined = {(uri.split(f"{faulty.as_posix()}/")[-1], line, reason) for uri, line, reason in rows}
    expected = {(f["file"], f["line"], f["fault"]) for f in report["faults"] if f["fault"] != "duplicate_message_id"}
    assert quarantined == expected
    assert counts["quarantined"] == {r: n for r, n in report["expected_quarantine"].items() if n}
    assert counts["duplicates"] == report["expected_dropped_duplicates"]
    assert counts["rows_loaded"] == report["clean_records"]
