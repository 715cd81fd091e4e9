"""NPS responses and support tickets (small monthly exports) -> ``raw.nps_responses`` /
``raw.support_tickets``, through a staging table.

Runs inside the caller's per-file transaction (:func:`retention.load.loader.load_file`).
Every record, rejects included with their reason, is ``COPY``ed into a temporary
staging table; the valid rows are then inserted with ``on conflict (key) do nothing``
in key order (then line order, so the first row of a key by (file uri, line) is kept):
concurrent loads of files sharing keys take them in the same order and cannot deadlock,
and one file of a table publishes at a time, so a parallel load keeps what an in-order load
keeps. A backfill (an earlier file loaded after a later one) supersedes the later file's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg

from retention.load.landing import LandedFile
from retention.load.manifest import FileCounts, later_file_loaded, preview, uncount
from retention.load.readers import Digest, RawRecord, iter_csv, iter_lines
from retention.load.records import Reject, Rules, decode_json, nps_row, support_row

STAGE_META = ("_line bigint", "_byte_offset bigint", "_reason text", "_detail text", "_raw text")


@dataclass(frozen=True)
class ExportSource:
    """A small keyed export loaded through a staging table."""

    name: str
    table: str
    key: str  # the table's primary key, kept first by (file uri, line)
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: Callable[[RawRecord, Rules], tuple[Any, ...]]  # in ``columns`` order; raises Reject
    day: str  # the time column whose UTC day the product models read (raw.changed_days)


def _nps(rec: RawRecord, rules: Rules) -> tuple[Any, ...]:
    return nps_row(rec.fields or {}, rules)


def _support(rec: RawRecord, rules: Rules) -> tuple[Any, ...]:
    return support_row(decode_json(rec.data or b""), rules)


EXPORTS: dict[str, ExportSource] = {
    "nps": ExportSource(
        "nps", "nps_responses", "response_id",
        ("response_id", "account_id", "user_id", "email", "score", "comment", "responded_at"),
        ("text", "text", "text", "text", "int", "text", "timestamptz"),
        _nps,
        "responded_at",
    ),
    "support": ExportSource(
        "support", "support_tickets", "ticket_id",
        ("ticket_id", "account_id", "user_id", "requester_email", "topic", "subject", "status",
         "created_at", "resolved_at"),
        ("text",) * 7 + ("timestamptz", "timestamptz"),
        _support,
        "created_at",
    ),
}


def _stage(conn: psycopg.Connection, spec: ExportSource, landed: LandedFile, rules: Rules, digest: Digest) -> None:
    """COPY every record of the file into ``_stage``: valid rows and rejects alike."""
    empty = (None,) * len(spec.columns)
    valid_meta = (None, None, None, None)
    with landed.path.open("rb") as fobj, conn.cursor().copy("copy _stage from stdin") as copy:
        records = (
            iter_csv(fobj, digest, gzipped=landed.gzipped) if landed.format == "csv"
            else iter_lines(fobj, digest, gzipped=landed.gzipped)
        )
        write = copy.write_row
        for rec in records:
            if rec.error is None:
                try:
                    write((rec.line, *valid_meta, *spec.rows(rec, rules)))
                    continue
                except Reject as reject:
                    reason, detail = reject.reason, reject.detail
            else:
                reason, detail = rec.error, rec.detail or rec.error
            raw = rec.data if rec.data is not None else rec.preview
            write((rec.line, rec.byte_offset, reason, detail, preview(raw), *empty))


def _publish(
    conn: psycopg.Connection, spec: ExportSource, file_id: int, uri: str
) -> tuple[int, int, date | None]:
    """Staged rows -> ``raw.<table>``, first by (file uri, line): (loaded, superseded, the
    earliest UTC day of the superseded rows)."""
    cols = ", ".join(spec.columns)
    superseded, superseded_from = 0, None
    # One file of a table publishes at a time (until its transaction ends): otherwise an
    # earlier file could look for later files before a concurrent later one commits, then
    # lose its shared keys to it on conflict. The exports are small; the COPY stays parallel.
    conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"retention.publish:raw.{spec.table}",))
    if later_file_loaded(conn, spec.name, uri):
        per_file = conn.execute(
            f"with d as (delete from raw.{spec.table} t using raw.load_manifest m, _stage s "
            f"where s._reason is null and t.{spec.key} = s.{spec.key} and m.file_id = t._file_id and m.uri > %s "
            f"returning t.{spec.key}, t._file_id, t._line, t.{spec.day}), "
            f"noted as (insert into raw.duplicate_keys (key, file_id, line) select {spec.key}, _file_id, _line from d) "
            f"select _file_id, count(*), min(({spec.day} at time zone 'UTC')::date) from d group by 1 order by 1",
            (uri,),
        ).fetchall()
        superseded = uncount(conn, [(f, n) for f, n, _ in per_file])
        superseded_from = min((day for *_, day in per_file if day is not None), default=None)
    cur = conn.execute(
        f"insert into raw.{spec.table} ({cols}, _file_id, _line) "
        f"select {cols}, %s, _line from _stage where _reason is null order by {spec.key}, _line "
        f"on conflict ({spec.key}) do nothing",
        (file_id,),
    )
    conn.execute(  # the copies not kept
        f"insert into raw.duplicate_keys (key, file_id, line) select s.{spec.key}, %s, s._line from _stage s "
        f"where s._reason is null and not exists (select 1 from raw.{spec.table} t "
        f"where t.{spec.key} = s.{spec.key} and t._file_id = %s and t._line = s._line)",
        (file_id, file_id),
    )
    return cur.rowcount, superseded, superseded_from


def load_export(
    conn: psycopg.Connection, source: str, file_id: int, landed: LandedFile, rules: Rules, digest: Digest
) -> FileCounts:
    """Load one NPS / support export (inside the caller's transaction)."""
    spec = EXPORTS[source]
    columns = tuple(f"{c} {t}" for c, t in zip(spec.columns, spec.types, strict=True))
    conn.execute(f"create temp table _stage ({', '.join(STAGE_META + columns)}) on commit drop")
    _stage(conn, spec, landed, rules, digest)
    kept, superseded, superseded_from = _publish(conn, spec, file_id, landed.uri)
    conn.execute(
        "insert into raw.quarantine (file_id, uri, line, byte_offset, reason, detail, raw) "
        "select %s, %s, _line, _byte_offset, _reason, _detail, _raw from _stage "
        "where _reason is not null order by _line",
        (file_id, landed.uri),
    )
    counts = FileCounts(kept=kept, superseded=superseded, first_day=superseded_from)
    for reason, n, first_day in conn.execute(
        f"select _reason, count(*), min(({spec.day} at time zone 'UTC')::date) from _stage group by 1"
    ):
        if reason is None:
            counts.valid = n
            counts.first_day = min(filter(None, (first_day, superseded_from)), default=None)
        else:
            counts.rejected[reason] = n
    return counts
