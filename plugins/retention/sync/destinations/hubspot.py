"""HubSpot destination: contacts upserted by email, membership as a manual list per segment.

Each batch (at most 1,000 records) becomes:

1. ``batch/upsert`` calls of the adds and updates, 100 inputs each (HubSpot's limit),
   each input carrying its record's ``delivery_id`` as ``objectWriteTraceId``, so a 207's
   ``errors[]`` name their rows and only those fail (a failed call fails its own rows);
   the answer's record ids become ``RowResult.destination_id``;
2. in ``membership`` mode, one ``add-and-remove`` per list whose members change (for the
   whole batch: fewer calls than one per 100 rows, which is what the rate limit counts): rows
   join the lists of segments they entered and leave those of segments they left
   (:func:`~retention.sync.destinations.membership.joins_and_leaves`: only segments this
   sync confirmed before), by record id: from the upsert's answer, or for an exit the id
   cached from an earlier run (looked up by email with one ``batch/read`` when none is
   cached). A record is confirmed only when every call it took part in succeeded.

Exits in ``upsert`` mode change nothing at HubSpot (contacts are never deleted).

When HubSpot's daily cap is spent the hook raises :class:`DailyLimitReached`; this
batch and every later one of the run fail as retryable without another call, each
row's ``sync_log`` error saying why, and :meth:`HubSpotDestination.close` then raises it,
so the run ends ``failed`` with the reason in ``activation.sync_runs`` (and one line from
``retention sync``). The next run after HubSpot's midnight reset sends what is left.

Options (the sync's ``destination.options``):
``id_property`` (default ``email``): the unique contact property the sync's key is;
``lists``: segment -> list id, for lists made in HubSpot; otherwise a MANUAL list named
``list_prefix`` + segment (default ``"Retention: "``) is found or created.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from retention.hooks.http import HttpHookError
from retention.hooks.hubspot import MAX_BATCH as MAX_INPUTS
from retention.hooks.hubspot import DailyLimitReached, HubSpotHook
from retention.sync.destinations.base import Record, RowResult, SyncContext
from retention.sync.destinations.membership import joins_and_leaves


class HubSpotDestination:
    kind: ClassVar[str] = "hubspot"
    idempotent: ClassVar[bool] = True  # upserts by email and list membership changes repeat safely
    max_batch: ClassVar[int] = 1000  # upserts go 100 a call; one list call per list serves the whole batch

    def __init__(self, conn_id: str, options: Mapping[str, Any] | None = None, hook: HubSpotHook | None = None) -> None:
        self.options = dict(options or {})
        self.hook = hook or HubSpotHook(conn_id)
        self.id_property = str(self.options.get("id_property", "email"))
        self.segments: tuple[str, ...] = ()
        self._list_ids: dict[str, str] | None = None
        self.halted: str | None = None
        self.membership = False

    def open(self, ctx: SyncContext) -> None:
        # Nothing is called here: an unchanged run makes no request at all.
        self.membership = ctx.mode == "membership"
        self.segments = tuple(ctx.segments)

    @property
    def list_ids(self) -> dict[str, str]:
        """segment -> list id; lists are found (or created) on the first batch that needs them."""
        if self._list_ids is None:
            given = {str(k): str(v) for k, v in dict(self.options.get("lists") or {}).items()}
            prefix = str(self.options.get("list_prefix", "Retention: "))
            self._list_ids = {s: given[s] if s in given else self.hook.ensure_list(prefix + s) for s in self.segments}
        return self._list_ids

    def close(self, ctx: SyncContext, *, succeeded: bool) -> None:
        """Ends the run; one that met the daily cap fails with why (its rows are already recorded)."""
        self.hook.close()
        if self.halted:
            raise DailyLimitReached(self.halted, status=429, code="DAILY")

    def send(self, records: Sequence[Record]) -> list[RowResult]:
        if self.halted:
            return [_failed(r, None, self.halted) for r in records]
        try:
            return self._send(records)
        except DailyLimitReached as exc:
            self.halted = str(exc)
            return [_failed(r, 429, self.halted) for r in records]
        except HttpHookError as exc:
            return [_failed(r, exc.status, str(exc), retryable=exc.retryable) for r in records]

    def _send(self, records: Sequence[Record]) -> list[RowResult]:
        outcome: dict[str, RowResult] = {}
        ids: dict[str, str | None] = {r.key: r.destination_id for r in records}
        upserts = [r for r in records if r.action != "remove"]
        for start in range(0, len(upserts), MAX_INPUTS):
            chunk = upserts[start : start + MAX_INPUTS]
            try:
                answer = self.hook.upsert_contacts(
                    [(r.delivery_id, r.key, dict(r.payload)) for r in chunk], id_property=self.id_property
                )
            except DailyLimitReached:
                raise
            except HttpHookError as exc:  # this call's rows fail; the other calls of the batch go on
                outcome.update({r.key: _failed(r, exc.status, str(exc), retryable=exc.retryable) for r in chunk})
                continue
            for r in chunk:
                if r.delivery_id in answer.errors:
                    error = answer.errors[r.delivery_id]
                    outcome[r.key] = _failed(r, answer.status, error.describe(), retryable=error.retryable)
                else:
                    ids[r.key] = answer.ids[r.delivery_id]
        removes = [r for r in records if r.action == "remove"]
        if self.membership:
            missing = [r.key for r in removes if not ids[r.key]]
            if missing:
                ids.update(self.hook.read_contact_ids(missing, id_property=self.id_property))
            self._update_lists([r for r in records if r.key not in outcome], ids, outcome)
        results = []
        for r in records:
            if r.key in outcome:
                results.append(outcome[r.key])
            else:
                results.append(RowResult(key=r.key, ok=True, http_status=200, destination_id=ids.get(r.key)))
        return results

    def _update_lists(self, records: Sequence[Record], ids: Mapping[str, str | None], outcome: dict[str, RowResult]) -> None:
        changes = {r.key: joins_and_leaves(r, list(self.list_ids)) for r in records}
        for segment, list_id in self.list_ids.items():
            add = [r for r in records if ids.get(r.key) and segment in changes[r.key][0]]
            remove = [r for r in records if ids.get(r.key) and segment in changes[r.key][1]]
            if not add and not remove:
                continue
            try:
                answer = self.hook.update_list(list_id, add=[ids[r.key] for r in add], remove=[ids[r.key] for r in remove])
            except DailyLimitReached:
                raise
            except HttpHookError as exc:
                for r in add + remove:
                    outcome.setdefault(r.key, _failed(r, exc.status, f"list {list_id}: {exc}", retryable=exc.retryable))
                continue
            missing = set(answer.get("recordIdsMissing") or [])
            for r in add:  # a remove of a record HubSpot no longer has is done
                if ids[r.key] in missing:
                    outcome.setdefault(r.key, _failed(r, 200, f"list {list_id}: record {ids[r.key]} missing at HubSpot"))


def _failed(record: Record, status: int | None, error: str, *, retryable: bool = True) -> RowResult:
    return RowResult(key=record.key, ok=False, http_status=status, error=error,
                     destination_id=record.destination_id, retryable=retryable)
