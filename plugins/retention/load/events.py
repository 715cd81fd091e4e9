"""Segment event files -> ``raw.events`` (track) and ``raw.pages`` / ``raw.screens`` /
``raw.identifies`` / ``raw.groups``, in one pass.

Runs inside the caller's per-file transaction (:func:`retention.load.loader.load_file`).
The bulk of a file (``track`` rows) is written once: validated rows are formatted as
COPY text in Python and streamed straight into ``raw.events``. What dedup needs is
small and goes to spools (in memory while small, then temporary files) on the side:

* ``ids``: ``message_id, type, timestamp, line, account_id`` of every valid row;
* ``others``: the page / screen / identify / group rows (a few % of a Segment log);
* ``rejects``: quarantine rows with their reason, line and byte offset.

Then, on the server: when none of the ids is known yet (the usual case, also while
other files load at the same time or in a backfill that shares no id) they are
COPYed straight into ``raw.event_ids``, in key order, and every streamed row stays. Otherwise (a
unique violation: a duplicate in the file, or an id an earlier or a later file holds)
that is undone, the ids go to a temporary table and the first line of each is
inserted with ``on conflict do nothing``, so the first row by (file uri, line) wins
(:func:`_resolve`, which also supersedes the rows of a later file and handles loads of
other files running at the same time), and the track rows not kept are deleted again
from ``raw.events`` by ``(account_id, timestamp, _file_id, _line)``, which the
``(account_id, timestamp)`` index finds.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import UTC, date, datetime
from typing import IO, Any

import orjson
import psycopg

from retention.load import schema
from retention.load.landing import LandedFile
from retention.load.manifest import FileCounts, later_file_loaded, preview, uncount
from retention.load.readers import Digest, LineBatch, RawRecord, iter_csv, iter_line_batches, iter_parquet
from retention.load.records import Reject, Rules, decode_json, flat_to_segment, has_nul, segment_row, track_row

SPOOL_MEMORY_BYTES = 8 << 20  # a spool moves to a temporary file beyond this
WRITE_BYTES = 256 << 10  # COPY data is sent in pieces of about this size (docs/ingestion.md)

# COPY text format with ``null ''``: validation turns empty strings into absent fields,
# so an empty field can only mean NULL, and a clean row holds no backslash at all.
_EVENTS_COPY = (
    "copy raw.events (message_id, type, event, user_id, anonymous_id, account_id, timestamp, "
    "received_at, properties, context, _file_id, _line, received_at_source) from stdin (null '')"
)
_EVENT_SEPARATORS = 12
# Message types other than track, kept in ``raw.<table>`` (the ``others`` spool).
OTHER_TABLES = {"identify": "identifies", "group": "groups", "page": "pages", "screen": "screens"}
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")


def copy_text(value: str | None) -> str:
    """``value`` as one field of COPY text format with ``null ''``."""
    if value is None:
        return ""
    if _NEEDS_ESCAPE.search(value) is None:
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _is_clean(piece: str, separators: int) -> bool:
    """Whether a COPY line built without escaping is right as it is: no backslash or
    carriage return, one newline at the end, and only the tabs it was built with.
    orjson escapes every control character in JSON, so only text fields can break it."""
    return (
        "\\" not in piece and "\r" not in piece and piece.count("\t") == separators
        and piece.index("\n") == len(piece) - 1
    )


class Spool:
    """COPY text lines kept for later: in memory while small, then in a temporary file."""

    def __init__(self) -> None:
        self.rows = 0
        self._lines: list[bytes] | None = []  # None once spilled to ``_file``
        self._bytes = 0
        self._file: IO[bytes] | None = None

    def write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        self.rows += len(lines)
        if self._lines is None:
            self._file.write(b"".join(lines))  # type: ignore[union-attr]
            return
        self._lines.extend(lines)
        self._bytes += sum(map(len, lines))
        if self._bytes > SPOOL_MEMORY_BYTES:
            self._file = tempfile.TemporaryFile()
            self._file.write(b"".join(self._lines))
            self._lines = None

    def in_memory(self) -> bool:
        return self._lines is not None

    def copy_into(self, conn: psycopg.Connection, statement: str, *, key_order: bool = False) -> None:
        """COPY the lines with ``statement``; ``key_order``: sorted by their first field as
        ``collate "C"`` sorts it (in memory only, see :func:`_copy_all`)."""
        with conn.cursor().copy(statement) as copy:
            if self._lines is not None:
                lines = sorted(self._lines, key=_first_field) if key_order else self._lines
                for i in range(0, len(lines), 2048):
                    copy.write(b"".join(lines[i:i + 2048]))
                return
            self._file.seek(0)  # type: ignore[union-attr]
            while data := self._file.read(WRITE_BYTES):  # type: ignore[union-attr]
                copy.write(data)

    def close(self) -> None:
        self._lines = []
        if self._file is not None:
            self._file.close()


_COPY_UNESCAPE = re.compile(rb"\\(.)")
_COPY_CHARS = {b"t": b"\t", b"n": b"\n", b"r": b"\r", b"\\": b"\\"}


def _first_field(line: bytes) -> bytes:
    """The first field of a COPY text line, unescaped: its bytes sort as ``collate "C"``."""
    field = line[: line.index(b"\t")]
    if b"\\" in field:
        field = _COPY_UNESCAPE.sub(lambda m: _COPY_CHARS.get(m[1], m[1]), field)
    return field


class MissingPartitions(Exception):
    """Rows of the file need month partitions that do not exist yet (created outside the
    file's transaction, then the file is loaded again: :func:`retention.load.loader.load_file`)."""

    def __init__(self, months: set[date]) -> None:
        super().__init__(", ".join(sorted(m.isoformat()[:7] for m in months)))
        self.months = months


class _EventStream:
    """The COPY into ``raw.events`` plus the three spools of one file.

    A row for a month without a partition is not written: the month is noted
    (``missing``), and the file ends in :class:`MissingPartitions` once read.
    """

    def __init__(self, conn: psycopg.Connection, file_id: int, uri: str) -> None:
        self.conn = conn
        self.file_id = file_id
        self.ids, self.others, self.rejects = Spool(), Spool(), Spool()
        self.rejected: Counter[str] = Counter()
        self.missing: set[date] = set()
        self._months = schema.month_partitions(conn)
        self._month_start = self._month_end = datetime.min.replace(tzinfo=UTC)  # of the last row
        self.first_ts = datetime.max.replace(tzinfo=UTC)  # the earliest valid row's time
        self._reject_head = f"{file_id}\t{copy_text(uri)}\t"
        self._id_tail = f"\t{file_id}\n"
        self._open_copy = ExitStack()  # the COPY in progress, if any
        self._copy: psycopg.Copy | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    # -- rows --------------------------------------------------------------------

    def add(self, row: tuple[Any, ...], line: int, ids: list[bytes], others: list[bytes], clean: bool = False) -> None:
        """Format one validated row (see :func:`records.segment_row`) as COPY text.

        ``clean``: the JSON line it came from has no backslash, tab or carriage return.
        JSON strings cannot hold raw control characters, so then no field (nor the JSON
        text of ``properties`` / ``context``) holds a tab, newline, carriage return or
        backslash: the line is right without escaping. Otherwise it is checked
        (:func:`_is_clean`)."""
        mid, kind, event, user_id, anonymous_id, account_id, ts, ts_text, received_text, body, context, source = row
        if ts < self.first_ts:
            self.first_ts = ts
        if kind != "track":
            mid, account_id = copy_text(mid), copy_text(account_id)
            ids.append(f"{mid}\t{kind}\t{ts_text}\t{line}\t{account_id}{self._id_tail}".encode())
            others.append(
                f"{kind}\t{mid}\t{copy_text(user_id)}\t{copy_text(anonymous_id)}\t{account_id}\t{ts_text}\t"
                f"{received_text}\t{source or ''}\t{copy_text(event)}\t{line}\t{copy_text(body)}\t"
                f"{copy_text(context)}\n".encode()
            )
            return
        if not self._month_start <= ts < self._month_end and not self._enter_month(ts):
            return
        piece = (
            f"{mid}\ttrack\t{event}\t{user_id or ''}\t{anonymous_id or ''}\t{account_id}\t{ts_text}\t"
            f"{received_text}\t{body}\t{context}\t{self.file_id}\t{line}\t{source or ''}\n"
        )
        if not clean and not _is_clean(piece, _EVENT_SEPARATORS):
            mid, account_id = copy_text(mid), copy_text(account_id)
            fields = (
                mid, "track", copy_text(event), copy_text(user_id), copy_text(anonymous_id), account_id,
                ts_text, received_text, copy_text(body), copy_text(context),
                str(self.file_id), str(line), source or "",
            )
            piece = "\t".join(fields) + "\n"
        ids.append(f"{mid}\ttrack\t{ts_text}\t{line}\t{account_id}{self._id_tail}".encode())
        data = piece.encode()
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= WRITE_BYTES:
            self._flush()

    def reject(self, line: int, offset: int | None, reason: str, detail: str, raw: bytes | str | None) -> None:
        self.rejected[reason] += 1
        self.rejects.write([
            f"{self._reject_head}{line}\t{'' if offset is None else offset}\t{reason}\t"
            f"{copy_text(detail)}\t{copy_text(preview(raw))}\n".encode()
        ])

    def _enter_month(self, ts: datetime) -> bool:
        """Whether the UTC month of ``ts`` has its partition (then remember its bounds);
        otherwise note the month as missing."""
        utc = ts.astimezone(UTC)
        start = datetime(utc.year, utc.month, 1, tzinfo=UTC)
        if (utc.year, utc.month) not in self._months:
            self.missing.add(start.date())
            return False
        end = datetime(utc.year + utc.month // 12, utc.month % 12 + 1, 1, tzinfo=UTC)
        self._month_start, self._month_end = start, end
        return True

    # -- the COPY into raw.events ------------------------------------------------

    def _flush(self) -> None:
        if not self._pending:
            return
        if self._copy is None:
            self._copy = self._open_copy.enter_context(self.conn.cursor().copy(_EVENTS_COPY))
        self._copy.write(b"".join(self._pending))
        self._pending.clear()
        self._pending_bytes = 0

    def end_copy(self) -> None:
        """Send what is pending and finish the COPY (the server checks every row here)."""
        self._flush()
        self._copy = None
        self._open_copy.close()

    def __enter__(self) -> _EventStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Spools go; a COPY still open on an error is ended with that error (COPY fail)."""
        try:
            self._open_copy.__exit__(*exc_info)
        finally:
            for spool in (self.ids, self.others, self.rejects):
                spool.close()


# --- reading ----------------------------------------------------------------------


def _stream_json_lines(
    stream: _EventStream, batches: Iterable[LineBatch | RawRecord], rules: Rules, *, strict: bool = False
) -> None:
    """JSON Lines, the hot loop: valid track messages take :func:`records.track_row`,
    every other line (other types, or one with a problem) :func:`segment_row`; with
    ``strict`` every line takes :func:`segment_row`, whose ``orjson`` parse checks every
    number and escape and writes the JSON again. Blank lines are skipped. A raw NUL byte
    is not valid JSON, so only lines with a backslash need the look for an escaped one."""
    loads, decode_error, add = orjson.loads, orjson.JSONDecodeError, stream.add
    fast = None if strict else track_row
    for batch in batches:
        if isinstance(batch, RawRecord):  # the gzip stream is damaged: the rest is lost
            stream.reject(batch.line, batch.byte_offset, batch.error or "truncated_gzip", batch.detail or "", batch.preview)
            continue
        ids: list[bytes] = []
        others: list[bytes] = []
        line = batch.first_line - 1
        for raw in batch.lines:
            line += 1
            try:
                escaped = b"\\" in raw
                if escaped and has_nul(raw):
                    raise Reject("invalid_utf8", "NUL character, which Postgres text cannot store")
                clean = not escaped and b"\t" not in raw and b"\r" not in raw
                row = fast(raw, rules) if fast is not None else None
                if row is None:
                    try:
                        msg = loads(raw)
                    except decode_error:
                        if not raw or raw.isspace():
                            continue
                        msg = decode_json(raw)  # raises the precise reason
                    row = segment_row(msg, rules)
                add(row, line, ids, others, clean)
            except Reject as reject:
                stream.reject(line, batch.offset_of(line), reject.reason, reject.detail, raw)
        stream.ids.write(ids)
        stream.others.write(others)


def _stream_rows(stream: _EventStream, records: Iterable[RawRecord], rules: Rules) -> None:
    """CSV / Parquet event rows (Segment field names as columns)."""
    for rec in records:
        ids: list[bytes] = []
        others: list[bytes] = []
        try:
            if rec.error is not None:
                raise Reject(rec.error, rec.detail or rec.error)
            stream.add(segment_row(flat_to_segment(rec.fields or {}), rules), rec.line, ids, others)
        except Reject as reject:
            raw: Any = rec.preview
            if raw is None and rec.fields is not None:
                raw = orjson.dumps(rec.fields, default=str)
            stream.reject(rec.line, rec.byte_offset, reject.reason, reject.detail, raw)
        stream.ids.write(ids)
        stream.others.write(others)


# --- publishing -------------------------------------------------------------------
#
# No deadlock between any number of concurrent loads: the straight COPY of a file's keys
# (:func:`_copy_all`, the usual case) takes them in ``message_id`` order ("C" collation,
# i.e. bytes), so two such loads can wait for each other's keys only one way; it holds
# the advisory lock :data:`KEYS_LOCK` shared (session-level, released once its
# transaction ends: :func:`release_keys`). Everything that deletes or takes over keys of
# other files (the conflict path :func:`_resolve`, and reloading a changed file) holds
# the same lock exclusive, i.e. runs alone, after the straight COPYs in flight have
# committed. A load waiting for the lock holds no key.
KEYS_LOCK = 0x72657469  # "reti"


def release_keys(conn: psycopg.Connection) -> None:
    """End the shared hold of :data:`KEYS_LOCK` (after the file's transaction ended)."""
    conn.execute("select pg_advisory_unlock_shared(%s) from pg_locks where locktype = 'advisory' "
                 "and pid = pg_backend_pid() and mode = 'ShareLock' and objid = %s", (KEYS_LOCK, KEYS_LOCK))


def lock_keys_exclusive(conn: psycopg.Connection) -> None:
    """Hold :data:`KEYS_LOCK` exclusive until the transaction ends (and no more shared)."""
    release_keys(conn)
    conn.execute("select pg_advisory_xact_lock(%s)", (KEYS_LOCK,))


def _supersede(conn: psycopg.Connection, uri: str) -> tuple[int, datetime | None]:
    """Backfill: drop kept messages of ``_ids`` that came from a file sorting after ``uri``.

    Loading files in uri order keeps the first row by (file uri, line). When an earlier
    file arrives after later ones were loaded (a backfill), its rows win over theirs, so
    the outcome is the same whatever order the files were loaded in. Counted from the
    rows this transaction deleted, so a row another load superseded first is not counted
    twice. Returns that count and the earliest time among the rows dropped (their day
    changed too, if a later copy carried another time than the kept one).
    """
    conn.execute(
        "create temp table _superseded on commit drop as "
        "select e.message_id, e.type, e.timestamp, e._file_id, e._line from raw.event_ids e "
        "join _ids s on s.message_id = e.message_id "
        "join raw.load_manifest m on m.file_id = e._file_id where m.uri > %s",
        (uri,),
    )
    conn.execute(
        "select 1 from raw.event_ids e join _superseded x on x.message_id = e.message_id "
        "and x._file_id = e._file_id order by e.message_id for update of e"
    )
    per_file = conn.execute(
        "with gone as (delete from raw.event_ids e using _superseded x "
        "where e.message_id = x.message_id and e._file_id = x._file_id returning e.message_id, e._file_id, e._line), "
        "noted as (insert into raw.duplicate_keys (key, file_id, line) select message_id, _file_id, _line from gone) "
        "select _file_id, count(*) from gone group by 1 order by 1"
    ).fetchall()
    conn.execute(
        "delete from raw.events e using _superseded x where x.type = 'track' "
        "and e.message_id = x.message_id and e.timestamp = x.timestamp and e._file_id = x._file_id"
    )
    for kind, table in OTHER_TABLES.items():
        conn.execute(
            f"delete from raw.{table} e using _superseded x where x.type = %s "
            "and e.message_id = x.message_id and e._file_id = x._file_id",
            (kind,),
        )
    return uncount(conn, per_file), conn.execute("select min(timestamp) from _superseded").fetchone()[0]


RESOLVE_ROUNDS = 5
_HELD_BY_LATER_FILE = (
    "select exists (select 1 from _ids i join raw.event_ids e on e.message_id = i.message_id "
    "join raw.load_manifest m on m.file_id = e._file_id where m.uri > %s)"
)


class _LostToLaterFile(Exception):
    """A later file committed one of this file's ids while this file was inserting it."""


def _ids_table(conn: psycopg.Connection, stream: _EventStream) -> None:
    """The file's keys in the temporary table ``_ids`` (once per file)."""
    if conn.execute("select to_regclass('pg_temp._ids') is null").fetchone()[0]:
        conn.execute(
            'create temp table _ids (message_id text collate "C", type text, timestamp timestamptz, _line bigint, '
            "account_id text, _file_id bigint) on commit drop"
        )
        stream.ids.copy_into(conn, "copy _ids from stdin (null '')")


def _resolve(conn: psycopg.Connection, stream: _EventStream, uri: str) -> int:
    """The conflict path: keep the first row of each id by (file uri, line); return superseded.

    Loads running at the same time (``workers``) can commit a later file's copy of an id
    while this one waits for it; then that id is lost to the later file. So the step is
    redone (in a savepoint) until no id of this file is held by a later file: each round
    sees the commits that made the previous one wait.
    """
    lock_keys_exclusive(conn)
    _ids_table(conn, stream)
    for _ in range(RESOLVE_ROUNDS):
        try:
            with conn.transaction():
                superseded, earliest = _supersede(conn, uri) if later_file_loaded(conn, "events", uri) else (0, None)
                if earliest is not None and earliest < stream.first_ts:
                    stream.first_ts = earliest
                _keep_first(conn, stream.file_id)
                if conn.execute(_HELD_BY_LATER_FILE, (uri,)).fetchone()[0]:
                    raise _LostToLaterFile
            return superseded
        except _LostToLaterFile:
            continue
    raise RuntimeError(f"{uri}: ids kept changing hands with concurrent loads for {RESOLVE_ROUNDS} rounds; load it again")

_ID_COLUMNS = "message_id, type, timestamp, _line, account_id, _file_id"  # the ``ids`` spool's lines


def _copy_all(conn: psycopg.Connection, stream: _EventStream) -> bool:
    """The usual case: no id of the file is known yet. Insert them all into
    ``raw.event_ids`` in key order (sorted in memory and COPYed; a spilled spool
    through ``_ids``); False (and nothing written) on a conflict."""
    conn.execute("select pg_advisory_lock_shared(%s)", (KEYS_LOCK,))
    try:
        with conn.transaction():  # a savepoint: a known id undoes only this step
            if stream.ids.in_memory():
                stream.ids.copy_into(conn, f"copy raw.event_ids ({_ID_COLUMNS}) from stdin (null '')", key_order=True)
            else:
                _ids_table(conn, stream)
                conn.execute(f"insert into raw.event_ids ({_ID_COLUMNS}) select {_ID_COLUMNS} from _ids order by message_id")
        return True
    except psycopg.errors.UniqueViolation:
        return False


def _keep_first(conn: psycopg.Connection, file_id: int) -> None:
    """Insert the first line of each id of ``_ids`` unless the id is kept already.

    Inserted in key order, so concurrent loads sharing ids take them in the same order.
    ``_dropped`` gets the rows not kept (noted in ``raw.duplicate_keys``), and their
    track rows leave ``raw.events``.
    """
    conn.execute(
        "create temp table _dropped (message_id text, _line bigint, type text, timestamp timestamptz, "
        "account_id text) on commit drop"
    )
    conn.execute(
        f"with kept as (insert into raw.event_ids ({_ID_COLUMNS}) "
        f"select distinct on (message_id) {_ID_COLUMNS} from _ids "
        "order by message_id, _line on conflict (message_id) do nothing returning _line) "
        "insert into _dropped select i.message_id, i._line, i.type, i.timestamp, i.account_id from _ids i "
        "where not exists (select 1 from kept k where k._line = i._line)"
    )
    conn.execute(
        "insert into raw.duplicate_keys (key, file_id, line) select message_id, %s, _line from _dropped", (file_id,)
    )
    conn.execute("analyze _dropped")
    conn.execute(
        "delete from raw.events e using _dropped d where d.type = 'track' and e.account_id = d.account_id "
        "and e.timestamp = d.timestamp and e._file_id = %s and e._line = d._line",
        (file_id,),
    )


_OTHER_COLUMNS = {
    "identifies": "message_id, user_id, account_id, timestamp, traits",
    "groups": "message_id, user_id, account_id, timestamp, traits",
    "pages": "message_id, user_id, anonymous_id, account_id, name, timestamp, received_at, received_at_source, "
    "properties, context",
}
_OTHER_COLUMNS["screens"] = _OTHER_COLUMNS["pages"]


def _publish(conn: psycopg.Connection, stream: _EventStream, uri: str) -> tuple[int, int]:
    """Dedup through ``raw.event_ids`` and write the other types' rows: (kept, superseded)."""
    if not stream.ids.rows:
        return 0, 0
    superseded = dropped = 0
    if not _copy_all(conn, stream):  # a duplicate, or an id another file holds
        superseded = _resolve(conn, stream, uri)
        dropped = conn.execute("select count(*) from _dropped").fetchone()[0]
    if stream.others.rows:
        conn.execute(
            "create temp table _others (type text, message_id text, user_id text, anonymous_id text, "
            "account_id text, timestamp timestamptz, received_at timestamptz, received_at_source text, "
            "name text, _line bigint, body jsonb, context jsonb) on commit drop"
        )
        stream.others.copy_into(conn, "copy _others from stdin (null '')")
        not_dropped = "and not exists (select 1 from _dropped d where d._line = t._line)" if dropped else ""
        for kind, table in OTHER_TABLES.items():
            columns = _OTHER_COLUMNS[table]
            values = columns.replace("traits", "body").replace("properties", "body")
            conn.execute(
                f"insert into raw.{table} ({columns}, _file_id, _line) "
                f"select {values}, %s, _line from _others t where t.type = %s {not_dropped} order by message_id",
                (stream.file_id, kind),
            )
    return stream.ids.rows - dropped, superseded


def load_events(
    conn: psycopg.Connection, file_id: int, landed: LandedFile, rules: Rules, digest: Digest, *, strict: bool = False
) -> FileCounts:
    """Stream one event file into the raw tables (inside the caller's transaction).

    ``strict``: every JSON line through the full validation (see :func:`_stream_json_lines`),
    for a file whose fast load Postgres refused. Raises :class:`MissingPartitions` when
    rows need months without a partition (nothing of theirs written).
    """
    with _EventStream(conn, file_id, landed.uri) as stream:
        with landed.path.open("rb") as fobj:
            if landed.format == "jsonl":
                _stream_json_lines(stream, iter_line_batches(fobj, digest, gzipped=landed.gzipped), rules, strict=strict)
            elif landed.format == "csv":
                _stream_rows(stream, iter_csv(fobj, digest, gzipped=landed.gzipped), rules)
            else:
                _stream_rows(stream, iter_parquet(fobj, digest), rules)
        if stream.missing:
            raise MissingPartitions(stream.missing)
        stream.end_copy()
        kept, superseded = _publish(conn, stream, landed.uri)
        if stream.rejects.rows:
            stream.rejects.copy_into(
                conn, "copy raw.quarantine (file_id, uri, line, byte_offset, reason, detail, raw) from stdin (null '')"
            )
        first_day = stream.first_ts.astimezone(UTC).date() if stream.ids.rows else None
        return FileCounts(stream.ids.rows, kept, superseded, stream.rejected, first_day)
