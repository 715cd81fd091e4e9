"""Deterministic file writers: Segment's object-storage layout, JSON Lines, CSV."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from retention.simulate.events import Record
from retention.simulate.faults import FaultInjector

JSON_OPTS = orjson.OPT_SORT_KEYS


def json_bytes(obj: Any) -> bytes:
    return orjson.dumps(obj, option=JSON_OPTS | orjson.OPT_INDENT_2) + b"\n"


def write_jsonl(path: Path, rows: Iterable[Any]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row, option=JSON_OPTS) + b"\n")
            n += 1
    return n


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    n = 0
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
        n += 1
    path.write_text(buf.getvalue(), encoding="utf-8")
    return n


class SegmentWriter:
    """``events/segment-logs/<source_id>/<day_epoch_ms>/<epoch_ms>.<hash>.gz``.

    One folder per UTC day of receipt, one file per batch of records (a day is split
    into several batches once it is large), each named after the time it was flushed
    (just after its last record was received) and a hash of its clean content.
    """

    def __init__(self, out: Path, source_id: str, injector: FaultInjector):
        self.out = out
        self.base = Path("events") / "segment-logs" / source_id
        self.injector = injector
        self.files = 0
        self.bytes = 0

    def write_file(self, day_ts: int, records: list[Record]) -> None:
        digest = hashlib.blake2b(b"".join(r.line for r in records), digest_size=4).hexdigest()
        rel = self.base / str(day_ts * 1000) / f"{records[-1].received_ms + 1000}.{digest}.gz"
        data = self.injector.build(rel.as_posix(), records)
        (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.out / rel).write_bytes(data)
        self.files += 1
        self.bytes += len(data)
