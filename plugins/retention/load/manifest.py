"""Bookkeeping shared by the loaders: quarantine previews and ``raw.load_manifest`` counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import psycopg

PREVIEW_BYTES = 1024

_LATER_FILE_LOADED = "select exists (select 1 from raw.load_manifest where source = %s and uri > %s)"


@dataclass
class FileCounts:
    """What loading one file did, before it goes into its manifest row."""

    valid: int = 0  # records that passed validation: kept + duplicates
    kept: int = 0
    superseded: int = 0  # rows of later files replaced by this one (backfills)
    rejected: Counter[str] = field(default_factory=Counter)  # quarantined, per reason
    first_day: date | None = None  # the earliest UTC day of the file's valid rows (raw.changed_days)


def preview(raw: bytes | str | None) -> str:
    """At most :data:`PREVIEW_BYTES` of a rejected record, as valid text without NUL."""
    if raw is None:
        return ""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    return raw[:PREVIEW_BYTES].decode("utf-8", "replace").replace("\x00", "")


def later_file_loaded(conn: psycopg.Connection, source: str, uri: str) -> bool:
    """Whether a file of ``source`` sorting after ``uri`` is loaded (a backfill is running)."""
    return bool(conn.execute(_LATER_FILE_LOADED, (source, uri)).fetchone()[0])


def uncount(conn: psycopg.Connection, per_file: list[tuple[int, int]]) -> int:
    """Move superseded rows from ``rows_loaded`` to ``rows_duplicate`` of their files."""
    for file_id, n in per_file:
        conn.execute(
            "update raw.load_manifest set rows_loaded = rows_loaded - %s, "
            "rows_duplicate = rows_duplicate + %s where file_id = %s",
            (n, n, file_id),
        )
    return sum(n for _, n in per_file)
