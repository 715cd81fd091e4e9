"""A local Customer.io Track API (v1) for tests and for trying a sync without an account.

It follows docs.customer.io (Track API reference, "Invalid Track API requests", API
limits) for the calls the Customer.io destination makes:

* auth: HTTP Basic ``site_id:api_key``; otherwise 401 ``{"meta": {"error": "Unauthorized request"}}``;
* ``PUT /api/v1/customers/{identifier}``: create or update a person. The identifier is
  the ``id`` or, in workspaces identified by email, the email (``id_type`` decides which
  this server expects). Attribute limits as documented: at most 300 attributes, names
  up to 150 bytes, values up to 1,000 bytes; a breach is 400 ``{"meta": {"error":
  "..."}}`` naming the attribute, and nothing of that request is applied. 200 ``{}``;
* ``POST /api/v1/segments/{segment_id}/add_customers`` and ``/remove_customers`` with
  ``{"ids": [...]}`` and ``?id_type=id|email|cio_id``: manual segments only, at most
  1,000 ids a call (else 400). Unknown people are created by ``add_customers``, as
  Customer.io does. A data-driven segment answers 400. 200 ``{}``;
* the fair-use limit (about 100 requests/s) is the base server's ``rate_limit_per_s``.

Both regions share this contract: ``track.customer.io`` (US) and ``track-eu.customer.io``
(EU); the connection picks the host.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from fastapi import Request
from fastapi.responses import JSONResponse

from retention.local_servers.base import CONTROL_PREFIX, LocalServer, register

MAX_SEGMENT_IDS = 1000
MAX_ATTRIBUTES = 300
MAX_NAME_BYTES = 150
MAX_VALUE_BYTES = 1000
ID_TYPES = ("id", "email", "cio_id")


def _meta_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"meta": {"error": message}}, status_code=status)


@dataclass
class Person:
    cio_id: str
    attributes: dict[str, Any]
    writes: int = 0


@dataclass
class Segment:
    segment_id: str
    manual: bool = True
    members: set[str] = field(default_factory=set)  # cio ids


class CustomerIO:
    """The vendor's state and answers, independent of how the server is run."""

    def __init__(self, site_id: str, api_key: str, *, id_type: str = "id", dynamic_segments: tuple[str, ...] = ()) -> None:
        if id_type not in ("id", "email"):
            raise ValueError("id_type must be 'id' or 'email'")
        self.auth = "Basic " + base64.b64encode(f"{site_id}:{api_key}".encode()).decode()
        self.id_type = id_type
        self.people: dict[str, Person] = {}  # by identifier (id or email, lower-cased)
        self.segments: dict[str, Segment] = {s: Segment(s, manual=False) for s in dynamic_segments}
        self._next = 1

    def view(self) -> dict[str, Any]:
        by_cio = {p.cio_id: key for key, p in self.people.items()}
        return {
            "people": {key: {"attributes": p.attributes, "writes": p.writes} for key, p in self.people.items()},
            "segments": {s.segment_id: sorted(by_cio[m] for m in s.members) for s in self.segments.values()},
        }

    def _person(self, identifier: str) -> Person:
        person = self.people.get(identifier)
        if person is None:
            person = Person(f"cio_{self._next:08x}", {self.id_type: identifier})
            self._next += 1
            self.people[identifier] = person
        return person

    def identify(self, identifier: str, body: Any) -> tuple[int, dict]:
        identifier = unquote(identifier).strip()
        if self.id_type == "email":
            identifier = identifier.lower()
        if not identifier:
            return 400, {"meta": {"error": "id attribute cannot be an empty string"}}
        if not isinstance(body, dict):
            return 400, {"meta": {"error": "request body must be a JSON object"}}
        if len(body) > MAX_ATTRIBUTES:
            return 400, {"meta": {"error": f"cannot identify more than {MAX_ATTRIBUTES} attributes in one request"}}
        for name, value in body.items():
            if len(name.encode()) > MAX_NAME_BYTES:
                return 400, {"meta": {"error": f"attribute name cannot be longer than {MAX_NAME_BYTES} bytes"}}
            if len(str(value).encode()) > MAX_VALUE_BYTES:
                return 400, {"meta": {"error": f"value for attribute '{name}' cannot be longer than {MAX_VALUE_BYTES} bytes"}}
        person = self._person(identifier)
        person.attributes.update({k: v for k, v in body.items() if k not in ("id", "cio_id")})
        person.writes += 1
        return 200, {}

    def segment_change(self, segment_id: str, add: bool, id_type: str, body: Any) -> tuple[int, dict]:
        if id_type not in ID_TYPES:
            return 400, {"meta": {"error": "id_type must be one of id, email, cio_id"}}
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            return 400, {"meta": {"error": "ids must be an array of non-empty strings"}}
        if len(ids) > MAX_SEGMENT_IDS:
            return 400, {"meta": {"error": f"cannot add or remove more than {MAX_SEGMENT_IDS} ids in one request"}}
        if id_type not in ("cio_id", self.id_type):
            return 400, {"meta": {"error": f"this workspace identifies people by {self.id_type}"}}
        segment = self.segments.setdefault(segment_id, Segment(segment_id))
        if not segment.manual:
            return 400, {"meta": {"error": "segment is not a manual segment"}}
        for raw in ids:
            key = raw.lower() if id_type == "email" else raw
            if id_type == "cio_id":
                person = next((p for p in self.people.values() if p.cio_id == key), None)
                if person is None:
                    continue
            else:
                person = self._person(key) if add else self.people.get(key)
            if person is None:
                continue
            (segment.members.add if add else segment.members.discard)(person.cio_id)
        return 200, {}


def _error_body(status: int, code: str) -> dict:
    return {"meta": {"error": code.replace("_", " ")}}


@register("customerio", error_body=_error_body)
def build(server: LocalServer) -> None:
    """Options: ``site_id`` and ``api_key`` (required), ``id_type``, ``dynamic_segments``."""
    opts = server.options
    if not opts.get("site_id") or not opts.get("api_key"):
        raise ValueError("the local Customer.io needs the options site_id and api_key")
    vendor = CustomerIO(str(opts["site_id"]), str(opts["api_key"]), id_type=str(opts.get("id_type", "id")),
                        dynamic_segments=tuple(str(s) for s in opts.get("dynamic_segments", ())))
    app = server.app

    @app.middleware("http")
    async def auth(request: Request, call_next):  # type: ignore[no-untyped-def]
        if request.url.path.startswith(CONTROL_PREFIX):
            return await call_next(request)
        if request.headers.get("authorization") != vendor.auth:
            return _meta_error(401, "Unauthorized request")
        return await call_next(request)

    async def _json(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            return None

    @app.put("/api/v1/customers/{identifier:path}")
    async def identify(identifier: str, request: Request) -> JSONResponse:
        status, payload = vendor.identify(identifier, await _json(request))
        return JSONResponse(payload, status_code=status)

    @app.post("/api/v1/segments/{segment_id}/add_customers")
    async def add_customers(segment_id: str, request: Request, id_type: str = "id") -> JSONResponse:
        status, payload = vendor.segment_change(segment_id, True, id_type, await _json(request))
        return JSONResponse(payload, status_code=status)

    @app.post("/api/v1/segments/{segment_id}/remove_customers")
    async def remove_customers(segment_id: str, request: Request, id_type: str = "id") -> JSONResponse:
        status, payload = vendor.segment_change(segment_id, False, id_type, await _json(request))
        return JSONResponse(payload, status_code=status)

    server.view("people")(lambda: vendor.view()["people"])
    server.view("segments")(lambda: vendor.view()["segments"])
