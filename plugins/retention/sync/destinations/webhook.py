"""The signed webhook destination: JSON batches POSTed to a receiver's URL.

Built from a connection id (type ``retention_webhook``, see :mod:`retention.hooks.webhook`;
its extra sets the rate and timeouts); it takes no options. Each ``send`` is one delivery
of at most 1,000 records (the sync's ``limits.batch_size``)::

    {"delivery_id": "whb_…", "sync": "at_risk_to_crm", "as_of": "2026-12-01", "mode": "upsert",
     "records": [{"delivery_id": "…", "key": "acct_42", "action": "update",
                  "payload": {"plan": "pro", "mrr": 990}, "segments": ["at_risk"],
                  "previous_segments": []}, …]}

The batch's ``delivery_id`` is derived from its records' delivery ids, so every retry of
the same batch (by the hook, or by a later run that sends the same records) carries the
same id; each record carries the engine's stable ``delivery_id`` too. Receivers drop
repeats by either, which makes a repeat safe: the adapter is ``idempotent``.

The receiver's 2xx answer may name rejected records, ``{"rejected": [{"index": 3, "code":
"invalid_plan", "retryable": false}, …]}``; those rows fail, the others are confirmed. A
4xx fails every row of the batch (a 401/403 raises instead: the signing secret is wrong,
so every batch would fail). Error texts carry statuses and codes, never values.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson

from retention.hooks.http import HttpHookError
from retention.hooks.webhook import WebhookHook
from retention.sync.destinations.base import Record, RowResult, SyncContext

log = logging.getLogger(__name__)

MAX_BATCH = 1000
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


class WebhookDestination:
    kind: ClassVar[str] = "webhook"
    idempotent: ClassVar[bool] = True
    max_batch: ClassVar[int] = MAX_BATCH

    def __init__(self, conn_id: str | None = None, options: Mapping[str, Any] | None = None) -> None:
        if options:
            raise ValueError(f"the webhook destination takes no options, not {sorted(options)} (the batch size "
                             "is the sync's limits.batch_size; rate and timeouts are the connection's extra)")
        self.conn_id = conn_id or WebhookHook.default_conn_name
        self.hook = WebhookHook(self.conn_id)
        self._ctx: SyncContext | None = None

    def open(self, ctx: SyncContext) -> None:
        self._ctx = ctx
        self.hook.secret  # noqa: B018 - fail before any send when the connection has no secret
        self.hook.base_url  # noqa: B018

    def send(self, records: Sequence[Record]) -> list[RowResult]:
        if self._ctx is None:
            raise RuntimeError("WebhookDestination.send before open")
        if not records:
            return []
        batch_id = batch_delivery_id(self._ctx.sync_name, records)
        body = delivery_body(self._ctx, batch_id, records)
        try:
            response = self.hook.deliver(body, batch_id)
        except HttpHookError as exc:
            log.warning("webhook delivery %s (%d records) failed: %s", batch_id, len(records), exc)
            return [RowResult(r.key, False, exc.status, str(exc), retryable=exc.retryable) for r in records]
        return results_from_response(self.conn_id, records, response.status_code, response.content)

    def close(self, ctx: SyncContext, *, succeeded: bool) -> None:
        self.hook.close()


def batch_delivery_id(sync_name: str, records: Sequence[Record]) -> str:
    """The same for the same records of the same sync, whenever they are sent."""
    digest = hashlib.sha256(sync_name.encode())
    for record in records:
        digest.update(b"\n" + record.delivery_id.encode())
    return f"whb_{digest.hexdigest()[:32]}"


def delivery_body(ctx: SyncContext, batch_id: str, records: Sequence[Record]) -> bytes:
    return orjson.dumps(
        {
            "delivery_id": batch_id,
            "sync": ctx.sync_name,
            "as_of": ctx.as_of.isoformat(),
            "mode": ctx.mode,
            "records": [
                {
                    "delivery_id": r.delivery_id,
                    "key": r.key,
                    "action": r.action,
                    "payload": dict(r.payload),
                    "segments": list(r.segments),
                    "previous_segments": list(r.previous_segments),
                }
                for r in records
            ],
        },
        option=orjson.OPT_NON_STR_KEYS,
    )


def results_from_response(conn_id: str, records: Sequence[Record], status: int, content: bytes) -> list[RowResult]:
    """One result per record from the receiver's answer (see the module docstring)."""
    if not 200 <= status < 300:
        code = _error_code(content)
        detail = f"{status} {code}" if code else str(status)
        if status in (401, 403):
            raise HttpHookError(
                f"the webhook receiver refused the delivery ({detail}): check the signing secret (password) "
                f"and the URL of connection {conn_id!r}",
                status=status, code=code, retryable=False,
            )
        error = f"webhook receiver answered {detail}"
        return [RowResult(r.key, False, status, error, retryable=False) for r in records]
    rejected = _rejections(content, records)
    if rejected is None:
        error = f"webhook receiver answered {status} with rejections that do not match the batch"
        return [RowResult(r.key, False, status, error) for r in records]
    results = []
    for index, record in enumerate(records):
        if index in rejected:
            code, retryable = rejected[index]
            results.append(RowResult(record.key, False, status, f"webhook receiver rejected the record: {code}",
                                     retryable=retryable))
        else:
            results.append(RowResult(record.key, True, status))
    return results


def _rejections(content: bytes, records: Sequence[Record]) -> dict[int, tuple[str, bool]] | None:
    """index -> (code, retryable) of the rejected records; None when the answer names rows not in the batch."""
    try:
        answer = orjson.loads(content) if content else {}
    except orjson.JSONDecodeError:
        return {}
    items = answer.get("rejected") if isinstance(answer, dict) else None
    if not items:
        return {}
    by_id = {r.delivery_id: i for i, r in enumerate(records)}
    out: dict[int, tuple[str, bool]] = {}
    for item in items:
        if not isinstance(item, dict):
            return None
        index = item.get("index")
        if index is None:
            index = by_id.get(item.get("delivery_id"))
        if not isinstance(index, int) or not 0 <= index < len(records):
            return None
        if "delivery_id" in item and item["delivery_id"] != records[index].delivery_id:
            return None
        out[index] = (_safe_code(item.get("code")), bool(item.get("retryable", True)))
    return out


def _error_code(content: bytes) -> str | None:
    try:
        answer = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if isinstance(answer, dict):
        code = answer.get("error") if not isinstance(answer.get("error"), dict) else answer["error"].get("code")
        return _safe_code(code) if code else None
    return None


def _safe_code(code: Any) -> str:
    """A receiver's error code when it is a short token; anything else (it may echo a value) is not repeated."""
    text = str(code or "")
    return text if _CODE.fullmatch(text) else "rejected"
