"""Customer.io destination: people's attributes by ``PUT``, membership through manual segments.

Each batch (at most 1,000 records, the size of one segment call) becomes:

1. one ``PUT /api/v1/customers/{key}`` per add or update that carries mapped attributes
   (the Track API has no bulk identify in v1), four in flight, paced by the connection's
   token bucket; a 4xx fails that row only;
2. in ``membership`` mode, for each managed segment one ``add_customers`` with the
   confirmed rows that entered it and one ``remove_customers`` with those that left it
   (:func:`~retention.sync.destinations.membership.joins_and_leaves`: only segments this
   sync confirmed before). A failed segment call fails its rows.

Exits in ``upsert`` mode change nothing at Customer.io (people are never deleted).

Options: ``segments`` (required in membership mode): segment -> Customer.io manual
segment id (make the manual segments in Customer.io first: the Track API cannot);
``id_type``: ``id`` (default) or ``email``, what the sync's key is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from retention.hooks.customerio import CustomerIOHook
from retention.hooks.http import HttpHookError
from retention.sync.destinations.base import Record, RowResult, SyncContext
from retention.sync.destinations.membership import joins_and_leaves


PARALLEL_PUTS = 4


class CustomerIODestination:
    kind: ClassVar[str] = "customerio"
    idempotent: ClassVar[bool] = True  # PUT of attributes and segment add/remove repeat safely
    max_batch: ClassVar[int] = 1000

    def __init__(self, conn_id: str, options: Mapping[str, Any] | None = None, hook: CustomerIOHook | None = None) -> None:
        self.options = dict(options or {})
        self.hook = hook or CustomerIOHook(conn_id)
        self.id_type = str(self.options.get("id_type", "id"))
        if self.id_type not in ("id", "email"):
            raise ValueError("customerio option id_type must be 'id' or 'email'")
        self.segment_ids: dict[str, str] = {}
        self.membership = False

    def open(self, ctx: SyncContext) -> None:
        self.membership = ctx.mode == "membership"
        if not self.membership:
            return
        given = {str(k): str(v) for k, v in dict(self.options.get("segments") or {}).items()}
        missing = [s for s in ctx.segments if s not in given]
        if missing:
            raise ValueError(
                f"sync {ctx.sync_name!r}: customerio option segments has no manual segment id for {', '.join(missing)} "
                "(create a manual segment in Customer.io and map it: segments: {name: id})"
            )
        self.segment_ids = {s: given[s] for s in ctx.segments}

    def close(self, ctx: SyncContext, *, succeeded: bool) -> None:
        self.hook.close()

    def send(self, records: Sequence[Record]) -> list[RowResult]:
        upserts = [r for r in records if r.action != "remove" and r.payload]
        # The rate budget, not the round trip, should bound a batch: a few PUTs in flight,
        # all paced by the connection's one token bucket.
        with ThreadPoolExecutor(max_workers=PARALLEL_PUTS) as pool:
            answers = list(pool.map(self._identify, upserts))
        outcome = {r.key: failed for r, failed in zip(upserts, answers) if failed is not None}
        if self.membership:
            self._update_segments([r for r in records if r.key not in outcome], outcome)
        return [outcome.get(r.key) or RowResult(key=r.key, ok=True, http_status=200) for r in records]

    def _identify(self, r: Record) -> RowResult | None:
        """None when Customer.io took the person's attributes, else the row's failure."""
        try:
            response = self.hook.identify(r.key, dict(r.payload))
        except HttpHookError as exc:
            return _failed(r, exc.status, str(exc), retryable=exc.retryable)
        if response.status_code < 300:
            return None
        return _failed(r, response.status_code,
                       f"Customer.io rejected the attributes ({response.status_code}; fields: {', '.join(sorted(r.payload))})",
                       retryable=response.status_code >= 500 or response.status_code == 429)

    def _update_segments(self, records: Sequence[Record], outcome: dict[str, RowResult]) -> None:
        changes = {r.key: joins_and_leaves(r, list(self.segment_ids)) for r in records}
        for segment, segment_id in self.segment_ids.items():
            for add, side in ((True, 0), (False, 1)):
                rows = [r for r in records if segment in changes[r.key][side]]
                if not rows:
                    continue
                try:
                    self.hook.change_segment(segment_id, [r.key for r in rows], add=add, id_type=self.id_type)
                except HttpHookError as exc:
                    verb = "add_customers" if add else "remove_customers"
                    for r in rows:
                        outcome.setdefault(r.key, _failed(r, exc.status, f"segment {segment_id} {verb}: {exc}",
                                                          retryable=exc.retryable))


def _failed(record: Record, status: int | None, error: str, *, retryable: bool = True) -> RowResult:
    return RowResult(key=record.key, ok=False, http_status=status, error=error, retryable=retryable)
