"""The sync engine: one function per run, called by the ``sync_segments`` DAG and the CLI.

:func:`run_sync` for one sync, in this order:

1. **Lock:** a session advisory lock per sync name; a second concurrent run stops at once
   with :class:`SyncLocked` (it never waits to send the same changes twice).
2. **Publication:** the source must be what ``transform_dbt`` published after its gates
   passed (:func:`retention.sync.publication.check`); otherwise one line, nothing sent.
3. **Diff** in the warehouse (:mod:`retention.sync.diff`), in one ``REPEATABLE READ``
   snapshot of the source and the state.
4. **Safety:** a source that is empty while the state holds members halts (even forced:
   nothing is removed); adds + removes above ``max_change_pct`` of the members (and at
   least ``min_change_count``) halt unless forced. The first run of a sync is its baseline
   and never trips the threshold. A dry run stops here and writes nothing.
5. **Send** the changes in batches (at most the adapter's ``max_batch``). After each
   batch, one transaction advances ``sync_state`` for the rows the destination confirmed,
   records the attempt of those it did not (retried next run; they never block others)
   and writes one ``sync_log`` row per record.
6. **Finish:** the run's counts in ``sync_runs``; ``sync_log`` pruned.

Exactly once: every change carries a delivery id, ``uuid5(sync, key, generation, action,
payload hash)``, where ``generation`` counts the key's confirmed changes. A retried or
rerun change keeps its id; a new change gets a new one. Killed between a send and its
state write, the rerun sends the same change with the same id, so a receiver that drops
repeated ids sees it once. For a non-idempotent destination the engine also writes each
delivery id to ``sync_send_log`` *before* sending, and its adapter asks
``SyncContext.already_sent`` before sending again (at most once).

Errors and logs carry keys, field names, counts and HTTP statuses, never payload values
or secrets.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from retention import warehouse
from retention.progress import SILENT, Progress
from retention.sync import diff, publication, state
from retention.sync.config import SyncConfigError, SyncSpec
from retention.sync.destinations import registry
from retention.sync.destinations.base import Record, RowResult, SyncContext
from retention.sync.errors import SyncError, SyncLocked

log = logging.getLogger(__name__)

DELIVERY_NAMESPACE = uuid.UUID("5b0f7c64-7a51-4d0e-9a43-3a2d6d1f2c10")
LOCK_NAMESPACE = "retention.sync:"
MAX_ERROR_CHARS = 300


@dataclass
class SyncOutcome:
    """What a run did. :meth:`summary` is what goes to XCom: counts, never rows."""

    sync: str
    status: str  # dry_run | succeeded | halted | failed
    as_of: date | None = None
    run_id: int | None = None
    counts: diff.Counts = field(default_factory=diff.Counts)
    sent: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    failed: int = 0
    halted_reason: str | None = None
    exports: list[str] = field(default_factory=list)

    @property
    def confirmed(self) -> int:
        return self.added + self.updated + self.removed

    def summary(self) -> dict[str, Any]:
        return {
            "sync": self.sync, "status": self.status, "run_id": self.run_id,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "planned": self.counts.as_dict(),
            "sent": self.sent, "added": self.added, "updated": self.updated, "removed": self.removed,
            "failed": self.failed, "halted_reason": self.halted_reason,
        }


def delivery_id(sync: str, key: str, generation: int, action: str, payload_hash: str | None) -> str:
    """Stable for one change of one key: the same across retries and reruns."""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, "\x1f".join((sync, key, str(generation), action, payload_hash or ""))))


def halt_reason(spec: SyncSpec, counts: diff.Counts, *, force: bool) -> str | None:
    """Why this run must not send, or None. ``force`` passes the change threshold only."""
    if counts.valid == 0 and counts.members > 0:
        return (f"the source has no valid rows while {counts.members} keys are synced; "
                "nothing removed (an empty source is never synced)")
    changes = counts.adds + counts.removes
    limit = spec.limits.max_change_pct / 100 * counts.members
    if not force and counts.members > 0 and changes >= spec.limits.min_change_count and changes > limit:
        return (f"{changes} adds + removes exceed {spec.limits.max_change_pct:g}% of the {counts.members} "
                f"synced keys (at most {int(limit)}); check the segment, then rerun with force to send")
    return None


def plan_sync(url: str, spec: SyncSpec, *, force: bool = False) -> SyncOutcome:
    """A dry run: the counts and whether the run would halt; sends nothing, writes no state."""
    return run_sync(url, spec, dry_run=True, force=force)


def run_sync(url: str, spec: SyncSpec, *, dry_run: bool = False, force: bool = False,
             log_retention_days: int = 30, progress: Progress = SILENT) -> SyncOutcome:
    """Run one sync (see the module docstring). Raises :class:`SyncError` with one line.
    ``progress`` hears of each batch sent (the CLI's bars)."""
    with warehouse.connect(url, autocommit=True) as wconn:
        state.ensure_schema(wconn)
        _lock(wconn, spec.name)
        try:
            pub = publication.check(wconn, spec.source.model)
            with warehouse.connect(url) as rconn:
                rconn.execute("set transaction isolation level repeatable read")
                diff.prepare(rconn, spec)
                counts = diff.count(rconn, spec)
                reason = halt_reason(spec, counts, force=force)
                outcome = SyncOutcome(spec.name, "dry_run", pub.as_of, counts=counts, halted_reason=reason)
                if dry_run:
                    rconn.rollback()
                    return outcome
                _close_interrupted(wconn, spec.name)
                outcome.run_id = _start_run(wconn, spec, pub.as_of, counts, force)
                diff.log_invalid(rconn, spec, outcome.run_id)
                if reason:
                    outcome.status = "halted"
                    log.warning("sync %s halted: %s", spec.name, reason)
                else:
                    try:
                        progress.start(f"sync {spec.name}", total=counts.to_send, unit="changes")
                        _send_all(wconn, rconn, spec, outcome, progress)
                    except Exception as exc:
                        outcome.status = "failed"
                        error = str(exc) if isinstance(exc, SyncError) else type(exc).__name__
                        _finish_run(wconn, outcome, error)
                        raise
                rconn.commit()
            _finish_run(wconn, outcome)
            state.prune_log(wconn, log_retention_days)
            return outcome
        finally:
            _unlock(wconn, spec.name)


def _lock(conn, name: str) -> None:
    got = conn.execute("select pg_try_advisory_lock(hashtextextended(%s, 0))", (LOCK_NAMESPACE + name,)).fetchone()[0]
    if not got:
        raise SyncLocked(f"sync {name!r} is already running (another process holds its lock); nothing sent")


def _unlock(conn, name: str) -> None:
    if not conn.closed:
        conn.execute("select pg_advisory_unlock(hashtextextended(%s, 0))", (LOCK_NAMESPACE + name,))


def _close_interrupted(conn, name: str) -> None:
    """Runs left 'running' by a killed process (we hold the lock, so none is alive)."""
    conn.execute(
        f"update {state.SCHEMA}.sync_runs set status = 'interrupted', ended_at = now()"
        " where sync_name = %s and status = 'running'", (name,),
    )


def _start_run(conn, spec: SyncSpec, as_of: date, counts: diff.Counts, force: bool) -> int:
    return conn.execute(
        f"""insert into {state.SCHEMA}.sync_runs
            (sync_name, as_of, mapping_version, forced, members_before, unchanged, invalid, retried)
            values (%s, %s, %s, %s, %s, %s, %s, %s) returning run_id""",
        (spec.name, as_of, spec.mapping_version, force, counts.members, counts.unchanged,
         counts.invalid, counts.retries),
    ).fetchone()[0]


def _finish_run(conn, o: SyncOutcome, error: str | None = None) -> None:
    conn.execute(
        f"""update {state.SCHEMA}.sync_runs set status = %s, ended_at = now(), added = %s, updated = %s,
            removed = %s, failed = %s, halted = %s, halted_reason = %s, error = %s where run_id = %s""",
        (o.status, o.added, o.updated, o.removed, o.failed, o.status == "halted", o.halted_reason,
         error, o.run_id),
    )


def _send_all(wconn, rconn, spec: SyncSpec, outcome: SyncOutcome, progress: Progress = SILENT) -> None:
    try:
        dest = registry.build(spec.destination.kind, spec.destination.conn_id, spec.destination.options)
    except ValueError as exc:  # an adapter's check of its options: names options, never row values
        raise SyncConfigError(f"sync {spec.name!r}: destination {spec.destination.kind}: {exc}") from None
    prior: set[str] = set()
    ctx = SyncContext(
        sync_name=spec.name, run_id=outcome.run_id, as_of=outcome.as_of, mode=spec.mode,
        segments=tuple(spec.source.segments), options=dict(spec.destination.options),
        already_sent=lambda delivery: delivery in prior,
    )
    batch_size = min(spec.limits.batch_size, int(dest.max_batch))
    succeeded = False
    try:
        dest.open(ctx)
    except ValueError as exc:  # e.g. Customer.io: a segment without its manual segment id
        raise SyncConfigError(f"sync {spec.name!r}: destination {spec.destination.kind}: {exc}") from None
    try:
        for n, changes in enumerate(diff.changes(rconn, spec, batch_size), 1):
            records = [_record(spec.name, c) for c in changes]
            try:
                if not dest.idempotent:
                    prior.clear()
                    prior.update(_send_log_begin(wconn, spec.name, outcome.run_id, records))
                results = dest.send(records)
            except Exception as exc:  # noqa: BLE001 - recorded without its message (may hold values)
                log.error("sync %s: %s in batch %d:\n%s", spec.name, type(exc).__name__, n,
                          "".join(traceback.format_tb(exc.__traceback__)))
                detail = f"{exc}" if isinstance(exc, SyncError) else type(exc).__name__  # SyncError: no values
                raise SyncError(
                    f"sync {spec.name!r}: {detail} while sending batch {n}; "
                    "confirmed rows are kept, the rest are retried next run"
                ) from None
            _check_results(spec.name, records, results)
            _apply(wconn, spec.name, outcome.run_id, records, results, send_log=not dest.idempotent)
            _tally(outcome, records, results)
            progress.advance(len(records), rows=len(records))
            log.info("sync %s batch %d: %d sent, %d confirmed, %d failed", spec.name, n, len(records),
                     sum(r.ok for r in results), sum(not r.ok for r in results))
        writer = getattr(dest, "write_members", None)
        if writer is not None:
            outcome.exports = [str(p) for p in writer(ctx, lambda: _members(rconn))]
        succeeded = True
    finally:
        dest.close(ctx, succeeded=succeeded)
    outcome.status = "succeeded"


def _record(sync: str, c: diff.Change) -> Record:
    return Record(
        key=c.key, action=c.action, payload=c.payload or {}, payload_hash=c.payload_hash or "",
        delivery_id=delivery_id(sync, c.key, c.generation, c.action, c.payload_hash),
        destination_id=c.destination_id, segments=c.segments, previous_segments=c.previous_segments,
    )


def _members(rconn) -> Iterator[Record]:
    for key, payload, segments in diff.members(rconn):
        yield Record(key=key, action="add", payload=payload, payload_hash="", delivery_id="", segments=segments)


def _check_results(sync: str, records: Sequence[Record], results: Sequence[RowResult]) -> None:
    if len(results) != len(records) or any(r.key != res.key for r, res in zip(records, results)):
        raise SyncError(
            f"sync {sync!r}: the destination answered {len(results)} results for {len(records)} records, "
            "or out of order; nothing recorded for this batch"
        )


def _tally(o: SyncOutcome, records: Sequence[Record], results: Sequence[RowResult]) -> None:
    o.sent += len(records)
    for rec, res in zip(records, results):
        if not res.ok:
            o.failed += 1
        elif rec.action == "add":
            o.added += 1
        elif rec.action == "update":
            o.updated += 1
        else:
            o.removed += 1


def _send_log_begin(conn, sync: str, run_id: int, records: Sequence[Record]) -> set[str]:
    """Delivery ids of this batch an earlier attempt may have delivered; record the others
    as being sent (committed before the send)."""
    ids = [r.delivery_id for r in records]
    with conn.transaction():
        prior = {str(d) for (d,) in conn.execute(
            f"select delivery_id from {state.SCHEMA}.sync_send_log"
            " where sync_name = %s and delivery_id = any(%s::uuid[]) and status <> 'rejected'", (sync, ids),
        ).fetchall()}
        conn.execute(
            f"""insert into {state.SCHEMA}.sync_send_log (sync_name, delivery_id, key, run_id, status)
                select %s, u.id, u.key, %s, 'sending' from unnest(%s::uuid[], %s::text[]) as u(id, key)
                on conflict (sync_name, delivery_id) do update set status = 'sending', run_id = excluded.run_id""",
            (sync, run_id, ids, [r.key for r in records]),
        )
    return prior


_APPLY = f"""
with u as (
    select * from unnest(%(keys)s::text[], %(actions)s::text[], %(hashes)s::text[], %(segs)s::text[],
                         %(dest)s::text[], %(oks)s::boolean[], %(errors)s::text[], %(http)s::int[],
                         %(ids)s::uuid[])
        as u(key, action, hash, segs, dest_id, ok, error, http, delivery_id)
),
up as (
    insert into {state.SCHEMA}.sync_state as s
        (sync_name, key, payload_hash, segments, is_member, destination_id, generation, last_status,
         attempts, last_error, first_synced_at, last_synced_at, last_run_id)
    select %(sync)s, u.key,
           case when u.ok and u.action <> 'remove' then u.hash end,
           case when u.ok and u.action <> 'remove' then string_to_array(u.segs, E'\\x1f') else '{{}}' end,
           u.ok and u.action <> 'remove', u.dest_id, case when u.ok then 1 else 0 end,
           case when u.ok then 'ok' else 'failed' end, 1, u.error,
           case when u.ok then now() end, case when u.ok then now() end, %(run)s
    from u
    on conflict (sync_name, key) do update set
        payload_hash = case when excluded.last_status = 'ok' then excluded.payload_hash else s.payload_hash end,
        segments = case when excluded.last_status = 'ok' then excluded.segments else s.segments end,
        is_member = case when excluded.last_status = 'ok' then excluded.is_member else s.is_member end,
        destination_id = coalesce(excluded.destination_id, s.destination_id),
        generation = s.generation + excluded.generation,
        last_status = excluded.last_status,
        attempts = case when s.last_status = 'failed' then s.attempts + 1 else 1 end,
        last_error = excluded.last_error,
        first_synced_at = coalesce(s.first_synced_at, excluded.first_synced_at),
        last_synced_at = coalesce(excluded.last_synced_at, s.last_synced_at),
        last_run_id = excluded.last_run_id
    returning s.key, s.attempts
),
logged as (
    insert into {state.SCHEMA}.sync_log (run_id, sync_name, key, action, status, attempts, http_status, error, delivery_id)
    select %(run)s, %(sync)s, u.key, u.action, case when u.ok then 'ok' else 'failed' end, up.attempts,
           u.http, u.error, u.delivery_id
    from u join up using (key)
)
select 1
"""

_SEND_LOG_DONE = f"""
update {state.SCHEMA}.sync_send_log l
set status = case when u.ok then 'ok' when u.http between 400 and 499 then 'rejected' else 'unknown' end
from unnest(%(ids)s::uuid[], %(oks)s::boolean[], %(http)s::int[]) as u(delivery_id, ok, http)
where l.sync_name = %(sync)s and l.delivery_id = u.delivery_id
"""


def _apply(conn, sync: str, run_id: int, records: Sequence[Record], results: Sequence[RowResult], *,
           send_log: bool) -> None:
    """Advance the state of confirmed rows, record the attempt of failed ones, log each (one transaction)."""
    params = {
        "sync": sync, "run": run_id,
        "keys": [r.key for r in records],
        "actions": [r.action for r in records],
        "hashes": [r.payload_hash or None for r in records],
        "segs": [diff.SEP.join(r.segments) for r in records],
        "dest": [res.destination_id for res in results],
        "oks": [res.ok for res in results],
        "errors": [None if res.ok else _clip(res.error or "rejected without a reason") for res in results],
        "http": [res.http_status for res in results],
        "ids": [r.delivery_id for r in records],
    }
    with conn.transaction():
        conn.execute(_APPLY, params)
        if send_log:
            conn.execute(_SEND_LOG_DONE, params)


def _clip(error: str) -> str:
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"


def status(url: str) -> list[dict[str, Any]]:
    """The last run of every sync that has run (newest first)."""
    with warehouse.connect(url, autocommit=True) as conn:
        if conn.execute("select to_regclass(%s)", (f"{state.SCHEMA}.sync_runs",)).fetchone()[0] is None:
            return []
        cur = conn.execute(
            f"""select distinct on (sync_name) sync_name, run_id, status, as_of, started_at, ended_at,
                   added, updated, removed, unchanged, failed, invalid, halted_reason, error
                from {state.SCHEMA}.sync_runs order by sync_name, run_id desc"""
        )
        cols = [c.name for c in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]
