"""Bad-input mode: realistic faults added to event files, each one recorded exactly.

Faults are *extra* lines (or an extra, truncated gzip member) added to a file; the
clean records are never altered, so the ground truth holds whatever the rate. Each
injected line has exactly one defect, so its quarantine reason is unambiguous.
Line numbers are 1-based in the decompressed stream of the file (all members).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from retention.simulate.events import Record

# The reason vocabulary (also in docs/DATA_CONTRACTS.md and faults_report.json).
REASONS: dict[str, str] = {
    "invalid_utf8": "the line is not valid UTF-8 (checked first)",
    "malformed_json": "the line is valid UTF-8 but not a JSON object",
    "missing_field": "a required field is absent: type, messageId, userId, context (or its groupId), "
    "event (track)",
    "wrong_type": "a required field has the wrong JSON type (e.g. timestamp a number, userId a number, "
    "properties a string, messageId a number)",
    "unknown_event": "a message whose type is not one the loader takes (track, page, screen, identify, group)",
    "timestamp_out_of_range": "timestamp more than 1 day after receivedAt (future) or more than 30 days "
    "before it (e.g. before the account existed)",
    "truncated_gzip": "the file's last gzip member is cut off: records from `line` on are unreadable",
    "duplicate_message_id": "a complete valid record whose messageId was already seen earlier (by file "
    "name, then line); ingestion drops it, it is not quarantined",
}
LINE_FAULTS = (
    "malformed_json",
    "missing_field",
    "wrong_type",
    "duplicate_message_id",
    "timestamp_out_of_range",
    "unknown_event",
    "invalid_utf8",
)
UNKNOWN_TYPES = ("alias", "Track", "pageview", "event")  # any track event name loads
# Fields the loader requires (timestamp and properties are optional in the Segment spec).
MISSING = (("type",), ("userId",), ("event",), ("messageId",), ("context", "groupId"), ("context",))
TRUNCATED_MEMBER_LINES = 40
_BAD_UTF8 = b"caf\xe9 \xff\xfe"


@dataclass
class FaultInjector:
    rate: float
    rng: np.random.Generator
    signup_ts: np.ndarray  # per account, unix seconds
    gzip_level: int = 3
    faults: list[dict[str, Any]] = field(default_factory=list)
    clean_lines: int = 0
    _counter: int = 0
    _truncated_any: bool = False

    def build(self, relpath: str, records: list[Record]) -> bytes:
        """The gzip bytes of one event file: clean records plus injected faults."""
        lines = [r.line for r in records]
        self.clean_lines += len(lines)
        if self.rate <= 0:
            return gzip.compress(b"".join(lines), compresslevel=self.gzip_level, mtime=0)
        tracks = [k for k, r in enumerate(records) if r.kind == "track"]
        n_faults = int(self.rng.binomial(len(lines), self.rate)) if tracks else 0
        inserts: list[tuple[int, int, bytes, str, str | None, str]] = []  # (before, seq, line, fault, id, detail)
        for seq in range(n_faults):
            fault = LINE_FAULTS[self._counter % len(LINE_FAULTS)]
            variant = self._counter // len(LINE_FAULTS)
            self._counter += 1
            src = tracks[int(self.rng.integers(0, len(tracks)))]
            line, message_id, detail = self._faulty_line(fault, variant, records[src])
            low = src + 1 if fault == "duplicate_message_id" else 0
            before = int(self.rng.integers(low, len(lines) + 1))
            inserts.append((before, seq, line, fault, message_id, detail))
        inserts.sort(key=lambda x: (x[0], x[1]))

        out: list[bytes] = []
        offset, k = 0, 0
        for pos in range(len(lines) + 1):
            while k < len(inserts) and inserts[k][0] == pos:
                _, _, line, fault, message_id, detail = inserts[k]
                self.faults.append({
                    "file": relpath, "line": len(out) + 1, "byte_offset": offset, "fault": fault,
                    "message_id": message_id, "detail": detail,
                })
                out.append(line)
                offset += len(line)
                k += 1
            if pos < len(lines):
                out.append(lines[pos])
                offset += len(lines[pos])
        data = gzip.compress(b"".join(out), compresslevel=self.gzip_level, mtime=0)
        if len(lines) >= 10 and (self.rng.random() < self.rate or not self._truncated_any):
            data += self._truncated_member(relpath, lines, len(out), offset, len(data))
        return data

    def _truncated_member(self, relpath: str, lines: list[bytes], n_before: int, offset: int, at: int) -> bytes:
        """A second gzip member of repeated (duplicate) records, cut off half way."""
        self._truncated_any = True
        picks = self.rng.integers(0, len(lines), TRUNCATED_MEMBER_LINES)
        copies = [lines[int(p)] for p in picks]
        member = gzip.compress(b"".join(copies), compresslevel=self.gzip_level, mtime=0)
        cut = len(member) // 2
        while True:
            readable = zlib.decompressobj(wbits=31).decompress(member[:cut])
            n_readable = readable.count(b"\n")
            if n_readable < len(copies):
                break
            cut -= 16
        for j in range(n_readable):
            self.faults.append({
                "file": relpath, "line": n_before + j + 1, "byte_offset": offset, "fault": "duplicate_message_id",
                "message_id": orjson.loads(copies[j])["messageId"], "detail": "repeated record in a truncated gzip member",
            })
            offset += len(copies[j])
        self.faults.append({
            "file": relpath, "line": n_before + n_readable + 1, "byte_offset": offset, "fault": "truncated_gzip",
            "message_id": None, "compressed_byte_offset": at + cut, "records_lost": len(copies) - n_readable,
            "detail": f"gzip member starting at compressed byte {at} is cut at byte {at + cut}",
        })
        return member[:cut]

    def _fresh_id(self) -> str:
        h = self.rng.bytes(16).hex()
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-b{h[17:20]}-{h[20:32]}"

    def _faulty_line(self, fault: str, variant: int, record: Record) -> tuple[bytes, str | None, str]:
        if fault == "duplicate_message_id":
            return record.line, orjson.loads(record.line)["messageId"], "exact copy of an earlier record"
        msg = orjson.loads(record.line)
        msg["messageId"] = self._fresh_id()
        detail = ""
        if fault == "malformed_json":
            text = orjson.dumps(msg, option=orjson.OPT_SORT_KEYS)
            return text[: len(text) // 2] + b"\n", None, "record cut off mid-object"
        if fault == "missing_field":
            path = MISSING[variant % len(MISSING)]
            target = msg
            for key in path[:-1]:
                target = target[key]
            del target[path[-1]]
            detail = f"missing {'.'.join(path)}"
        elif fault == "wrong_type":
            choice = variant % 4
            if choice == 0:
                msg["timestamp"], detail = record.received_ms, "timestamp is a number"
            elif choice == 1:
                msg["userId"], detail = 4242, "userId is a number"
            elif choice == 2:
                msg["properties"], detail = "n/a", "properties is a string"
            else:
                msg["messageId"], detail = 123456789, "messageId is a number"
        elif fault == "timestamp_out_of_range":
            if variant % 2 == 0:
                ts = record.received_ms + 3 * 365 * 86_400_000
                detail = "timestamp three years after receivedAt"
            else:
                ts = (int(self.signup_ts[record.account]) - 400 * 86_400) * 1000
                detail = "timestamp 400 days before the account signed up"
            msg["timestamp"] = np.datetime_as_string(np.datetime64(ts, "ms"), unit="ms") + "Z"
        elif fault == "unknown_event":
            msg["type"] = UNKNOWN_TYPES[variant % len(UNKNOWN_TYPES)]
            detail = f"message type {msg['type']!r} is not loaded"
        elif fault == "invalid_utf8":
            msg.setdefault("properties", {})["note"] = "@@BAD@@"
            line = orjson.dumps(msg, option=orjson.OPT_SORT_KEYS).replace(b"@@BAD@@", _BAD_UTF8) + b"\n"
            return line, msg["messageId"], "latin-1 bytes in properties.note"
        message_id = msg.get("messageId") if isinstance(msg.get("messageId"), str) else None
        return orjson.dumps(msg, option=orjson.OPT_SORT_KEYS) + b"\n", message_id, detail

    def report(self) -> dict[str, Any]:
        counts = {reason: 0 for reason in REASONS}
        for f in self.faults:
            counts[f["fault"]] += 1
        quarantined = {r: n for r, n in counts.items() if r != "duplicate_message_id"}
        return {
            "bad_input_rate": self.rate,
            "line_numbers": "1-based, in the decompressed stream of the file (all gzip members)",
            "reasons": REASONS,
            "counts": counts,
            "expected_quarantine": quarantined,
            "expected_dropped_duplicates": counts["duplicate_message_id"],
            "clean_records": self.clean_lines,
            "faults": self.faults,
        }
