"""Load landed files into ``raw.*``: one transaction per file, COPY, dedup, quarantine.

Per file, in ONE transaction (so a killed load leaves nothing and a rerun redoes it):

1. look the uri up in ``raw.load_manifest``: same sha256 -> skipped; a different one
   (the file changed after it was loaded, e.g. it was read while still being uploaded)
   or a failed earlier attempt -> loaded again, the rows of its earlier version
   removed in the same transaction; loaded as another source ->
   :class:`~retention.load.landing.LandingError`;
2. stream the file with ``COPY ... FROM STDIN``, so memory stays flat however large the
   file: Segment events (:mod:`retention.load.events`), NPS / support exports
   (:mod:`retention.load.exports`);
3. publish: keep the first row of each key by ``(file uri, line)``;
4. write the rejected records to ``raw.quarantine`` and complete the manifest row.

Every file's fate is its own (:func:`load_file`): month partitions a file needs are
created before its transaction, in one of their own; a file Postgres refuses on the
fast path is read again with every check in the client; a file that still cannot be
loaded (unreadable, or refused) is recorded in the manifest as ``failed`` with its
error, and the run goes on. :func:`load_source` then raises :class:`LoadFailed`,
one line per failed file.

``workers > 1`` loads that many files at a time, one connection each
(:func:`load_files_parallel`); the CLI and the DAG take the count from
:func:`load_workers`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg

from retention.load import landed as landed_intervals, schema
from retention.load.events import OTHER_TABLES, MissingPartitions, load_events, lock_keys_exclusive, release_keys
from retention.load.exports import EXPORTS, load_export
from retention.load.landing import (
    RECHECK_DAYS, SOURCE_FOLDERS, LandedFile, LandingError, Seen, discover, landed_file, run_listing, select_files,
)
from retention.load.readers import Digest, read_chunks
from retention.load.records import Rules
from retention.progress import SILENT, Progress

log = logging.getLogger(__name__)

DEADLOCK_ATTEMPTS = 3
PARTITION_ATTEMPTS = 3
WORKERS_ENV = "RETENTION_LOAD_WORKERS"
DEFAULT_WORKERS = 2
ERROR_CHARS = 300
# Errors of the data a file holds (SQLSTATE classes): 22 data exception (a number out of
# range, bad text), 54 program limit exceeded (an index entry too large).
_DATA_ERROR_CLASSES = ("22", "54")


@dataclass
class FileResult:
    uri: str
    status: str  # loaded | reloaded | skipped | failed
    rows_loaded: int = 0
    duplicates: int = 0
    superseded: int = 0
    replaced: int = 0  # rows of the file's earlier version removed (reloaded)
    truncated: bool = False
    late: bool = False
    reread: bool = False  # read again, unchanged, for keys a reloaded file no longer holds
    error: str | None = None
    quarantined: Counter[str] = field(default_factory=Counter)


class LoadFailed(Exception):
    """Some files could not be loaded (the others were). One line per failed file."""

    def __init__(self, run: RunResult) -> None:
        self.run = run
        failed = [f for f in run.files if f.status == "failed"]
        lines = [
            f"{len(failed)} {run.source} file(s) could not be loaded and are in raw.load_manifest with status "
            f"'failed' (the other files loaded; fix these and run again, failed files are retried):"
        ]
        lines += [f"  {f.uri}: {f.error}" for f in failed]
        super().__init__("\n".join(lines))


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
            "files_loaded": statuses["loaded"] + statuses["reloaded"],
            "files_skipped": statuses["skipped"],
            "files_reloaded": sum(f.status == "reloaded" and not f.reread for f in self.files),
            "files_late": sum(f.late for f in self.files),
            "files_reread": sum(f.reread and f.status != "skipped" for f in self.files),
            "files_failed": statuses["failed"],
            "files_truncated": sum(f.truncated for f in self.files),
            "rows_loaded": sum(f.rows_loaded for f in self.files),
            "rows_replaced": sum(f.replaced for f in self.files if not f.reread),
            "duplicates": sum(f.duplicates for f in self.files),
            "superseded": sum(f.superseded for f in self.files),
            "quarantined": dict(sorted(quarantined.items())),
            "reloaded_uris": [f.uri for f in self.files if f.status == "reloaded" and not f.reread],
            "failed_uris": [f.uri for f in self.files if f.status == "failed"],
        }


# --- one file -----------------------------------------------------------------------


def _sha256(landed: LandedFile) -> str:
    digest = Digest()
    with landed.path.open("rb") as fobj:
        for _ in read_chunks(fobj, digest):
            pass
    return digest.sha256


def _key_table(source: str) -> tuple[str, str]:
    """The table that holds the one kept copy of each key of ``source``, and its key column."""
    if source == "events":
        return "raw.event_ids", "message_id"
    return f"raw.{EXPORTS[source].table}", EXPORTS[source].key


def _forget(conn: psycopg.Connection, source: str, file_id: int) -> tuple[int, date | None]:
    """Remove every row of an earlier load of ``file_id`` (to load the file again); return
    how many rows it had kept and the earliest UTC day among them. The keys it kept stay in
    ``_was_kept`` for :func:`_reread_lost_keys`. Events: alone, as the conflict path (see
    :mod:`retention.load.events`)."""
    table, key = _key_table(source)
    if source == "events":
        lock_keys_exclusive(conn)
    time_column = "timestamp" if source == "events" else EXPORTS[source].day
    conn.execute(
        f"create temp table _was_kept on commit drop as select {key} as key, {time_column} as at from {table} "
        "where _file_id = %s",
        (file_id,),
    )
    first_day = conn.execute("select min((at at time zone 'UTC')::date) from _was_kept").fetchone()[0]
    if source != "events":
        removed = conn.execute(f"delete from {table} where _file_id = %s", (file_id,)).rowcount
    else:
        removed = conn.execute("delete from raw.event_ids where _file_id = %s", (file_id,)).rowcount
        conn.execute("delete from raw.events where _file_id = %s", (file_id,))
        for other in OTHER_TABLES.values():
            conn.execute(f"delete from raw.{other} where _file_id = %s", (file_id,))
    conn.execute("delete from raw.quarantine where file_id = %s", (file_id,))
    conn.execute("delete from raw.duplicate_keys where file_id = %s", (file_id,))
    conn.execute("delete from raw.reread_files where file_id = %s", (file_id,))
    return removed, first_day


def _reread_lost_keys(conn: psycopg.Connection, source: str, file_id: int, uri: str) -> None:
    """After a file was loaded again: the keys its earlier version kept that no file
    keeps now had their other copies dropped as duplicates (``raw.duplicate_keys``);
    the files holding those copies are marked to be read again (``raw.reread_files``),
    so the state ends as an in-order load of the files as they are now."""
    table, key = _key_table(source)
    marked = conn.execute(
        f"insert into raw.reread_files (file_id) select distinct d.file_id from _was_kept w "
        f"join raw.duplicate_keys d on d.key = w.key join raw.load_manifest m on m.file_id = d.file_id "
        f"where m.source = %s and d.file_id <> %s and not exists (select 1 from {table} t where t.{key} = w.key) "
        f"returning file_id",
        (source, file_id),
    ).fetchall()
    if marked:
        log.warning(
            "file changed and no longer holds keys that %d other file(s) also hold; those files are read again: "
            "uri=%s", len(marked), uri,
        )


def _load_file_once(
    conn: psycopg.Connection, source: str, landed: LandedFile, rules: Rules, strict: bool
) -> FileResult:
    try:
        return _load_file_transaction(conn, source, landed, rules, strict)
    finally:
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            release_keys(conn)


def _load_file_transaction(
    conn: psycopg.Connection, source: str, landed: LandedFile, rules: Rules, strict: bool
) -> FileResult:
    with conn.transaction():
        conn.execute("set local synchronous_commit = off")  # manifest + rows commit or vanish together
        conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (landed.uri,))
        known = conn.execute(
            "select file_id, sha256, source, status from raw.load_manifest where uri = %s", (landed.uri,)
        ).fetchone()
        replaced, reread, removed_from = 0, False, None
        if known is None:
            file_id = conn.execute(
                "insert into raw.load_manifest (source, uri, status) values (%s, %s, 'loading') returning file_id",
                (source, landed.uri),
            ).fetchone()[0]
        else:
            file_id, old_sha, old_source, old_status = known
            if old_source != source:
                raise LandingError(
                    f"{landed.uri} is in raw.load_manifest as a {old_source} file, so it cannot load as {source}: "
                    f"land {source} files under {SOURCE_FOLDERS[source]}/, or delete that manifest row and "
                    f"its rows (file_id {file_id}) to load the file again"
                )
            marked = conn.execute("select exists (select 1 from raw.reread_files where file_id = %s)", (file_id,))
            reread = old_status != "failed" and _sha256(landed) == old_sha
            if reread and not marked.fetchone()[0]:
                return FileResult(landed.uri, "skipped")
            replaced, removed_from = _forget(conn, source, file_id)
            conn.execute(
                "update raw.load_manifest set status = 'loading' where file_id = %s" if reread else
                "update raw.load_manifest set status = 'loading', replaced_sha256 = coalesce(sha256, replaced_sha256), "
                "reloaded_at = now(), changed_sha256 = null, changed_seen_at = null where file_id = %s",
                (file_id,),
            )
        digest = Digest()
        if source == "events":
            counts = load_events(conn, file_id, landed, rules, digest, strict=strict)
        else:
            counts = load_export(conn, source, file_id, landed, rules, digest)
        if known is not None:
            _reread_lost_keys(conn, source, file_id, landed.uri)
        # the earliest day whose rows this file added or removed: the product models' next run starts there
        landed_intervals.record_changed(conn, source, min(filter(None, (counts.first_day, removed_from)), default=None))
        reasons = counts.rejected
        result = FileResult(
            landed.uri, "loaded" if known is None else "reloaded", reread=known is not None and reread,
            rows_loaded=counts.kept,
            duplicates=counts.valid - counts.kept, superseded=counts.superseded, replaced=replaced,
            truncated="truncated_gzip" in reasons, quarantined=reasons,
        )
        conn.execute(
            "update raw.load_manifest set size_bytes = %s, sha256 = %s, rows_loaded = %s, "
            "rows_quarantined = %s, rows_duplicate = %s, truncated = %s, status = 'loaded', "
            "loaded_at = now(), error = null, failed_at = null where file_id = %s",
            (digest.size, digest.sha256, result.rows_loaded, sum(reasons.values()), result.duplicates,
             result.truncated, file_id),
        )
    return result


def _month_window(landed: LandedFile) -> set[date]:
    """The month of a Segment day folder (created before its load; rows of other months
    make the load stop and create theirs, :class:`MissingPartitions`)."""
    day = landed.first_day
    return {day.replace(day=1)} if day is not None and day == landed.last_day else set()


def _load_with_retries(conn: psycopg.Connection, source: str, landed: LandedFile, rules: Rules) -> FileResult:
    """The file's transaction, again after what can be dealt with: a deadlock with a
    concurrent load, months that need partitions first (created in their own short
    transaction), or data Postgres refused on the fast path (then read in ``strict``)."""
    if source == "events":
        schema.ensure_month_partitions(conn, _month_window(landed))
    strict = False
    deadlocks = partitions = 0
    while True:
        try:
            return _load_file_once(conn, source, landed, rules, strict)
        except psycopg.errors.DeadlockDetected:
            deadlocks += 1
            if deadlocks >= DEADLOCK_ATTEMPTS:
                raise
            log.warning("deadlock with a concurrent load, retrying: uri=%s attempt=%d", landed.uri, deadlocks)
        except MissingPartitions as missing:
            partitions += 1
            if partitions > PARTITION_ATTEMPTS:
                raise
            log.info("file needs month partitions %s: created, loading it again: uri=%s", missing, landed.uri)
            schema.ensure_month_partitions(conn, missing.months)
        except psycopg.Error as exc:
            if strict or source != "events" or (exc.sqlstate or "")[:2] not in _DATA_ERROR_CLASSES:
                raise
            strict = True
            log.warning(
                "Postgres refused a value in the file (%s): reading it again with every check in the client: uri=%s",
                _one_line(exc), landed.uri,
            )


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message``: no values (Postgres puts them in DETAIL/CONTEXT)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:ERROR_CHARS]


def _record_failure(conn: psycopg.Connection, source: str, landed: LandedFile, error: str) -> None:
    with conn.transaction():
        conn.execute(
            "insert into raw.load_manifest (source, uri, status, error, failed_at) "
            "values (%s, %s, 'failed', %s, now()) on conflict (uri) do update "
            "set status = 'failed', error = excluded.error, failed_at = now()",
            (source, landed.uri, error),
        )


def load_file(conn: psycopg.Connection, source: str, landed: LandedFile, rules: Rules) -> FileResult:
    """Load one file exactly once (see the module docstring). ``conn`` must be autocommit.

    A file that cannot be loaded is recorded as ``failed`` (with its error) and
    returned as such; only a lost connection or a landing error stops the run.
    """
    try:
        result = _load_with_retries(conn, source, landed, rules)
    except (LandingError, psycopg.OperationalError, psycopg.InterfaceError):
        raise
    except Exception as exc:  # noqa: BLE001 - any other error belongs to this file only
        error = _one_line(exc)
        log.error("file not loaded: source=%s uri=%s error=%s", source, landed.uri, error)
        _record_failure(conn, source, landed, error)
        return FileResult(landed.uri, "failed", error=error)
    if result.status != "skipped":
        log.info(
            "file %s: source=%s uri=%s rows=%d duplicates=%d superseded=%d replaced=%d quarantined=%s truncated=%s",
            result.status, source, landed.uri, result.rows_loaded, result.duplicates, result.superseded,
            result.replaced, dict(result.quarantined), result.truncated,
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


def _seen(conn: psycopg.Connection, source: str) -> dict[str, Seen]:
    rows = conn.execute(
        "select uri, size_bytes, status, truncated, loaded_at > now() - make_interval(days => %s) "
        "from raw.load_manifest where source = %s",
        (RECHECK_DAYS, source),
    )
    return {uri: Seen(size, status, truncated, recent) for uri, size, status, truncated, recent in rows}


def load_source(
    conn: psycopg.Connection,
    source: str,
    root_uri: str,
    *,
    since: date | None = None,
    until: date | None = None,
    rules: Rules | None = None,
    workers: int = 1,
    progress: Progress = SILENT,
) -> RunResult:
    """Load the files of ``source`` under ``root_uri`` for the days ``[since, until)``
    (all if None), plus late ones (:func:`retention.load.landing.select_files`).

    ``workers > 1`` loads that many files at a time (:func:`load_files_parallel`); the
    rows kept are the same as with one. Raises :class:`LoadFailed` at the end when a
    file could not be loaded. ``progress`` hears of each file done (the CLI's bars).
    With ``until``, a load without failed files records it (:mod:`retention.load.landed`).
    """
    rules = rules or Rules()
    schema.ensure_schema(conn)
    seen = _seen(conn, source)
    listing = run_listing(seen, since, until)
    files, late = select_files(discover(root_uri, source, listing.skip_day, listing.settled), seen, since, until)
    for landed in late:
        log.warning(
            "late file: dated %s, before the run's days, and not loaded as it is now (new, failed, or its size "
            "changed): %s", landed.first_day, landed.uri,
        )
    log.info(
        "load start: source=%s root=%s files=%d late=%d since=%s until=%s workers=%d",
        source, root_uri, len(files), len(late), since, until, workers,
    )
    run = RunResult(source)
    progress.start(f"load {source}", total=len(files), unit="files")
    if workers > 1 and len(files) > 1:
        run.files = load_files_parallel(conn, source, files, rules, workers, progress)
    else:
        run.files = []
        for landed in files:
            run.files.append(load_file(conn, source, landed, rules))
            progress.advance(1, rows=run.files[-1].rows_loaded)
    late_uris = {f.uri for f in late}
    for result in run.files:
        result.late = result.uri in late_uris and result.status != "skipped"
    _load_rereads(conn, source, rules, run)
    counts = run.counts()
    log.info("load done: %s", {k: v for k, v in counts.items() if not k.endswith("_uris")})
    if counts["files_failed"]:
        raise LoadFailed(run)
    if until is not None:  # every file of the days before `until` is in (retention.load.landed)
        landed_intervals.record(conn, source, until)
    return run


def _load_rereads(conn: psycopg.Connection, source: str, rules: Rules, run: RunResult) -> None:
    """Load the files marked in ``raw.reread_files`` (by this run or one that stopped
    before it got to them), whatever their dates, each once per run; their results
    replace those of the same files in ``run``."""
    tried: set[str] = set()
    position = {f.uri: i for i, f in enumerate(run.files)}
    while True:
        uris = [uri for (uri,) in conn.execute(
            "select distinct m.uri from raw.reread_files r join raw.load_manifest m on m.file_id = r.file_id "
            "where m.source = %s order by 1", (source,),
        ) if uri not in tried]
        if not uris:
            return
        for uri in uris:
            tried.add(uri)
            result = load_file(conn, source, landed_file(uri, source), rules)
            if uri in position:
                run.files[position[uri]] = result
            else:
                position[uri] = len(run.files)
                run.files.append(result)


def load_files_parallel(
    conn: psycopg.Connection, source: str, files: list[LandedFile], rules: Rules, workers: int,
    progress: Progress = SILENT,
) -> list[FileResult]:
    """Load ``files`` on ``workers`` threads, each with its own connection (like ``conn``'s).

    Each file is still one transaction of its own, so every per-file guarantee holds,
    and the rows kept are those of a one-at-a-time load: a message id two files share
    is serialised by the ``raw.event_ids`` primary key, and the conflict path
    (:func:`retention.load.events._resolve`) makes the earlier file win whichever
    committed first. Every path takes the keys in one order (see
    :mod:`retention.load.events`), so loads sharing ids cannot deadlock. The months of
    the files' day partitions are created first. Threads suffice: most of the work is
    done by the server backends and by C code that releases the GIL (inflate, socket I/O).
    """
    if source == "events":
        schema.ensure_month_partitions(conn, set().union(*(_month_window(f) for f in files)))
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
        result = load_file(worker_conn, source, landed, rules)
        progress.advance(1, rows=result.rows_loaded)
        return result

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="load")
    try:
        futures = [pool.submit(one, landed) for landed in files]
        return [future.result() for future in futures]
    finally:  # on an error, files not started yet are not loaded (as one at a time)
        pool.shutdown(wait=True, cancel_futures=True)
        for worker_conn in opened:
            worker_conn.close()
