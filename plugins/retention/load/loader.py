"""Load landed files into ``raw.*``: one transaction per file, COPY, dedup, quarantine.

Per file, in ONE transaction (so a killed load leaves nothing and a rerun redoes it):

1. look the uri up in ``raw.load_manifest``: same sha256 -> skipped; different ->
   ``status = 'changed_after_load'`` + warning, the file is not re-read;
2. stream the file (decompressing, parsing line by line) into a temporary staging table
   with ``COPY ... FROM STDIN``; rejected records go into the same stream with their
   reason, so memory stays flat however large the file;
3. publish: insert the valid staged rows into the raw table(s) keeping the first row of
   each key by ``(file uri, line)``; rows whose key is already loaded are counted as
   duplicates and dropped (see :func:`_supersede` for backfills);
4. copy the rejected records to ``raw.quarantine`` and complete the manifest row.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

import orjson
import psycopg

from retention.load import schema
from retention.load.landing import LandedFile, discover
from retention.load.readers import Digest, RawRecord, iter_csv, iter_lines, iter_parquet, read_chunks
from retention.load.records import (
    Reject,
    Rules,
    decode_json,
    flat_to_segment,
    nps_row,
    segment_row,
    support_row,
)

log = logging.getLogger(__name__)

PREVIEW_BYTES = 1024
STAGE_META = ("_line bigint", "_byte_offset bigint", "_reason text", "_detail text", "_raw text")


@dataclass(frozen=True)
class SourceSpec:
    name: str
    stage_columns: tuple[str, ...]  # "name type", in the order the row builders return
    rows: Callable[[RawRecord, Rules], tuple[Any, ...]]  # raises Reject
    publish: Callable[[psycopg.Connection, int, str], tuple[int, int]]  # -> (loaded, superseded)
    tables: tuple[str, ...]


@dataclass
class FileResult:
    uri: str
    status: str  # loaded | skipped | changed
    rows_loaded: int = 0
    duplicates: int = 0
    superseded: int = 0
    truncated: bool = False
    quarantined: Counter[str] = field(default_factory=Counter)


@dataclass
class RunResult:
    source: str
    files: list[FileResult] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        """The run summary: counts only (safe for XCom and logs)."""
        quarantined: Counter[str] = Counter()
        for f in self.files:
            quarantined.update(f.quarantined)
        statuses = Counter(f.status for f in self.files)
        return {
            "source": self.source,
            "files_seen": len(self.files),
            "files_loaded": statuses["loaded"],
            "files_skipped": statuses["skipped"],
            "files_changed": statuses["changed"],
            "files_truncated": sum(f.truncated for f in self.files),
            "rows_loaded": sum(f.rows_loaded for f in self.files),
            "duplicates": sum(f.duplicates for f in self.files),
            "superseded": sum(f.superseded for f in self.files),
            "quarantined": dict(sorted(quarantined.items())),
            "changed_uris": [f.uri for f in self.files if f.status == "changed"],
        }


# --- row builders -------------------------------------------------------------------


def _segment_from_line(rec: RawRecord, rules: Rules) -> tuple[Any, ...]:
    return segment_row(decode_json(rec.data or b""), rules)


def _segment_from_fields(rec: RawRecord, rules: Rules) -> tuple[Any, ...]:
    return segment_row(flat_to_segment(rec.fields or {}), rules)


def _nps(rec: RawRecord, rules: Rules) -> tuple[Any, ...]:
    return nps_row(rec.fields or {}, rules)


def _support(rec: RawRecord, rules: Rules) -> tuple[Any, ...]:
    return support_row(decode_json(rec.data or b""), rules)


# --- publishing: staged rows -> raw tables ------------------------------------------

_LATER_FILE_LOADED = (
    "select exists (select 1 from raw.load_manifest where source = %s and uri > %s)"
)


def _uncount(conn: psycopg.Connection, per_file: list[tuple[int, int]]) -> int:
    """Move superseded rows from ``rows_loaded`` to ``rows_duplicate`` of their files."""
    for file_id, n in per_file:
        conn.execute(
            "update raw.load_manifest set rows_loaded = rows_loaded - %s, "
            "rows_duplicate = rows_duplicate + %s where file_id = %s",
            (n, n, file_id),
        )
    return sum(n for _, n in per_file)


def _supersede_events(conn: psycopg.Connection, uri: str) -> int:
    """Backfill: drop kept messages that came from a file sorting after ``uri``.

    Loading files in uri order keeps the first row by (file uri, line). When an earlier
    file arrives after later ones were loaded (a backfill), its rows win over theirs, so
    the outcome is the same whatever order the files were loaded in. Only runs when a
    later file of the source is already loaded.
    """
    if not conn.execute(_LATER_FILE_LOADED, ("events", uri)).fetchone()[0]:
        return 0
    conn.execute(
        "create temp table _superseded on commit drop as "
        "select e.message_id, e.type, e.timestamp, e._file_id from raw.event_ids e "
        "join _stage s on s.message_id = e.message_id and s._reason is null "
        "join raw.load_manifest m on m.file_id = e._file_id where m.uri > %s",
        (uri,),
    )
    conn.execute("delete from raw.event_ids e using _superseded x where e.message_id = x.message_id")
    conn.execute(
        "delete from raw.events e using _superseded x where x.type = 'track' "
        "and e.message_id = x.message_id and e.timestamp = x.timestamp"
    )
    for table, kind in (("identifies", "identify"), ("groups", "group")):
        conn.execute(
            f"delete from raw.{table} e using _superseded x where x.type = %s and e.message_id = x.message_id",
            (kind,),
        )
    per_file = conn.execute("select _file_id, count(*) from _superseded group by 1").fetchall()
    return _uncount(conn, per_file)


def _publish_events(conn: psycopg.Connection, file_id: int, uri: str) -> tuple[int, int]:
    superseded = _supersede_events(conn, uri)
    months = {
        row[0]
        for row in conn.execute(
            "select distinct date_trunc('month', timestamp at time zone 'UTC')::date "
            "from _stage where _reason is null and type = 'track'"
        )
    }
    schema.ensure_month_partitions(conn, months)
    # event_ids decides which row of each message_id is kept: the first by line here
    # (insert order), and nothing already loaded (on conflict do nothing).
    counts = conn.execute(
        """
        with kept as (
            insert into raw.event_ids (message_id, type, timestamp, _file_id, _line)
            select message_id, type, timestamp, %(fid)s, _line
            from _stage where _reason is null order by _line
            on conflict (message_id) do nothing
            returning _line, type
        ), t as (
            insert into raw.events (message_id, type, event, user_id, anonymous_id, account_id,
                                    timestamp, received_at, properties, context, _file_id, _line)
            select s.message_id, s.type, s.event, s.user_id, s.anonymous_id, s.account_id,
                   s.timestamp, s.received_at, s.body, s.context, %(fid)s, s._line
            from _stage s join kept k on k._line = s._line where k.type = 'track'
            returning 1
        ), i as (
            insert into raw.identifies (message_id, user_id, account_id, timestamp, traits, _file_id, _line)
            select s.message_id, s.user_id, s.account_id, s.timestamp, s.body, %(fid)s, s._line
            from _stage s join kept k on k._line = s._line where k.type = 'identify'
            returning 1
        ), g as (
            insert into raw.groups (message_id, user_id, account_id, timestamp, traits, _file_id, _line)
            select s.message_id, s.user_id, s.account_id, s.timestamp, s.body, %(fid)s, s._line
            from _stage s join kept k on k._line = s._line where k.type = 'group'
            returning 1
        )
        select (select count(*) from t) + (select count(*) from i) + (select count(*) from g)
        """,
        {"fid": file_id},
    ).fetchone()
    return int(counts[0]), superseded


def _keyed_publisher(source: str, table: str, key: str, columns: tuple[str, ...]) -> Callable[[psycopg.Connection, int, str], tuple[int, int]]:
    """Publisher for a table keyed by its own primary key (NPS responses, tickets)."""
    cols = ", ".join(columns)

    def publish(conn: psycopg.Connection, file_id: int, uri: str) -> tuple[int, int]:
        superseded = 0
        if conn.execute(_LATER_FILE_LOADED, (source, uri)).fetchone()[0]:
            per_file = conn.execute(
                f"with d as (delete from raw.{table} t using raw.load_manifest m, _stage s "
                f"where s._reason is null and t.{key} = s.{key} and m.file_id = t._file_id and m.uri > %s "
                f"returning t._file_id) select _file_id, count(*) from d group by 1",
                (uri,),
            ).fetchall()
            superseded = _uncount(conn, per_file)
        cur = conn.execute(
            f"insert into raw.{table} ({cols}, _file_id, _line) "
            f"select {cols}, %s, _line from _stage where _reason is null order by _line "
            f"on conflict ({key}) do nothing",
            (file_id,),
        )
        return cur.rowcount, superseded

    return publish


_SEGMENT_STAGE = (
    "message_id text", "type text", "event text", "user_id text", "anonymous_id text",
    "account_id text", "timestamp timestamptz", "received_at timestamptz", "body jsonb", "context jsonb",
)
_NPS_COLUMNS = ("response_id", "account_id", "user_id", "email", "score", "comment", "responded_at")
_NPS_TYPES = ("text", "text", "text", "text", "int", "text", "timestamptz")
_SUPPORT_COLUMNS = (
    "ticket_id", "account_id", "user_id", "requester_email", "topic", "subject", "status",
    "created_at", "resolved_at",
)
_SUPPORT_TYPES = ("text",) * 7 + ("timestamptz", "timestamptz")

SOURCES: dict[str, SourceSpec] = {
    "events": SourceSpec("events", _SEGMENT_STAGE, _segment_from_line, _publish_events, ("events", "identifies", "groups")),
    "nps": SourceSpec(
        "nps",
        tuple(f"{c} {t}" for c, t in zip(_NPS_COLUMNS, _NPS_TYPES, strict=True)),
        _nps,
        _keyed_publisher("nps", "nps_responses", "response_id", _NPS_COLUMNS),
        ("nps_responses",),
    ),
    "support": SourceSpec(
        "support",
        tuple(f"{c} {t}" for c, t in zip(_SUPPORT_COLUMNS, _SUPPORT_TYPES, strict=True)),
        _support,
        _keyed_publisher("support", "support_tickets", "ticket_id", _SUPPORT_COLUMNS),
        ("support_tickets",),
    ),
}


# --- streaming ----------------------------------------------------------------------


def _preview(rec: RawRecord) -> str:
    raw: Any = rec.data if rec.data is not None else rec.preview
    if raw is None and rec.fields is not None:
        raw = orjson.dumps(rec.fields, default=str)
    if raw is None:
        return ""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    return raw[:PREVIEW_BYTES].decode("utf-8", "replace").replace("\x00", "")


def _records(landed: LandedFile, fobj: IO[bytes], digest: Digest) -> Iterator[RawRecord]:
    if landed.format == "jsonl":
        return iter_lines(fobj, digest, gzipped=landed.gzipped)
    if landed.format == "csv":
        return iter_csv(fobj, digest, gzipped=landed.gzipped)
    return iter_parquet(fobj, digest)


def _row_builder(spec: SourceSpec, landed: LandedFile) -> Callable[[RawRecord, Rules], tuple[Any, ...]]:
    if spec.name == "events" and landed.format != "jsonl":
        return _segment_from_fields
    return spec.rows


def _stream(conn: psycopg.Connection, spec: SourceSpec, landed: LandedFile, rules: Rules, digest: Digest) -> None:
    """COPY every record of the file into ``_stage``: valid rows and rejects alike."""
    build = _row_builder(spec, landed)
    empty = (None,) * len(spec.stage_columns)
    valid_meta = (None, None, None, None)
    with landed.path.open("rb") as fobj, conn.cursor().copy("copy _stage from stdin") as copy:
        write = copy.write_row
        for rec in _records(landed, fobj, digest):
            if rec.error is None:
                try:
                    write((rec.line, *valid_meta, *build(rec, rules)))
                    continue
                except Reject as reject:
                    reason, detail = reject.reason, reject.detail
            else:
                reason, detail = rec.error, rec.detail or rec.error
            write((rec.line, rec.byte_offset, reason, detail, _preview(rec), *empty))


def _recheck(conn: psycopg.Connection, landed: LandedFile, file_id: int, sha256: str) -> FileResult:
    digest = Digest()
    with landed.path.open("rb") as fobj:
        for _ in read_chunks(fobj, digest):
            pass
    if digest.sha256 == sha256:
        return FileResult(landed.uri, "skipped")
    conn.execute(
        "update raw.load_manifest set status = 'changed_after_load', changed_sha256 = %s, "
        "changed_seen_at = now() where file_id = %s",
        (digest.sha256, file_id),
    )
    log.warning(
        "file changed after it was loaded; not re-read: uri=%s loaded_sha256=%s now_sha256=%s. "
        "Land corrected data as a new file, or delete its manifest row and rows to reload it.",
        landed.uri, sha256, digest.sha256,
    )
    return FileResult(landed.uri, "changed")


def load_file(conn: psycopg.Connection, source: str, landed: LandedFile, rules: Rules) -> FileResult:
    """Load one file exactly once (see the module docstring). ``conn`` must be autocommit."""
    spec = SOURCES[source]
    with conn.transaction():
        conn.execute("set local synchronous_commit = off")  # manifest + rows commit or vanish together
        conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (landed.uri,))
        known = conn.execute(
            "select file_id, sha256 from raw.load_manifest where uri = %s", (landed.uri,)
        ).fetchone()
        if known is not None:
            return _recheck(conn, landed, known[0], known[1])
        file_id = conn.execute(
            "insert into raw.load_manifest (source, uri, status) values (%s, %s, 'loading') returning file_id",
            (source, landed.uri),
        ).fetchone()[0]
        conn.execute(f"create temp table _stage ({', '.join(STAGE_META + spec.stage_columns)}) on commit drop")
        digest = Digest()
        _stream(conn, spec, landed, rules, digest)
        loaded, superseded = spec.publish(conn, file_id, landed.uri)
        conn.execute(
            "insert into raw.quarantine (file_id, uri, line, byte_offset, reason, detail, raw) "
            "select %s, %s, _line, _byte_offset, _reason, _detail, _raw from _stage "
            "where _reason is not null order by _line",
            (file_id, landed.uri),
        )
        valid, reasons = 0, Counter()
        for reason, n in conn.execute("select _reason, count(*) from _stage group by 1"):
            if reason is None:
                valid = n
            else:
                reasons[reason] = n
        result = FileResult(
            landed.uri, "loaded", rows_loaded=loaded, duplicates=valid - loaded, superseded=superseded,
            truncated="truncated_gzip" in reasons, quarantined=reasons,
        )
        conn.execute(
            "update raw.load_manifest set size_bytes = %s, sha256 = %s, rows_loaded = %s, "
            "rows_quarantined = %s, rows_duplicate = %s, truncated = %s, status = 'loaded', "
            "loaded_at = now() where file_id = %s",
            (digest.size, digest.sha256, loaded, sum(reasons.values()), result.duplicates, result.truncated, file_id),
        )
    log.info(
        "file loaded: source=%s uri=%s rows=%d duplicates=%d superseded=%d quarantined=%s truncated=%s",
        source, landed.uri, loaded, result.duplicates, superseded, dict(reasons), result.truncated,
    )
    return result


def load_source(
    conn: psycopg.Connection,
    source: str,
    root_uri: str,
    *,
    since: date | None = None,
    until: date | None = None,
    rules: Rules | None = None,
) -> RunResult:
    """Load every file of ``source`` under ``root_uri`` dated in ``[since, until)`` (all if None)."""
    rules = rules or Rules.from_env()
    schema.ensure_schema(conn)
    files = discover(root_uri, source, since, until)
    log.info("load start: source=%s root=%s files=%d since=%s until=%s", source, root_uri, len(files), since, until)
    run = RunResult(source)
    for landed in files:
        run.files.append(load_file(conn, source, landed, rules))
    counts = run.counts()
    log.info("load done: %s", {k: v for k, v in counts.items() if k != "changed_uris"})
    if counts["files_changed"]:
        log.warning("%d file(s) changed after they were loaded: %s", counts["files_changed"], counts["changed_uris"])
    return run
