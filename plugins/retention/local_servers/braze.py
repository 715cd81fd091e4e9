"""A local Braze REST API (``/users/track``) for tests and for trying a sync without an account.

It follows braze.com/docs/api (``POST /users/track``, "API errors and responses", rate
limits) for the call the Braze destination makes:

* auth: ``Authorization: Bearer <REST API key>``; otherwise 401 ``{"message": "Invalid API key: ..."}``;
* ``POST /users/track`` with ``attributes``, ``events`` and ``purchases`` arrays: at most
  75 objects **in total** per request (else 400, nothing applied). Each attribute object
  names its user by ``external_id`` (or ``email``); ``_update_existing_only`` (default
  false; true with a ``user_alias``) keeps unknown users from being created. An array custom
  attribute accepts ``{"add": [...], "remove": [...]}`` (adding a present value and
  removing an absent one are no-ops). Objects are applied or rejected one by one: the
  answer is 201 ``{"message": "success", "attributes_processed": n}``, with
  ``"errors": [{"type", "input_array", "index"}]`` for the rejected ones (e.g.
  ``EMAIL_BAD_FORMAT``, a missing identifier, an ``external_id`` over 987 bytes);
* rate limits: the base's fixed windows (``rate_limit_per_s`` over
  ``rate_limit_window_s``; Braze documents 3,000 per 3 s, windows reset on the clock),
  with ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch
  seconds) on every answer; over it, 429.

Not modelled: events and purchases count toward the 75 but are not stored; user aliases,
``braze_id`` and phone identify nobody here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from retention.local_servers.base import CONTROL_PREFIX, LocalServer, register

MAX_OBJECTS = 75
MAX_EXTERNAL_ID_BYTES = 987
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
RESERVED = {"external_id", "email", "braze_id", "user_alias", "phone", "_update_existing_only"}


@dataclass
class User:
    attributes: dict[str, Any]
    writes: int = 0


class Braze:
    """The vendor's state and answers, independent of how the server is run."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.users: dict[str, User] = {}  # by external_id, or "email:<address>" for email-only users

    def view(self) -> dict[str, Any]:
        return {"users": {key: {"attributes": u.attributes, "writes": u.writes} for key, u in self.users.items()}}

    def track(self, body: Any, reject: set[int]) -> tuple[int, dict]:
        if not isinstance(body, dict):
            return 400, {"message": "Bad Syntax: the request body must be a JSON object"}
        arrays = {name: body.get(name) or [] for name in ("attributes", "events", "purchases")}
        if not all(isinstance(v, list) for v in arrays.values()):
            return 400, {"message": "attributes, events and purchases must be arrays"}
        total = sum(len(v) for v in arrays.values())
        if total == 0:
            return 400, {"message": "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."}
        if total > MAX_OBJECTS:
            return 400, {"message": f"Too many objects: at most {MAX_OBJECTS} attributes, events and purchases combined per request"}
        errors: list[dict] = []
        processed = 0
        for index, obj in enumerate(arrays["attributes"]):
            problem = _check_attributes(obj)
            if problem is None and index in reject:
                problem = "INTERNAL_ERROR_RETRY"
            if problem is not None:
                errors.append({"type": problem, "input_array": "attributes", "index": index})
                continue
            if self._apply(obj):
                processed += 1
        answer: dict[str, Any] = {"message": "success", "attributes_processed": processed}
        if errors:
            answer["errors"] = errors
        return 201, answer

    def _apply(self, obj: dict) -> bool:
        key = obj["external_id"] if "external_id" in obj else f"email:{obj['email'].lower()}"
        update_only = obj.get("_update_existing_only", "user_alias" in obj)
        user = self.users.get(key)
        if user is None:
            if update_only:
                return False
            user = self.users[key] = User({"email": obj["email"].lower()} if "email" in obj else {})
        for name, value in obj.items():
            if name in ("external_id", "_update_existing_only"):
                continue
            if isinstance(value, dict) and set(value) <= {"add", "remove"}:
                current = list(user.attributes.get(name) or [])
                for item in value.get("add", []):
                    if item not in current:
                        current.append(item)
                current = [item for item in current if item not in value.get("remove", [])]
                user.attributes[name] = current
            else:
                user.attributes[name] = value
        user.writes += 1
        return True


def _check_attributes(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return "BAD_ATTRIBUTE_OBJECT"
    if not any(k in obj for k in ("external_id", "email", "braze_id", "user_alias", "phone")):
        return "MISSING_IDENTIFIER: 'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
    if "external_id" in obj and (not isinstance(obj["external_id"], str) or not obj["external_id"]):
        return "BAD_EXTERNAL_ID"
    if "external_id" in obj and len(obj["external_id"].encode()) > MAX_EXTERNAL_ID_BYTES:
        return "EXTERNAL_USER_ID_TOO_LARGE"
    if "email" in obj and not (isinstance(obj["email"], str) and EMAIL_RE.match(obj["email"])):
        return "EMAIL_BAD_FORMAT"
    for name, value in obj.items():
        if isinstance(value, dict) and not set(value) <= {"add", "remove", "inc"}:
            return f"BAD_ATTRIBUTE_VALUE: {name}"
        if isinstance(value, dict) and not all(isinstance(v, list) for v in value.values()):
            return f"BAD_ARRAY_MODIFICATION: {name}"
    return None


def _error_body(status: int, code: str) -> dict:
    return {"message": code.replace("_", " ")}


@register("braze", error_body=_error_body)
def build(server: LocalServer) -> None:
    """Options: ``api_key`` (required). The limit is the base's ``rate_limit_per_s`` over
    ``rate_limit_window_s`` (Braze: 1000 over 3 s), with Braze's ``X-RateLimit-*`` headers."""
    if not server.options.get("api_key"):
        raise ValueError("the local Braze needs the option api_key (the connection's password)")
    vendor = Braze(str(server.options["api_key"]))
    app = server.app

    @app.middleware("http")
    async def auth(request: Request, call_next):  # type: ignore[no-untyped-def]
        if request.url.path.startswith(CONTROL_PREFIX):
            return await call_next(request)
        if request.headers.get("authorization") != f"Bearer {vendor.api_key}":
            return JSONResponse({"message": "Invalid API key: the key is missing, wrong or revoked"}, status_code=401)
        return await call_next(request)

    @app.post("/users/track")
    async def track(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        n = len(body.get("attributes") or []) if isinstance(body, dict) else 0
        status, payload = vendor.track(body, set(server.partial_rejects(request, n)))
        return JSONResponse(payload, status_code=status)

    server.view("users")(lambda: vendor.view()["users"])
