"""Load landed files into ``raw.*``: one transaction per file, COPY, dedup, quarantine.

Per file, in ONE transaction (so a killed load leaves nothing and a rerun redoes it):

1. look the uri up in ``raw.load_manifest``: same sha256 -> skipped; different ->
   ``status = 'changed_after_load'`` + warning, the file is not re-read; loaded as
   another source -> :class:`~retention.load.landing.LandingError`;
2. stream the file (decompressing, parsing line by line) with ``COPY ... FROM STDIN``,
   so memory stays flat however large the file. Segment events go straight into
   ``raw.events`` with their dedup keys spooled aside (:mod:`retention.load.events`);
   NPS responses and support tickets (small monthly exports) go through a temporary
   staging table, rejected records included with their reason;
3. publish: keep the first row of each key by ``(file uri, line)``; rows whose key is
   already loaded are counted as duplicates and dropped (backfills: see
   :func:`retention.load.events._supersede`);
4. write the rejected records to ``raw.quarantine`` and complete the manifest row.

``workers > 1`` loads that many files at a time, one connection each
(:func:`load_files_parallel`); the CLI and the DAG take the count from
:func:`load_workers`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg

from retention.load import schema
from retention.load.events import load_events
from retention.load.landing import SOURCE_FOLDERS, LandedFile, LandingError, discover
from retention.load.manifest import FileCounts, later_file_loaded, preview, uncount
from retention.load.readers import Digest, RawRecord, iter_csv, iter_lines, read_chunks
from retention.load.records import Reject, Rules, decode_json, nps_row, support_row

log = logging.getLogger(__name__)

DEADLOCK_ATTEMPTS = 3
WORKERS_ENV = "RETENTION_LOAD_WORKERS"
DEFAULT_WORKERS = 2
STAGE_META = ("_line bigint", "_byte_offset bigint", "_reason text", "_detail text", "_raw text")


@dataclass(frozen=True)
class StagedSource:
    """A small keyed export (NPS responses, support tickets) loaded through a staging table."""

    name: str
    table: str
    key: str  # the table's primary key, kept first by (file uri, line)
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: Callable[[RawRecord, Rules], tuple[Any, ...]]  # in ``columns`` order; raises Reject


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


# --- staged sources: NPS responses, support tickets --------------------------------


def _nps(rec: RawRecord, rules: Rules) -> tuple[Any, ...]:
    return nps_row(rec.fields or {}, rules)


def _support(rec: RawRecord, rules: Rules) -> tuple[Any, ...]:
    return support_row(decode_json(rec.data or b""), rules)


STAGED: dict[str, StagedSource] = {
    "nps": StagedSource(
        "nps", "nps_responses", "response_id",
        ("response_id", "account_id", "user_id", "email", "score", "comment", "responded_at"),
        ("text", "text", "text", "text", "int", "text", "timestamptz"),
        _nps,
    ),
    "support": StagedSource(
        "support", "support_tickets", "ticket_id",
        ("ticket_id", "account_id", "user_id", "requester_email", "topic", "subject", "status",
         "created_at", "resolved_at"),
        ("text",) * 7 + ("timestamptz", "timestamptz"),
        _support,
    ),
}


def _stage(conn: psycopg.Connection, spec: StagedSource, landed: LandedFile, rules: Rules, digest: Digest) -> None:
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


def _publish_staged(conn: psycopg.Connection, spec: StagedSource, file_id: int, uri: str) -> tuple[int, int]:
    """Staged rows -> ``raw.<table>``, first by (file uri, line): (loaded, superseded)."""
    cols = ", ".join(spec.columns)
    superseded = 0
    if later_file_loaded(conn, spec.name, uri):
        per_file = conn.execute(
            f"with d as (delete from raw.{spec.table} t using raw.load_manifest m, _stage s "
            f"where s._reason is null and t.{spec.key} = s.{spec.key} and m.file_id = t._file_id and m.uri > %s "
            f"returning t._file_id) select _file_id, count(*) from d group by 1",
            (uri,),
        ).fetchall()
        superseded = uncount(conn, per_file)
    cur = conn.execute(
        f"insert into raw.{spec.table} ({cols}, _file_id, _line) "
        f"select {cols}, %s, _line from _stage where _reason is null order by _line "
        f"on conflict ({spec.key}) do nothing",
        (file_id,),
    )
    return cur.rowcount, superseded


def _load_staged(
    conn: psycopg.Connection, spec: StagedSource, file_id: int, landed: LandedFile, rules: Rules, digest: Digest
) -> FileCounts:
    columns = tuple(f"{c} {t}" for c, t in zip(spec.columns, spec.types, strict=True))
    conn.execute(f"create temp table _stage ({', '.join(STAGE_META + columns)}) on commit drop")
    _stage(conn, spec, landed, rules, digest)
    kept, superseded = _publish_staged(conn, spec, file_id, landed.uri)
    conn.execute(
        "insert into raw.quarantine (file_id, uri, line, byte_offset, reason, detail, raw) "
        "select %s, %s, _line, _byte_offset, _reason, _detail, _raw from _stage "
        "where _reason is not null order by _line",
        (file_id, landed.uri),
    )
    counts = FileCounts(kept=kept, superseded=superseded)
    for reason, n in conn.execute("select _reason, count(*) from _stage group by 1"):
        if reason is None:
            counts.valid = n
        else:
            counts.rejected[reason] = n
    return counts


# --- one file -----------------------------------------------------------------------


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


def _load_file_once(conn: psycopg.Connection, source: str, landed: LandedFile, rules: Rules) -> FileResult:
    with conn.transaction():
        conn.execute("set local synchronous_commit = off")  # manifest + rows commit or vanish together
        conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (landed.uri,))
        known = conn.execute(
            "select file_id, sha256, source from raw.load_manifest where uri = %s", (landed.uri,)
        ).fetchone()
        if known is not None:
            if known[2] != source:
                raise LandingError(
                    f"{landed.uri} is in raw.load_manifest as a {known[2]} file, so it cannot load as {source}: "
                    f"land {source} files under {SOURCE_FOLDERS[source]}/, or delete that manifest row and "
                    f"its rows (file_id {known[0]}) to load the file again"
                )
            return _recheck(conn, landed, known[0], known[1])
        file_id = conn.execute(
            "insert into raw.load_manifest (source, uri, status) values (%s, %s, 'loading') returning file_id",
            (source, landed.uri),
        ).fetchone()[0]
        digest = Digest()
        if source == "events":
            counts = load_events(conn, file_id, landed, rules, digest)
        else:
            counts = _load_staged(conn, STAGED[source], file_id, landed, rules, digest)
        reasons = counts.rejected
        result = FileResult(
            landed.uri, "loaded", rows_loaded=counts.kept, duplicates=counts.valid - counts.kept,
            superseded=counts.superseded, truncated="truncated_gzip" in reasons, quarantined=reasons,
        )
        conn.execute(
            "update raw.load_manifest set size_bytes = %s, sha256 = %s, rows_loaded = %s, "
            "rows_quarantined = %s, rows_duplicate = %s, truncated = %s, status = 'loaded', "
            "loaded_at = now() where file_id = %s",
            (digest.size, digest.sha256, result.rows_loaded, sum(reasons.values()), result.duplicates,
             result.truncated, file_id),
        )
    return result


def load_file(conn: psycopg.Connection, source: str, landed: LandedFile, rules: Rules) -> FileResult:
    """Load one file exactly once (see the module docstring). ``conn`` must be autocommit.

    A deadlock with a concurrent loader (two files sharing message ids, or a month
    partition being created) rolls the whole file back; it is then simply loaded again.
    """
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            result = _load_file_once(conn, source, landed, rules)
            break
        except psycopg.errors.DeadlockDetected:
            if attempt == DEADLOCK_ATTEMPTS:
                raise
            log.warning("deadlock with a concurrent load, retrying: uri=%s attempt=%d", landed.uri, attempt)
    if result.status == "loaded":
        log.info(
            "file loaded: source=%s uri=%s rows=%d duplicates=%d superseded=%d quarantined=%s truncated=%s",
            source, landed.uri, result.rows_loaded, result.duplicates, result.superseded, dict(result.quarantined),
            result.truncated,
        )
    return result


def load_workers(requested: int | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Files loaded at a time by the CLI and the DAG: ``requested``, else
    ``RETENTION_LOAD_WORKERS``, else :data:`DEFAULT_WORKERS`."""
    env = os.environ if environ is None else environ
    value = requested if requested is not None else env.get(WORKERS_ENV) or DEFAULT_WORKERS
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ValueError(f"load workers must be a whole number >= 1, got {value!r} (--workers, {WORKERS_ENV})")
    return workers


def load_source(
    conn: psycopg.Connection,
    source: str,
    root_uri: str,
    *,
    since: date | None = None,
    until: date | None = None,
    rules: Rules | None = None,
    workers: int = 1,
) -> RunResult:
    """Load every file of ``source`` under ``root_uri`` dated in ``[since, until)`` (all if None).

    ``workers > 1`` loads that many files at a time (:func:`load_files_parallel`); the
    rows kept are the same as with one.
    """
    rules = rules or Rules.from_env()
    schema.ensure_schema(conn)
    files = discover(root_uri, source, since, until)
    log.info(
        "load start: source=%s root=%s files=%d since=%s until=%s workers=%d",
        source, root_uri, len(files), since, until, workers,
    )
    run = RunResult(source)
    if workers > 1 and len(files) > 1:
        run.files = load_files_parallel(conn, source, files, rules, workers)
    else:
        run.files = [load_file(conn, source, landed, rules) for landed in files]
    counts = run.counts()
    log.info("load done: %s", {k: v for k, v in counts.items() if k != "changed_uris"})
    if counts["files_changed"]:
        log.warning("%d file(s) changed after they were loaded: %s", counts["files_changed"], counts["changed_uris"])
    return run


def load_files_parallel(
    conn: psycopg.Connection, source: str, files: list[LandedFile], rules: Rules, workers: int
) -> list[FileResult]:
    """Load ``files`` on ``workers`` threads, each with its own connection (like ``conn``'s).

    Each file is still one transaction of its own, so every per-file guarantee holds,
    and the rows kept are those of a one-at-a-time load: a message id two files share
    is serialised by the ``raw.event_ids`` primary key, and the conflict path
    (:func:`retention.load.events._resolve`) makes the earlier file win whichever
    committed first. A deadlock between two loads rolls one file back and loads it
    again (:func:`load_file`). The months of the files' day partitions are created
    first, so workers rarely need partition DDL. Threads suffice: most of the work is
    done by the server backends and by C code that releases the GIL (inflate, socket I/O).
    """
    if source == "events":
        with conn.transaction():
            schema.ensure_month_partitions(conn, {f.first_day.replace(day=1) for f in files if f.first_day is not None})
    local = threading.local()
    opened: list[psycopg.Connection] = []
    lock = threading.Lock()

    def one(landed: LandedFile) -> FileResult:
        worker_conn = getattr(local, "conn", None)
        if worker_conn is None:
            worker_conn = local.conn = psycopg.Connection.connect(
                conn.info.dsn, password=conn.info.password, autocommit=True
            )
            with lock:
                opened.append(worker_conn)
        return load_file(worker_conn, source, landed, rules)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="load")
    try:
        futures = [pool.submit(one, landed) for landed in files]
        return [future.result() for future in futures]
    finally:  # on an error, files not started yet are not loaded (as one at a time)
        pool.shutdown(wait=True, cancel_futures=True)
        for worker_conn in opened:
            worker_conn.close()
