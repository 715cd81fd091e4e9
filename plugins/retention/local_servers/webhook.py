"""A local receiver for the signed webhook destination (``python -m retention.local_servers webhook``).

Options (``serve("webhook", secret=..., ...)`` or ``--set``): ``secret`` (required: the
connection's password), ``tolerance_s`` (timestamp window, default 300), ``reject_keys``
(record keys it always rejects, code ``rejected_key``: a deterministic partial failure).

It accepts ``POST`` on any path and answers as a careful receiver should:

* 401 ``missing_signature`` / ``stale_timestamp`` / ``bad_signature`` when the signature
  does not verify (:func:`retention.hooks.webhook_signature.verify`); 400 ``bad_body`` when the body
  is not a delivery (``delivery_id`` equal to the header, ``records`` a list);
* otherwise 200 ``{"delivery_id", "accepted", "duplicates", "rejected": [{"index",
  "delivery_id", "code", "retryable"}]}``. A record whose ``delivery_id`` was accepted
  before is acknowledged again and counted as a duplicate, never applied twice.

Every fault kind of :mod:`retention.local_servers.base` applies; ``partial`` rejects some
records of a delivery (code ``partial_failure``, retryable).

Views (``GET /__control/log``): ``summary`` (counts), ``records`` (each accepted record
once, by its delivery id, with how often it arrived), ``deliveries`` (every batch received,
repeats flagged), ``rejections``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from fastapi import Request

from retention.hooks.webhook_signature import DEFAULT_TOLERANCE_S, DELIVERY_HEADER, verify
from retention.local_servers.base import LocalServer, register


def _error_body(status: int, code: str) -> dict:
    return {"error": code, "status": status}


@register("webhook", error_body=_error_body)
def build(server: LocalServer) -> None:
    secret = server.options.get("secret")
    if not secret:
        raise ValueError("the webhook receiver needs the option secret (the connection's password)")
    tolerance = float(server.options.get("tolerance_s", DEFAULT_TOLERANCE_S))
    reject_keys = frozenset(server.options.get("reject_keys", ()))
    accepted: dict[str, dict[str, Any]] = {}   # record delivery id -> record (+ times received)
    batches: Counter[str] = Counter()
    deliveries: list[dict[str, Any]] = []
    rejections: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()

    @server.app.post("/{path:path}")
    async def receive(request: Request) -> Any:
        body = await request.body()
        refused = verify(secret, request.headers, body, tolerance_s=tolerance)
        if refused:
            counts["refused"] += 1
            return server.error(401, refused)
        try:
            delivery = orjson.loads(body)
            batch_id, records = delivery["delivery_id"], delivery["records"]
            if batch_id != request.headers.get(DELIVERY_HEADER) or not isinstance(records, list):
                raise ValueError
            ids = [r["delivery_id"] for r in records]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return server.error(400, "bad_body")
        batches[batch_id] += 1
        deliveries.append({"delivery_id": batch_id, "records": len(records), "repeat": batches[batch_id] > 1})
        fresh = [i for i, rid in enumerate(ids) if rid not in accepted]
        partial = {fresh[i] for i in server.partial_rejects(request, len(fresh))}
        rejected, duplicates = [], 0
        for index, record in enumerate(records):
            rid = record["delivery_id"]
            if rid in accepted:
                accepted[rid]["received"] += 1
                duplicates += 1
                continue
            code = "rejected_key" if record.get("key") in reject_keys else "partial_failure" if index in partial else None
            if code:
                rejected.append({"index": index, "delivery_id": rid, "code": code, "retryable": code != "rejected_key"})
                rejections.append({"delivery_id": rid, "key": record.get("key"), "code": code})
                continue
            accepted[rid] = {**record, "batch": batch_id, "received": 1}
        counts["records_received"] += len(records)
        counts["duplicates"] += duplicates
        counts["rejected"] += len(rejected)
        return {"delivery_id": batch_id, "accepted": len(records) - len(rejected) - duplicates,
                "duplicates": duplicates, "rejected": rejected}

    @server.view("summary")
    def summary() -> dict:
        return {
            "batches": sum(batches.values()), "unique_batches": len(batches), "unique_records": len(accepted),
            "records_received": counts["records_received"], "duplicates": counts["duplicates"],
            "rejected": counts["rejected"], "refused": counts["refused"],
        }

    @server.view("records")
    def records_view() -> dict:
        return accepted

    @server.view("deliveries")
    def deliveries_view() -> list:
        return deliveries

    @server.view("rejections")
    def rejections_view() -> list:
        return rejections
