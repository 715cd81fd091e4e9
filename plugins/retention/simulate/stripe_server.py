"""A local, read-only Stripe API for the simulated billing data (``retention stripe-server``).

It serves ``<data>/stripe/<object>.jsonl`` (one full Stripe object per line, written by
``retention simulate``) with the contract of ``api.stripe.com/v1`` that ingestion relies
on, so the official ``stripe`` SDK works against it unchanged::

    client = stripe.StripeClient(key, base_addresses={"api": server.base_url})

What it implements (following docs.stripe.com/api):

* auth: ``Authorization: Bearer <key>`` (or HTTP Basic with the key as user name);
  401 ``invalid_request_error`` without a key or with a wrong one;
* list endpoints ``GET /v1/{customers,products,prices,coupons,subscriptions,invoices}``:
  ``object: "list"``, ``url``, ``has_more``, ``data`` newest first (``created`` then
  ``id``, descending); ``limit`` (1-100, default 10), ``starting_after``,
  ``ending_before``, ``created`` / ``created[gt|gte|lt|lte]``, ``expand[]`` (paths
  start with ``data.``), and the filters in :data:`FILTERS`; subscriptions default to
  every status except ``canceled`` unless ``status`` says otherwise (``all``, ``ended``);
* retrieval ``GET /v1/<objects>/<id>`` with ``expand[]``; 404 ``resource_missing``;
* invoice lines: an invoice embeds its first 10 lines (``lines.has_more`` when there are
  more); ``GET /v1/invoices/<id>/lines`` pages through all of them;
* events ``GET /v1/events`` (and ``/v1/events/<id>``): every change the server sees in the
  files after it started (an object added, changed or removed) becomes an event with
  ``data.object`` (the new state; the last one for a deletion) and
  ``data.previous_attributes``, typed as Stripe types them (``customer.updated``,
  ``customer.deleted``, ``customer.subscription.deleted`` for a cancellation,
  ``invoice.paid``, ``invoice.voided``, ...); listed newest first with the list paging,
  ``created`` filters, ``type`` (``*`` wildcard) or ``types[]``; only the last 30 days are
  served, as Stripe retains them;
* unknown parameters are rejected (400 ``parameter_unknown``), as Stripe does;
* fault injection: a deterministic (seeded) share of requests answers 429
  ``rate_limit_error`` with ``Retry-After``, or 500 ``api_error``;
* every response carries a ``Request-Id`` header.

Expandable fields are resolved by name (:data:`EXPANDABLE`): ``customer``,
``discounts`` (ids in ``stripe/discounts.jsonl``), ``product``, ``price``, ... An id
that is not in the data stays an id. Files are re-read when they change on disk.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import random
import sys
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import typer

log = logging.getLogger(__name__)

API_KEY_ENV = "STRIPE_API_KEY"
DEFAULT_PORT = 12111  # the port stripe-mock uses
MAX_EXPAND_DEPTH = 4

# file / URL name -> the `object` value its records carry
LISTABLE = {
    "customers": "customer",
    "products": "product",
    "prices": "price",
    "coupons": "coupon",
    "subscriptions": "subscription",
    "invoices": "invoice",
}
# Served only through expansion (Stripe has no list or retrieve endpoint for them).
EMBEDDED = {"discounts": "discount"}
OBJECT_FILES = {**LISTABLE, **EMBEDDED}
EVENTS = "events"  # listable, but made by the server from the changes it sees, not read from a file
EVENT_RETENTION_S = 30 * 86_400  # Stripe keeps events for 30 days
EMBEDDED_LINES = 10  # an invoice object carries its first 10 lines; the rest through /lines
API_VERSION = "2025-03-31.basil"
# collection -> the prefix of its event types
EVENT_PREFIX = {
    "customers": "customer",
    "products": "product",
    "prices": "price",
    "coupons": "coupon",
    "subscriptions": "customer.subscription",
    "invoices": "invoice",
    "discounts": "customer.discount",
}
# invoice status transitions with their own event type (else invoice.updated)
INVOICE_STATUS_EVENTS = {
    "paid": "invoice.paid",
    "void": "invoice.voided",
    "uncollectible": "invoice.marked_uncollectible",
    "open": "invoice.finalized",
}

# field name -> the collection its id points into
EXPANDABLE = {
    "customer": "customers",
    "discounts": "discounts",
    "product": "products",
    "price": "prices",
    "default_price": "prices",
    "coupon": "coupons",
    "subscription": "subscriptions",
    "latest_invoice": "invoices",
    "invoice": "invoices",
}

# Equality filters per list endpoint (query parameter == top-level field).
FILTERS: dict[str, tuple[str, ...]] = {
    "customers": ("email",),
    "products": ("active",),
    "prices": ("active", "product"),
    "coupons": (),
    "subscriptions": ("customer",),
    "invoices": ("customer", "status"),
    EVENTS: (),
}
SUBSCRIPTION_STATUSES = frozenset(
    {"active", "past_due", "unpaid", "canceled", "incomplete", "incomplete_expired", "trialing", "paused"}
)
CREATED_OPS = ("gt", "gte", "lt", "lte")
LIST_PARAMS = frozenset(
    {"limit", "starting_after", "ending_before", "created"} | {f"created[{op}]" for op in CREATED_OPS}
)


class StripeApiError(Exception):
    """An error answered with Stripe's error body: ``{"error": {"type", "message", ...}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.error: dict[str, Any] = {"message": message, "type": type_}
        if code:
            self.error["code"] = code
            self.error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.error["param"] = param


class StripeData:
    """The objects of one data directory, sorted for cursor paging; reloaded on change."""

    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.stripe_dir = Path(data_dir) / "stripe"
        if not self.stripe_dir.is_dir():
            raise FileNotFoundError(
                f"{self.stripe_dir} does not exist. Point --data at a folder written by "
                f"`retention simulate --out DIR` (it holds stripe/<object>.jsonl)."
            )
        self._lock = threading.Lock()
        self._signature: tuple = ()
        self._clock = clock
        self.by_id: dict[str, dict[str, dict]] = {}
        self.ascending: dict[str, list[dict]] = {}
        self.keys: dict[str, list[tuple[int, str]]] = {}
        self.invoice_lines: dict[str, list[dict]] = {}  # invoice id -> every line
        self.events: list[dict] = []  # ascending (created, id)
        self.refresh()

    def now(self) -> int:
        return int(self._clock())

    def _current_signature(self) -> tuple:
        sig = []
        for name in OBJECT_FILES:
            path = self.stripe_dir / f"{name}.jsonl"
            try:
                st = path.stat()
                sig.append((name, st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                sig.append((name, None, None))
        return tuple(sig)

    def refresh(self) -> None:
        """Re-read the files if any of them changed since the last read."""
        with self._lock:
            signature = self._current_signature()
            if signature == self._signature:
                return
            by_id = {name: _read_objects(self.stripe_dir / f"{name}.jsonl", obj) for name, obj in OBJECT_FILES.items()}
            lines = {inv_id: _embed_first_lines(inv) for inv_id, inv in by_id["invoices"].items()}
            if self._signature:  # not the first read: what changed since is what Stripe would announce
                self.events.extend(self._changes(self.by_id, by_id))
            by_id[EVENTS] = {e["id"]: e for e in self.events}
            ascending = {name: sorted(by_id[name].values(), key=_sort_key) for name in (*LISTABLE, EVENTS)}
            self.by_id, self.ascending, self.invoice_lines = by_id, ascending, lines
            self.keys = {name: [_sort_key(o) for o in objs] for name, objs in ascending.items()}
            self._signature = signature
            log.info("stripe data loaded: %s", {name: len(objs) for name, objs in by_id.items()})

    def _changes(self, old: dict[str, dict[str, dict]], new: dict[str, dict[str, dict]]) -> list[dict]:
        """One event per object added, changed or removed, typed as Stripe types them."""
        now = self.now()
        events = []
        for name, prefix in EVENT_PREFIX.items():
            before, after = old.get(name, {}), new[name]
            for obj_id in sorted(before.keys() | after.keys()):
                prev, cur = before.get(obj_id), after.get(obj_id)
                if prev == cur:
                    continue
                if prev is None:
                    type_, obj, previous = f"{prefix}.created", cur, None
                elif cur is None:
                    type_, obj, previous = f"{prefix}.deleted", prev, None
                else:
                    type_, obj = _update_type(name, prefix, prev, cur), cur
                    previous = {k: prev.get(k) for k in sorted(prev.keys() | cur.keys()) if prev.get(k) != cur.get(k)}
                seq = len(self.events) + len(events)
                data: dict[str, Any] = {"object": orjson.loads(orjson.dumps(obj))}
                if previous is not None:
                    data["previous_attributes"] = previous
                events.append({
                    "id": f"evt_{seq:010d}{obj_id[-8:]}", "object": "event", "api_version": API_VERSION,
                    "created": now, "data": data, "livemode": False, "pending_webhooks": 0,
                    "request": {"id": None, "idempotency_key": None}, "type": type_,
                })
        return events


def _sort_key(obj: dict) -> tuple[int, str]:
    return (obj["created"], obj["id"])


def _update_type(name: str, prefix: str, prev: dict, cur: dict) -> str:
    if name == "subscriptions" and cur.get("status") == "canceled" and prev.get("status") != "canceled":
        return "customer.subscription.deleted"  # Stripe's event for a cancellation
    if name == "invoices" and cur.get("status") != prev.get("status") and cur.get("status") in INVOICE_STATUS_EVENTS:
        return INVOICE_STATUS_EVENTS[cur["status"]]
    return f"{prefix}.updated"


def _embed_first_lines(invoice: dict) -> list[dict]:
    """Keep the first :data:`EMBEDDED_LINES` lines in the invoice (``has_more`` says if
    there are others) and return all of them, for ``/v1/invoices/<id>/lines``."""
    lines = invoice.get("lines")
    if not isinstance(lines, dict) or not isinstance(lines.get("data"), list):
        return []
    every = lines["data"]
    invoice["lines"] = {
        **lines, "data": every[:EMBEDDED_LINES], "has_more": len(every) > EMBEDDED_LINES,
        "url": f"/v1/invoices/{invoice['id']}/lines",
    }
    return every


def _read_objects(path: Path, object_type: str) -> dict[str, dict]:
    objects: dict[str, dict] = {}
    if not path.exists():
        return objects
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc}); fix or regenerate the file") from None
            listable = object_type != "discount"  # discounts have no `created`; they are never listed
            if not (
                isinstance(obj, dict)
                and obj.get("object") == object_type
                and isinstance(obj.get("id"), str)
                and (isinstance(obj.get("created"), int) or not listable)
            ):
                raise ValueError(
                    f"{path}:{lineno}: expected a Stripe {object_type} object with a string id"
                    + (" and an integer created" if listable else "")
                    + "; fix or regenerate the file"
                )
            objects[obj["id"]] = obj
    return objects


@dataclass
class FaultInjector:
    """Deterministic faults: one draw per authenticated request from ``Random(seed)``."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    seed: int = 0
    retry_after: int = 1
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (0 <= self.rate_429 <= 1 and 0 <= self.rate_500 <= 1 and self.rate_429 + self.rate_500 <= 1):
            raise ValueError("rate_429 and rate_500 must be in [0, 1] and sum to at most 1")
        self._rng = random.Random(self.seed)

    def draw(self) -> StripeApiError | None:
        with self._lock:
            r = self._rng.random()
        if r < self.rate_429:
            return StripeApiError(
                429,
                "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
                type_="rate_limit_error",
                code="rate_limit",
                headers={"Retry-After": str(self.retry_after)},
            )
        if r < self.rate_429 + self.rate_500:
            return StripeApiError(500, "An unknown error occurred (injected fault).", type_="api_error")
        return None


@dataclass
class ServerStats:
    """Counters the tests read to prove faults really happened."""

    requests: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, status: int) -> None:
        with self._lock:
            self.requests += 1
            self.rate_limited += status == 429
            self.server_errors += status >= 500


class StripeApp:
    """Request -> (status, headers, body); transport-free so the handler stays a thin adapter."""

    def __init__(self, data: StripeData, api_key: str, faults: FaultInjector) -> None:
        if not api_key:
            raise ValueError(f"an API key is required (set {API_KEY_ENV})")
        self.data = data
        self._api_key = api_key
        self.faults = faults
        self.stats = ServerStats()
        self._request_ids = random.Random(faults.seed + 1)
        self._id_lock = threading.Lock()

    def request_id(self) -> str:
        with self._id_lock:
            return "req_" + "".join(self._request_ids.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=14))

    def handle(self, method: str, target: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json", "Request-Id": self.request_id()}
        try:
            self._authenticate(authorization)
            fault = self.faults.draw()
            if fault:
                raise fault
            status, body = 200, self._route(method, target)
        except StripeApiError as exc:
            status, body = exc.status, {"error": exc.error}
            headers.update(exc.headers)
        self.stats.count(status)
        return status, headers, orjson.dumps(body)

    def _authenticate(self, authorization: str | None) -> None:
        key = _key_from_header(authorization)
        if not key:
            raise StripeApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization "
                "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if not hmac.compare_digest(key.encode(), self._api_key.encode()):
            masked = key[:8] + "*" * max(len(key) - 12, 4) + key[-4:] if len(key) > 12 else "****"
            raise StripeApiError(401, f"Invalid API Key provided: {masked}")

    def _route(self, method: str, target: str) -> dict:
        split = urlsplit(target)
        parts = [p for p in split.path.split("/") if p]
        if method != "GET":
            raise StripeApiError(405, f"This local Stripe server is read-only; {method} {split.path} is not served.")
        lines = len(parts) == 4 and parts[1] == "invoices" and parts[3] == "lines"
        if not (len(parts) in (2, 3) or lines) or parts[0] != "v1" or parts[1] not in (*LISTABLE, EVENTS):
            raise StripeApiError(
                404, f"Unrecognized request URL (GET: {split.path}). Please see https://stripe.com/docs."
            )
        self.data.refresh()
        query = parse_qsl(split.query, keep_blank_values=True)
        resource = parts[1]
        if lines:
            return self._lines(parts[2], split.path, query)
        if len(parts) == 3:
            return self._retrieve(resource, parts[2], query)
        return self._list(resource, split.path, query)

    def _retrieve(self, resource: str, object_id: str, query: list[tuple[str, str]]) -> dict:
        _, expand = _split_params(query, allowed=frozenset())
        obj = self.data.by_id[resource].get(object_id)
        if obj is not None and resource == EVENTS and not self._retained(obj):
            obj = None
        if obj is None:
            raise StripeApiError(
                404, f"No such {_object_name(resource)}: '{object_id}'", code="resource_missing", param="id"
            )
        return self._expand(obj, expand) if expand else obj

    def _retained(self, event: dict) -> bool:
        return event["created"] >= self.data.now() - EVENT_RETENTION_S

    def _lines(self, invoice_id: str, path: str, query: list[tuple[str, str]]) -> dict:
        """``GET /v1/invoices/<id>/lines``: every line, in the invoice's order, cursor-paged."""
        params, expand = _split_params(query, allowed=frozenset({"limit", "starting_after", "ending_before"}))
        if invoice_id not in self.data.by_id["invoices"]:
            raise StripeApiError(404, f"No such invoice: '{invoice_id}'", code="resource_missing", param="invoice")
        lines = self.data.invoice_lines.get(invoice_id, [])
        limit = _limit(params)
        ids = [line.get("id") for line in lines]
        lo, hi = 0, len(lines)
        for name in ("starting_after", "ending_before"):
            if name in params:
                if params[name] not in ids:
                    raise StripeApiError(400, f"No such line item: '{params[name]}'", code="resource_missing", param=name)
                if name == "starting_after":
                    lo = ids.index(params[name]) + 1
                else:
                    hi = ids.index(params[name])
        page = lines[max(lo, hi - limit):hi] if "ending_before" in params else lines[lo:lo + limit]
        more = (hi - limit > lo) if "ending_before" in params else (lo + limit < hi)
        if expand:
            page = [self._expand(line, [p[len("data."):] for p in expand]) for line in page]
        return {"object": "list", "data": page, "has_more": more, "url": path}

    def _list(self, resource: str, path: str, query: list[tuple[str, str]]) -> dict:
        allowed = LIST_PARAMS | set(FILTERS[resource]) | ({"status"} if resource == "subscriptions" else set())
        types: list[str] = []
        if resource == EVENTS:
            allowed |= {"type"}
            types = [v for k, v in query if k == "types" or (k.startswith("types[") and k.endswith("]"))]
            query = [(k, v) for k, v in query if not (k == "types" or (k.startswith("types[") and k.endswith("]")))]
        params, expand = _split_params(query, allowed=frozenset(allowed))
        limit = _limit(params)
        if "starting_after" in params and "ending_before" in params:
            raise StripeApiError(400, "You may only specify one of these parameters: ending_before, starting_after.")
        for path_ in expand:
            if not path_.startswith("data."):
                raise StripeApiError(
                    400, f"Expansions on a list must start with 'data.' (got '{path_}').", param="expand"
                )
        keep = _predicate(resource, params)
        if resource == EVENTS:
            keep = self._event_predicate(params.get("type"), types)
        keys, objs = self.data.keys[resource], self.data.ascending[resource]
        lo, hi = _created_bounds(keys, params)
        if "starting_after" in params:
            hi = min(hi, bisect_left(keys, self._cursor(resource, params, "starting_after")))
            found = _collect(objs, range(hi - 1, lo - 1, -1), keep, limit + 1)
        elif "ending_before" in params:
            lo = max(lo, bisect_right(keys, self._cursor(resource, params, "ending_before")))
            found = _collect(objs, range(lo, hi), keep, limit + 1)
            found = found[:limit][::-1] + found[limit:]
        else:
            found = _collect(objs, range(hi - 1, lo - 1, -1), keep, limit + 1)
        page = found[:limit]
        if expand:
            page = [self._expand(obj, [p[len("data.") :] for p in expand]) for obj in page]
        return {"object": "list", "data": page, "has_more": len(found) > limit, "url": path}

    def _event_predicate(self, type_: str | None, types: list[str]) -> Callable[[dict], bool]:
        if type_ and types:
            raise StripeApiError(400, "You may only specify one of these parameters: type, types.", param="types")
        if len(types) > 20:
            raise StripeApiError(400, "You may pass at most 20 event types.", param="types")
        wanted = set(types)
        prefix = type_[:-1] if type_ and type_.endswith("*") else None

        def keep(event: dict) -> bool:
            if not self._retained(event):
                return False
            if wanted:
                return event["type"] in wanted
            if prefix is not None:
                return event["type"].startswith(prefix)
            return type_ is None or event["type"] == type_

        return keep

    def _cursor(self, resource: str, params: dict[str, str], name: str) -> tuple[int, str]:
        obj = self.data.by_id[resource].get(params[name])
        if obj is None:
            raise StripeApiError(
                400, f"No such {_object_name(resource)}: '{params[name]}'", code="resource_missing", param=name
            )
        return _sort_key(obj)

    def _expand(self, obj: dict, paths: list[str]) -> dict:
        copy = orjson.loads(orjson.dumps(obj))
        for path in paths:
            self._expand_path(copy, path.split("."), path)
        return copy

    def _expand_path(self, obj: dict, steps: list[str], path: str) -> None:
        name, rest = steps[0], steps[1:]
        if name not in obj or (not rest and name not in EXPANDABLE):
            raise StripeApiError(400, f"This property cannot be expanded ({path}).", param="expand")
        if name in EXPANDABLE:
            obj[name] = self._resolve(obj[name], EXPANDABLE[name])
        if rest:
            value = obj[name]
            for target in value if isinstance(value, list) else [value]:
                if isinstance(target, dict):
                    self._expand_path(target, rest, path)

    def _resolve(self, value: Any, collection: str) -> Any:
        if isinstance(value, list):
            return [self._resolve(v, collection) for v in value]
        if isinstance(value, str) and value in self.data.by_id[collection]:
            return orjson.loads(orjson.dumps(self.data.by_id[collection][value]))
        return value


def _key_from_header(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(credentials).decode().partition(":")[0] or None
        except ValueError:
            return None
    return None


def _split_params(query: list[tuple[str, str]], allowed: frozenset[str]) -> tuple[dict[str, str], list[str]]:
    """Query pairs -> (single-valued params, expand paths). ``expand[]`` and ``expand[0]`` both work."""
    params: dict[str, str] = {}
    expand: list[str] = []
    for key, value in query:
        if key == "expand" or (key.startswith("expand[") and key.endswith("]")):
            if value.count(".") >= MAX_EXPAND_DEPTH:  # counted as sent, `data.` included
                raise StripeApiError(
                    400, f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property.", param="expand"
                )
            expand.append(value)
        elif key in allowed:
            params[key] = value
        else:
            raise StripeApiError(400, f"Received unknown parameter: {key}", code="parameter_unknown", param=key)
    return params, expand


def _object_name(resource: str) -> str:
    return "event" if resource == EVENTS else LISTABLE[resource]


def _limit(params: dict[str, str]) -> int:
    limit = _int_param(params, "limit") if "limit" in params else 10
    if not 1 <= limit <= 100:
        raise StripeApiError(400, f"This value must be between 1 and 100 (it currently is '{limit}').", param="limit")
    return limit


def _int_param(params: dict[str, str], name: str) -> int:
    try:
        return int(params[name])
    except ValueError:
        raise StripeApiError(400, f"Invalid integer: {params[name]}", param=name) from None


def _created_bounds(keys: list[tuple[int, str]], params: dict[str, str]) -> tuple[int, int]:
    """Index range ``[lo, hi)`` of the ascending keys that pass the ``created`` filters."""
    lo, hi = 0, len(keys)
    if "created" in params:
        exact = _int_param(params, "created")
        lo, hi = bisect_left(keys, (exact,)), bisect_left(keys, (exact + 1,))
    lower = {"gt": 1, "gte": 0}
    upper = {"lt": 0, "lte": 1}
    for op in CREATED_OPS:
        name = f"created[{op}]"
        if name not in params:
            continue
        bound = _int_param(params, name)
        if op in lower:
            lo = max(lo, bisect_left(keys, (bound + lower[op],)))
        else:
            hi = min(hi, bisect_left(keys, (bound + upper[op],)))
    return lo, max(lo, hi)


def _predicate(resource: str, params: dict[str, str]) -> Callable[[dict], bool]:
    wanted: dict[str, Any] = {}
    for name in FILTERS[resource]:
        if name in params:
            value: Any = params[name]
            if name == "active":
                if value not in ("true", "false"):
                    raise StripeApiError(400, f"Invalid boolean: {value}", param=name)
                value = value == "true"
            wanted[name] = value
    statuses = _subscription_statuses(params.get("status")) if resource == "subscriptions" else None

    def keep(obj: dict) -> bool:
        if statuses is not None and obj.get("status") not in statuses:
            return False
        return all(obj.get(k) == v for k, v in wanted.items())

    return keep


def _subscription_statuses(status: str | None) -> frozenset[str]:
    """Stripe's rule: no status means every status but ``canceled``."""
    if status is None:
        return SUBSCRIPTION_STATUSES - {"canceled"}
    if status == "all":
        return SUBSCRIPTION_STATUSES
    if status == "ended":
        return frozenset({"canceled", "incomplete_expired"})
    if status in SUBSCRIPTION_STATUSES:
        return frozenset({status})
    raise StripeApiError(
        400,
        f"Invalid status: must be one of {', '.join(sorted(SUBSCRIPTION_STATUSES | {'all', 'ended'}))}",
        param="status",
    )


def _collect(objs: list[dict], indexes: range, keep: Callable[[dict], bool], wanted: int) -> list[dict]:
    found: list[dict] = []
    for i in indexes:
        if keep(objs[i]):
            found.append(objs[i])
            if len(found) == wanted:
                break
    return found


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # drain; the server is read-only
        status, headers, body = self.server.app.handle(self.command, self.path, self.headers.get("Authorization"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: StripeApp) -> None:
        super().__init__(address, _Handler)
        self.app = app


@dataclass(frozen=True)
class RunningStripeServer:
    base_url: str
    stats: ServerStats


@contextmanager
def serve(
    data_dir: Path | str,
    *,
    api_key: str,
    port: int = 0,
    host: str = "127.0.0.1",
    rate_429: float = 0.0,
    rate_500: float = 0.0,
    seed: int = 0,
    retry_after: int = 1,
    clock: Callable[[], float] = time.time,
) -> Iterator[RunningStripeServer]:
    """Run the server on a background thread for the ``with`` block (``port=0``: any free port).

    ``clock`` stamps the events (Stripe's time); tests move it to age events past retention."""
    app = StripeApp(
        StripeData(Path(data_dir), clock),
        api_key,
        FaultInjector(rate_429=rate_429, rate_500=rate_500, seed=seed, retry_after=retry_after),
    )
    server = _Server((host, port), app)
    thread = threading.Thread(target=server.serve_forever, name="stripe-server", daemon=True)
    thread.start()
    try:
        yield RunningStripeServer(f"http://{host}:{server.server_port}", app.stats)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _cmd_stripe_server(data: Path, port: int, host: str, rate_429: float, rate_500: float, seed: int) -> int:
    api_key = os.environ.get(API_KEY_ENV, "").strip()
    if not api_key:
        print(f"error: set {API_KEY_ENV} to the secret key clients must send (e.g. sk_test_local)", file=sys.stderr)
        return 2
    try:
        with serve(data, api_key=api_key, port=port, host=host, rate_429=rate_429, rate_500=rate_500,
                   seed=seed) as server:
            print(f"Stripe API for {data} at {server.base_url} (API key from {API_KEY_ENV}); Ctrl-C stops",
                  flush=True)
            threading.Event().wait()
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def register(app: typer.Typer) -> None:
    @app.command("stripe-server")
    def stripe_server(
        data: Annotated[Path, typer.Option(help="simulated company folder (holds stripe/*.jsonl)")],
        port: Annotated[int, typer.Option(help="port (0: a free one)")] = DEFAULT_PORT,
        host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
        rate_429: Annotated[float, typer.Option("--rate-429", help="share of requests answered 429")] = 0.0,
        rate_500: Annotated[float, typer.Option("--rate-500", help="share of requests answered 500")] = 0.0,
        seed: Annotated[int, typer.Option(help="seed of the fault draws")] = 0,
    ) -> int:
        """Serve simulated stripe/*.jsonl as a local Stripe API."""
        return _cmd_stripe_server(data, port, host, rate_429, rate_500, seed)
