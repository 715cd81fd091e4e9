"""Braze destination: ``/users/track`` attributes, membership as an array attribute.

Each batch (at most 75 records: Braze's limit counts attributes, events and purchases
together, and this destination sends one attributes object per record) becomes one
``POST /users/track``. Object ``i`` is record ``i``, so ``errors[]`` items, which carry an
``index``, fail exactly their rows; every other row is confirmed.

* upsert: ``{external_id: key, _update_existing_only: false, **mapped attributes}``;
* membership: the same object also carries ``{<array attribute>: {"add": [segments
  entered], "remove": [segments left]}}``
  (:func:`~retention.sync.destinations.membership.joins_and_leaves`); an exit is
  ``{external_id: key, _update_existing_only: true, <array attribute>: {"remove": [...]}}``.
  Only the sync's own values are added or removed: values another writer put in the
  array stay.

Exits in ``upsert`` mode change nothing at Braze (users are never deleted).

Options: ``identifier``: ``external_id`` (default) or ``email``, what the sync's key is;
``membership_attribute`` (default ``retention_segments``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from retention.hooks.braze import BrazeHook
from retention.hooks.http import HttpHookError
from retention.sync.destinations.base import Record, RowResult, SyncContext
from retention.sync.destinations.membership import joins_and_leaves

PERMANENT = ("EMAIL_BAD_FORMAT", "EXTERNAL_USER_ID_TOO_LARGE", "BLACKLISTED_EXTERNAL_USER_ID", "MISSING_IDENTIFIER",
             "BAD_")


class BrazeDestination:
    kind: ClassVar[str] = "braze"
    idempotent: ClassVar[bool] = True  # attribute sets and array add/remove repeat safely
    max_batch: ClassVar[int] = 75

    def __init__(self, conn_id: str, options: Mapping[str, Any] | None = None, hook: BrazeHook | None = None) -> None:
        self.options = dict(options or {})
        self.hook = hook or BrazeHook(conn_id)
        self.identifier = str(self.options.get("identifier", "external_id"))
        if self.identifier not in ("external_id", "email"):
            raise ValueError("braze option identifier must be 'external_id' or 'email'")
        self.attribute = str(self.options.get("membership_attribute", "retention_segments"))
        self.segments: tuple[str, ...] = ()
        self.membership = False

    def open(self, ctx: SyncContext) -> None:
        self.membership = ctx.mode == "membership"
        self.segments = tuple(ctx.segments)

    def close(self, ctx: SyncContext, *, succeeded: bool) -> None:
        self.hook.close()

    def send(self, records: Sequence[Record]) -> list[RowResult]:
        sent = [r for r in records if self.membership or r.action != "remove"]
        if not sent:
            return [RowResult(key=r.key, ok=True) for r in records]
        try:
            status, errors = self.hook.track_attributes([self._object(r) for r in sent])
        except HttpHookError as exc:
            return [_failed(r, exc.status, str(exc), retryable=exc.retryable) for r in records]
        outcome = {
            sent[i].key: _failed(sent[i], status, f"Braze rejected this object ({kind})",
                                 retryable=not kind.startswith(PERMANENT))
            for i, kind in errors.items() if 0 <= i < len(sent)
        }
        return [outcome.get(r.key) or RowResult(key=r.key, ok=True, http_status=status) for r in records]

    def _object(self, record: Record) -> dict[str, Any]:
        obj: dict[str, Any] = {self.identifier: record.key, "_update_existing_only": record.action == "remove"}
        obj.update({k: v for k, v in record.payload.items() if k not in (self.identifier, "_update_existing_only")})
        if self.membership:
            joins, leaves = joins_and_leaves(record, self.segments)
            change = {name: list(values) for name, values in (("add", joins), ("remove", leaves)) if values}
            if change:
                obj[self.attribute] = change
        return obj


def _failed(record: Record, status: int | None, error: str, *, retryable: bool = True) -> RowResult:
    return RowResult(key=record.key, ok=False, http_status=status, error=error, retryable=retryable)
