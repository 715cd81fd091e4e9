"""A local HubSpot (CRM v3 contacts and lists) for tests and for trying a sync without an account.

It follows developers.hubspot.com/docs/api-reference (CRM objects v3, lists v3, usage
details and error handling) for the calls the HubSpot destination makes:

* auth: ``Authorization: Bearer <private app token>``; otherwise 401
  ``{"status": "error", "category": "INVALID_AUTHENTICATION", ...}``;
* ``POST /crm/v3/objects/contacts/batch/upsert``: ``{"inputs": [{"id", "idProperty",
  "properties", "objectWriteTraceId"}]}``, at most 100 inputs (else 400
  ``VALIDATION_ERROR``), duplicate ids in one batch fail the whole batch (400). Each input
  is applied or rejected on its own: all applied -> 200 ``{"status": "COMPLETE",
  "results": [...]}``; some rejected -> **207** with ``errors[]`` whose ``context``
  names the rejected inputs' ``objectWriteTraceId`` (an invalid email is
  ``INVALID_EMAIL``, an unknown property ``PROPERTY_DOESNT_EXIST``). Results carry the
  record ``id`` (a numeric string, stable per email), ``new`` and the trace id;
* ``POST /crm/v3/objects/contacts/batch/read`` with ``idProperty`` (200, or 207 with
  ``OBJECT_NOT_FOUND`` errors for unknown ids);
* ``GET /crm/v3/lists/object-type-id/0-1/name/{listName}`` (404 when missing) and
  ``POST /crm/v3/lists`` (``processingType`` ``MANUAL`` or ``DYNAMIC``);
* ``PUT /crm/v3/lists/{listId}/memberships/add-and-remove`` with ``recordIdsToAdd`` /
  ``recordIdsToRemove`` (manual lists only, else 400): 200 ``{"recordIdsAdded",
  "recordIdsRemoved", "recordIdsMissing"}``; adding a member twice is a no-op;
* rate limits as HubSpot enforces them for private apps: a rolling 10-second window
  (``max_per_interval``, default 190, scaled by ``interval_ms``) and a daily cap
  (``daily``), each answered with 429 ``{"errorType": "RATE_LIMIT", "policyName":
  "TEN_SECONDLY_ROLLING" | "DAILY", ...}``; every other answer carries
  ``X-HubSpot-RateLimit-Interval-Milliseconds``, ``-Max``, ``-Remaining``,
  ``-Daily`` and ``-Daily-Remaining``. ``POST /__control/new_day`` (``{"daily": n}`` optional) is the midnight reset.

What it does not model: property creation (any lower-case ``snake_case`` property name
exists), associations, merges, search, the lists' filter definitions.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from retention.local_servers.base import CONTROL_PREFIX, LocalServer, register

MAX_BATCH = 100
CONTACT_TYPE = "0-1"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
PROPERTY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
READ_ONLY = {"hs_object_id", "createdate", "lastmodifieddate"}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _error(status: int, category: str, message: str, **extra: Any) -> JSONResponse:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}
    return JSONResponse(body, status_code=status)


@dataclass
class Contact:
    id: str
    properties: dict[str, Any]
    created_at: str
    updated_at: str
    writes: int = 1  # how many upserts touched it (retries of an upsert are harmless)


@dataclass
class ContactList:
    list_id: str
    name: str
    processing_type: str
    members: set[str] = field(default_factory=set)


class RateLimiter:
    """HubSpot's private-app limits: a rolling window and a daily count."""

    def __init__(self, max_per_interval: int, interval_ms: int, daily: int) -> None:
        self.max_per_interval = max_per_interval
        self.interval_ms = interval_ms
        self.daily = daily
        self.used_today = 0
        self._window: deque[float] = deque()

    def admit(self, now: float) -> str | None:
        """None when the request may run (and counts it), else the policy it breaks."""
        horizon = now - self.interval_ms / 1000
        while self._window and self._window[0] <= horizon:
            self._window.popleft()
        if self.used_today >= self.daily:
            return "DAILY"
        if len(self._window) >= self.max_per_interval:
            return "TEN_SECONDLY_ROLLING"
        self._window.append(now)
        self.used_today += 1
        return None

    def headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.interval_ms),
            "X-HubSpot-RateLimit-Max": str(self.max_per_interval),
            "X-HubSpot-RateLimit-Remaining": str(max(self.max_per_interval - len(self._window), 0)),
            "X-HubSpot-RateLimit-Daily": str(self.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(self.daily - self.used_today, 0)),
        }


class HubSpot:
    """The vendor's state and answers, independent of how the server is run."""

    def __init__(
        self,
        token: str,
        *,
        max_per_interval: int = 190,
        interval_ms: int = 10_000,
        daily: int = 625_000,
    ) -> None:
        self.token = token
        self.limits = RateLimiter(max_per_interval, interval_ms, daily)
        self.contacts: dict[str, Contact] = {}  # by lower-cased email
        self.by_id: dict[str, str] = {}  # record id -> email
        self.lists: dict[str, ContactList] = {}
        self._next_id = 1001
        self._next_list = 11

    # -- views for the tests (the server's own, deduplicated count) ------------------
    def view(self) -> dict[str, Any]:
        return {
            "contacts": {
                email: {"id": c.id, "properties": c.properties, "writes": c.writes}
                for email, c in self.contacts.items()
            },
            "lists": {
                lst.name: {
                    "listId": lst.list_id,
                    "processingType": lst.processing_type,
                    "members": sorted(self.by_id[m] for m in lst.members),
                }
                for lst in self.lists.values()
            },
        }

    # -- contacts ---------------------------------------------------------------------
    def batch_upsert(self, body: Any, reject: set[int]) -> tuple[int, dict]:
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs:
            return 400, _validation("inputs must be a non-empty array")
        if len(inputs) > MAX_BATCH:
            return 400, _validation(f"Batch input size {len(inputs)} exceeds the limit of {MAX_BATCH}")
        ids = [str(i.get("id", "")).lower() for i in inputs if isinstance(i, dict)]
        if len(ids) != len(inputs):
            return 400, _validation("each input must be an object")
        if len(set(ids)) != len(ids):
            return 400, _validation("Duplicate IDs found in batch input")
        results, errors = [], []
        started = _now()
        for index, item in enumerate(inputs):
            trace = item.get("objectWriteTraceId")
            problem = self._check_input(item)
            if problem is None and index in reject:
                problem = ("INTERNAL_ERROR", "Unable to process this input, retry later", None)
            if problem is not None:
                code, message, prop = problem
                errors.append(_input_error(code, message, trace, prop))
                continue
            results.append(self._apply(item, trace))
        done = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now()}
        if errors:
            return 207, {**done, "numErrors": len(errors), "errors": errors}
        return 200, done

    def _check_input(self, item: dict) -> tuple[str, str, str | None] | None:
        if item.get("idProperty") != "email":
            return "VALIDATION_ERROR", "idProperty must be a unique property (this server knows 'email')", None
        email = str(item.get("id", ""))
        if not EMAIL_RE.match(email):
            return "INVALID_EMAIL", "Email address is invalid", "email"
        props = item.get("properties")
        if not isinstance(props, dict):
            return "VALIDATION_ERROR", "properties must be an object", None
        for name in props:
            if name in READ_ONLY:
                return "READ_ONLY_VALUE", f"{name} is a read only property; its value cannot be set.", name
            if not PROPERTY_RE.match(name):
                return "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist', name
        if "email" in props and str(props["email"]).lower() != email.lower():
            return "VALIDATION_ERROR", "properties.email differs from the id of an email upsert", "email"
        return None

    def _apply(self, item: dict, trace: str | None) -> dict:
        email = str(item["id"]).lower()
        props = {k: (None if v is None else str(v)) for k, v in item["properties"].items()}
        now = _now()
        contact = self.contacts.get(email)
        new = contact is None
        if contact is None:
            contact = Contact(str(self._next_id), {"email": email}, now, now, writes=0)
            self._next_id += 1
            self.contacts[email] = contact
            self.by_id[contact.id] = email
        contact.properties.update(props)
        contact.updated_at = now
        contact.writes += 1
        result = {
            "id": contact.id,
            "properties": {**contact.properties, "hs_object_id": contact.id},
            "createdAt": contact.created_at,
            "updatedAt": now,
            "archived": False,
            "new": new,
        }
        if trace is not None:
            result["objectWriteTraceId"] = trace
        return result

    def batch_read(self, body: Any) -> tuple[int, dict]:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            return 400, _validation("inputs must be an array")
        if len(body["inputs"]) > MAX_BATCH:
            return 400, _validation(f"Batch input size exceeds the limit of {MAX_BATCH}")
        id_property = body.get("idProperty")
        results, missing = [], []
        for item in body["inputs"]:
            key = str(item.get("id", ""))
            email = key.lower() if id_property == "email" else self.by_id.get(key)
            contact = self.contacts.get(email) if email else None
            if contact is None:
                missing.append(key)
                continue
            results.append({"id": contact.id, "properties": {"email": email, "hs_object_id": contact.id},
                            "createdAt": contact.created_at, "updatedAt": contact.updated_at, "archived": False})
        done = {"status": "COMPLETE", "results": results, "startedAt": _now(), "completedAt": _now()}
        if missing:
            error = {"status": "error", "category": "OBJECT_NOT_FOUND", "message": "Could not get some CONTACT objects",
                     "context": {"ids": missing}}
            return 207, {**done, "numErrors": 1, "errors": [error]}
        return 200, done

    # -- lists ------------------------------------------------------------------------
    def list_by_name(self, object_type: str, name: str) -> tuple[int, dict]:
        for lst in self.lists.values():
            if lst.name == name and object_type == CONTACT_TYPE:
                return 200, {"list": self._list_json(lst)}
        return 404, {"status": "error", "message": f"List does not exist with name {name}.",
                     "correlationId": str(uuid.uuid4()), "category": "OBJECT_NOT_FOUND"}

    def create_list(self, body: Any) -> tuple[int, dict]:
        if not isinstance(body, dict) or not body.get("name") or body.get("objectTypeId") != CONTACT_TYPE:
            return 400, _validation("name and objectTypeId (0-1) are required")
        if body.get("processingType") not in ("MANUAL", "DYNAMIC", "SNAPSHOT"):
            return 400, _validation("processingType must be MANUAL, DYNAMIC or SNAPSHOT")
        if any(lst.name == body["name"] for lst in self.lists.values()):
            return 400, _validation(f"A list named {body['name']} already exists")
        lst = ContactList(str(self._next_list), body["name"], body["processingType"])
        self._next_list += 1
        self.lists[lst.list_id] = lst
        return 200, {"list": self._list_json(lst)}

    def add_and_remove(self, list_id: str, body: Any) -> tuple[int, dict]:
        lst = self.lists.get(list_id)
        if lst is None:
            return 404, {"status": "error", "message": f"List {list_id} does not exist.",
                         "correlationId": str(uuid.uuid4()), "category": "OBJECT_NOT_FOUND"}
        if lst.processing_type == "DYNAMIC":
            return 400, _validation(f"List {list_id} is DYNAMIC: memberships can only change on MANUAL or SNAPSHOT lists")
        if not isinstance(body, dict):
            return 400, _validation("body must be an object")
        to_add = [str(i) for i in body.get("recordIdsToAdd") or []]
        to_remove = [str(i) for i in body.get("recordIdsToRemove") or []]
        added, removed, missing = [], [], []
        for rid in to_add:
            if rid not in self.by_id:
                missing.append(rid)
            elif rid not in lst.members:
                lst.members.add(rid)
                added.append(rid)
        for rid in to_remove:
            if rid not in self.by_id:
                missing.append(rid)
            elif rid in lst.members:
                lst.members.discard(rid)
                removed.append(rid)
        return 200, {"recordIdsAdded": added, "recordIdsRemoved": removed, "recordIdsMissing": missing}

    def _list_json(self, lst: ContactList) -> dict:
        return {"listId": lst.list_id, "name": lst.name, "objectTypeId": CONTACT_TYPE,
                "processingType": lst.processing_type, "size": len(lst.members)}


def _validation(message: str) -> dict:
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": "VALIDATION_ERROR"}


def _input_error(code: str, message: str, trace: str | None, prop: str | None) -> dict:
    context: dict[str, list[str]] = {}
    if trace is not None:
        context["objectWriteTraceId"] = [trace]
    if prop is not None:
        context["propertyName"] = [prop]
    category = "VALIDATION_ERROR" if code != "INTERNAL_ERROR" else "INTERNAL_ERROR"
    return {"status": "error", "category": category, "subCategory": code, "message": message, "context": context}


def _error_body(status: int, code: str) -> dict:
    """HubSpot's error body, for the answers the base injects (faults, its own limiter)."""
    if status == 429:
        return {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()), "policyName": "TEN_SECONDLY_ROLLING"}
    category = "INTERNAL_ERROR" if status >= 500 else code.upper()
    return {"status": "error", "message": f"{status} {code}", "correlationId": str(uuid.uuid4()), "category": category}


@register("hubspot", error_body=_error_body)
def build(server: LocalServer) -> None:
    """Options: ``token`` (required), ``max_per_interval``, ``interval_ms``, ``daily``."""
    opts = server.options
    if not opts.get("token"):
        raise ValueError("the local HubSpot needs the option token (the connection's password)")
    vendor = HubSpot(
        str(opts["token"]),
        max_per_interval=int(opts.get("max_per_interval", 190)),
        interval_ms=int(opts.get("interval_ms", 10_000)),
        daily=int(opts.get("daily", 625_000)),
    )
    app = server.app

    @app.middleware("http")
    async def auth_and_limits(request: Request, call_next):  # type: ignore[no-untyped-def]
        if request.url.path.startswith(CONTROL_PREFIX):
            return await call_next(request)
        if request.headers.get("authorization") != f"Bearer {vendor.token}":
            return _error(401, "INVALID_AUTHENTICATION",
                          "Authentication credentials not found. This API supports OAuth 2.0 authentication.")
        policy = vendor.limits.admit(time.monotonic())
        headers = vendor.limits.headers()
        if policy is not None:
            limit = "daily" if policy == "DAILY" else "ten_secondly_rolling"
            body = {"status": "error", "message": f"You have reached your {limit} limit.", "errorType": "RATE_LIMIT",
                    "correlationId": str(uuid.uuid4()), "policyName": policy, "requestId": str(uuid.uuid4())}
            return JSONResponse(body, status_code=429, headers=headers)
        response = await call_next(request)
        response.headers.update(headers)
        return response

    async def _json(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            return None

    @app.post("/crm/v3/objects/contacts/batch/upsert")
    async def batch_upsert(request: Request) -> JSONResponse:
        body = await _json(request)
        n = len(body.get("inputs") or []) if isinstance(body, dict) else 0
        status, payload = vendor.batch_upsert(body, set(server.partial_rejects(request, n)))
        return JSONResponse(payload, status_code=status)

    @app.post("/crm/v3/objects/contacts/batch/read")
    async def batch_read(request: Request) -> JSONResponse:
        status, payload = vendor.batch_read(await _json(request))
        return JSONResponse(payload, status_code=status)

    @app.get("/crm/v3/lists/object-type-id/{object_type}/name/{name}")
    async def list_by_name(object_type: str, name: str) -> JSONResponse:
        status, payload = vendor.list_by_name(object_type, name)
        return JSONResponse(payload, status_code=status)

    @app.post("/crm/v3/lists")
    async def create_list(request: Request) -> JSONResponse:
        status, payload = vendor.create_list(await _json(request))
        return JSONResponse(payload, status_code=status)

    @app.put("/crm/v3/lists/{list_id}/memberships/add-and-remove")
    async def add_and_remove(list_id: str, request: Request) -> JSONResponse:
        status, payload = vendor.add_and_remove(list_id, await _json(request))
        return JSONResponse(payload, status_code=status)

    @app.post(f"{CONTROL_PREFIX}/new_day")
    async def new_day(request: Request) -> dict:
        """HubSpot's midnight reset of the daily count; ``{"daily": n}`` also sets the cap."""
        body = await _json(request)
        if isinstance(body, dict) and body.get("daily") is not None:
            vendor.limits.daily = int(body["daily"])
        vendor.limits.used_today = 0
        return {"daily": vendor.limits.daily}

    server.view("contacts")(lambda: vendor.view()["contacts"])
    server.view("lists")(lambda: vendor.view()["lists"])
