"""Files destination: CSV and JSON Lines under ``exports/<sync>/``, written atomically.

* ``changes/<as_of>_run<run>_<seq>.{csv,jsonl}``: each batch of changes (add, update,
  remove) the engine sends, one file per batch and format, with the delivery id of each
  change, so a reader that dedups by delivery id sees every change exactly once even
  when a run was killed after writing a file and before recording it.
* ``members.{csv,jsonl}``: the sync's full current membership (every valid source row),
  rewritten after a run that changed something (or when missing).

Every file is written to a temporary name in the same folder, flushed to disk, then
renamed over its final name, so a reader never sees half a file.

Options: ``dir`` (default ``<project>/exports``; relative paths are taken from the
project root), ``formats`` (default ``[csv, jsonl]``). No connection is needed.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from retention.sync.destinations.base import Record, RowResult, SyncContext

FORMATS = ("csv", "jsonl")
EXPORTS_DIR = "exports"


def export_root(options: Mapping[str, Any]) -> Path:
    from retention.config import settings

    given = Path(str(options.get("dir") or EXPORTS_DIR))
    return given if given.is_absolute() else settings().home / given


class FilesDestination:
    kind: ClassVar[str] = "files"
    idempotent: ClassVar[bool] = True  # a rewritten change keeps its delivery id
    max_batch: ClassVar[int] = 10_000

    def __init__(self, conn_id: str | None = None, options: Mapping[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        formats = tuple(self.options.get("formats") or FORMATS)
        unknown = set(formats) - set(FORMATS)
        if unknown:
            raise ValueError(f"files destination: unknown formats {sorted(unknown)}; use {list(FORMATS)}")
        self.formats = formats
        self.root = export_root(self.options)
        self.folder: Path | None = None
        self.seq = 0
        self.written: list[Path] = []

    def open(self, ctx: SyncContext) -> None:
        self.folder = self.root / ctx.sync_name
        (self.folder / "changes").mkdir(parents=True, exist_ok=True)
        self.ctx = ctx

    def send(self, records: Sequence[Record]) -> list[RowResult]:
        assert self.folder is not None, "open() first"
        self.seq += 1
        stem = self.folder / "changes" / f"{self.ctx.as_of.isoformat()}_run{self.ctx.run_id}_{self.seq:04d}"
        try:
            for fmt in self.formats:
                path = stem.with_suffix(f".{fmt}")
                _atomic_write(path, _render(fmt, records, changes=True))
                self.written.append(path)
        except OSError as exc:
            error = f"files: cannot write {stem.name}: {exc.strerror or type(exc).__name__}"
            return [RowResult(key=r.key, ok=False, error=error) for r in records]
        return [RowResult(key=r.key, ok=True) for r in records]

    def write_members(self, ctx: SyncContext, rows: Callable[[], Iterable[Record]]) -> list[Path]:
        """Rewrite ``members.*`` when this run wrote changes or a file is missing."""
        assert self.folder is not None, "open() first"
        paths = [self.folder / f"members.{fmt}" for fmt in self.formats]
        if not self.written and all(p.exists() for p in paths):
            return []
        for path, fmt in zip(paths, self.formats):
            _atomic_write(path, _render(fmt, rows(), changes=False))  # streamed, one query per format
        self.written.extend(paths)
        return paths

    def close(self, ctx: SyncContext, *, succeeded: bool) -> None:
        return None


def _render(fmt: str, records: Iterable[Record], *, changes: bool) -> Iterable[str]:
    if fmt == "jsonl":
        return (_json_line(r, changes) for r in records)
    return _csv_lines(records, changes)


def _json_line(r: Record, changes: bool) -> str:
    row: dict[str, Any] = {"key": r.key, "segments": list(r.segments), "payload": dict(r.payload)}
    if changes:
        row = {"delivery_id": r.delivery_id, "action": r.action, **row}
    return json.dumps(row, sort_keys=True, default=str, separators=(",", ":")) + "\n"


def _csv_lines(records: Iterable[Record], changes: bool) -> Iterable[str]:
    """A batch of changes is in memory (its header is the union of its fields); the
    membership is streamed, its header taken from the first row (every member carries
    the whole mapping)."""
    rows = iter(records)
    if changes:
        batch = list(rows)
        fields = sorted({k for r in batch for k in r.payload})
        rows = iter(batch)
    else:
        first = next(rows, None)
        fields = sorted(first.payload) if first else []
        rows = itertools.chain([first], rows) if first else iter(())
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    head = (["delivery_id", "action"] if changes else []) + ["key", "segments"]
    writer.writerow(head + [f"payload.{f}" for f in fields])
    for n, r in enumerate(rows, 1):
        values = [_cell(r.payload.get(f)) for f in fields]
        writer.writerow(([r.delivery_id, r.action] if changes else []) + [r.key, ";".join(r.segments)] + values)
        if n % 1000 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _atomic_write(path: Path, chunks: Iterable[str]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
