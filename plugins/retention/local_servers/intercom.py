"""A local Intercom (REST API 2.14) for the tests and for trying a sync without an account.

Every request is validated with ``openapi-core`` against Intercom's own OpenAPI
description (``specs/intercom-api-2.14.yaml``, cut to the operations served here), with
the amendments that description lacks or gets wrong (:func:`amended_spec`): the 409
"already exists with id=" answer of ``POST /contacts``, 429s, a ``POST /tags`` body
accepted by more than one of its ``oneOf`` branches, and company custom attributes that
the description types as strings while its own example sends numbers.

What it does, as Intercom does:

* contacts are unique by ``external_id`` and by ``email``; a create that matches answers
  409 ``conflict`` "A contact matching those details already exists with id=<id>";
* search (``POST /contacts/search``) lags: a contact is found only ``search_lag_s``
  seconds after it was created (Intercom: up to minutes); pages of ``per_page`` (max 150)
  with a ``starting_after`` cursor;
* custom attributes must exist as data attributes before a contact may carry them
  (400 ``parameter_not_found``), and ``POST /data_attributes`` refuses a name twice;
* companies are upserted by ``company_id``; contacts attached by id;
* tags are created by name (case-insensitive), applied one by one or in bulk
  (``POST /tags {name, users}``), removed with ``DELETE /contacts/{id}/tags/{tag_id}``;
* every authenticated answer carries ``X-RateLimit-Limit/Remaining/Reset`` for the
  current 10-second window; past the limit, 429 ``rate_limit_exceeded``;
* errors are Intercom error lists: ``{"type": "error.list", "request_id", "errors": [{code, message}]}``.

Served through :mod:`retention.local_servers.base` (own process, fault injection,
request log); the view ``intercom`` of ``GET /__control/log`` holds what the tests
count: contacts (and any external id or email held twice, which must never happen), tag
applications and removals, companies and data attributes.
"""

from __future__ import annotations

import copy
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from retention.local_servers.base import LocalServer, WindowLimiter, register
from retention.local_servers.specs import INTERCOM_SUBSET, load_subset

API_VERSION = "2.14"
WINDOW_S = 10
# Intercom: 10,000 requests a minute per app, enforced in 10-second windows.
DEFAULT_LIMIT_PER_WINDOW = 10_000 // 6
MAX_PER_PAGE = 150
CONTACT_FIELDS = (
    "role", "external_id", "email", "phone", "name", "avatar", "signed_up_at", "last_seen_at",
    "owner_id", "unsubscribed_from_emails",
)
STANDARD_ATTRIBUTES = {
    "contact": CONTACT_FIELDS,
    "company": ("company_id", "name", "plan", "size", "website", "industry", "monthly_spend", "remote_created_at"),
}


def amended_spec() -> dict[str, Any]:
    """The served subset of Intercom's description, with what it lacks or gets wrong added."""
    spec = copy.deepcopy(load_subset(INTERCOM_SUBSET))
    schemas = spec["components"]["schemas"]
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}}
    # POST /contacts answers 409 when a contact with that external_id or email exists (the
    # message carries its id); every operation may answer 429 (rate_limit_exceeded).
    spec["paths"]["/contacts"]["post"]["responses"]["409"] = {"description": "Conflict", "content": error}
    for item in spec["paths"].values():
        for method, operation in item.items():
            if method in ("get", "post", "put", "delete"):
                operation["responses"]["429"] = {"description": "Too Many Requests", "content": error}
    # {name, users} is valid under both tag_multiple_users_request and create_or_update_tag_request
    # (neither forbids extra properties), so oneOf rejects the documented bulk-tag call: anyOf.
    tag_body = spec["paths"]["/tags"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    tag_body["anyOf"] = tag_body.pop("oneOf")
    # Company custom attributes are typed string, yet the description's own example sends numbers and booleans.
    schemas["create_or_update_company_request"]["properties"]["custom_attributes"]["additionalProperties"] = {
        "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}], "nullable": True,
    }
    return spec


class IntercomError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"type": "error.list", "request_id": str(uuid.uuid4()), "errors": [{"code": code, "message": message}]}


def _new_id() -> str:
    return secrets.token_hex(12)  # Intercom ids look like Mongo ObjectIds: 24 hex digits


@dataclass
class Contact:
    id: str
    created: float
    fields: dict[str, Any]
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    companies: set[str] = field(default_factory=set)


class IntercomStore:
    """The workspace: contacts, companies, tags and data attributes, with Intercom's rules."""

    def __init__(self, search_lag_s: float = 1.0, clock=time.monotonic) -> None:
        self.search_lag_s = search_lag_s
        self.clock = clock
        self.contacts: dict[str, Contact] = {}
        self.by_external_id: dict[str, str] = {}
        self.by_email: dict[str, str] = {}
        self.companies: dict[str, dict[str, Any]] = {}  # Intercom id -> company
        self.company_ids: dict[str, str] = {}  # company_id -> Intercom id
        self.tags: dict[str, dict[str, str]] = {}  # tag id -> {id, name}
        self.data_attributes: dict[str, dict[str, dict[str, Any]]] = {"contact": {}, "company": {}}
        self.next_tag_id = 100
        self.next_attribute_id = 1
        self.events: Counter[str] = Counter()
        self.tagged: Counter[tuple[str, str]] = Counter()  # (contact id, tag id) -> times applied while absent
        self.untagged: Counter[tuple[str, str]] = Counter()

    # --- contacts -----------------------------------------------------------------
    def _conflict(self, fields: dict[str, Any], ignore: str | None = None) -> str | None:
        for index, value in (("external_id", fields.get("external_id")), ("email", fields.get("email"))):
            if value is None:
                continue
            table = self.by_external_id if index == "external_id" else self.by_email
            found = table.get(str(value).lower() if index == "email" else str(value))
            if found and found != ignore:
                return found
        return None

    def _check_custom(self, model: str, custom: dict[str, Any]) -> None:
        for name in custom:
            if name not in self.data_attributes[model]:
                raise IntercomError(400, "parameter_not_found", f"Custom attribute '{name}' does not exist")

    def _index(self, contact: Contact) -> None:
        if contact.fields.get("external_id") is not None:
            self.by_external_id[str(contact.fields["external_id"])] = contact.id
        if contact.fields.get("email") is not None:
            self.by_email[str(contact.fields["email"]).lower()] = contact.id

    def _unindex(self, contact: Contact) -> None:
        if contact.fields.get("external_id") is not None:
            self.by_external_id.pop(str(contact.fields["external_id"]), None)
        if contact.fields.get("email") is not None:
            self.by_email.pop(str(contact.fields["email"]).lower(), None)

    def create_contact(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = {k: body[k] for k in CONTACT_FIELDS if k in body}
        fields.setdefault("role", "user")
        custom = dict(body.get("custom_attributes") or {})
        existing = self._conflict(fields)
        if existing:
            self.events["contact_conflicts"] += 1
            raise IntercomError(409, "conflict", f"A contact matching those details already exists with id={existing}")
        self._check_custom("contact", custom)
        contact = Contact(id=_new_id(), created=self.clock(), fields=fields, custom_attributes=custom)
        self.contacts[contact.id] = contact
        self._index(contact)
        self.events["contacts_created"] += 1
        return self.contact_json(contact)

    def get_contact(self, contact_id: str) -> Contact:
        contact = self.contacts.get(contact_id)
        if contact is None:
            raise IntercomError(404, "not_found", "User Not Found")
        return contact

    def update_contact(self, contact_id: str, body: dict[str, Any]) -> dict[str, Any]:
        contact = self.get_contact(contact_id)
        fields = {k: body[k] for k in CONTACT_FIELDS if k in body}
        custom = dict(body.get("custom_attributes") or {})
        existing = self._conflict(fields, ignore=contact_id)
        if existing:
            raise IntercomError(409, "conflict", f"A contact matching those details already exists with id={existing}")
        self._check_custom("contact", custom)
        self._unindex(contact)
        contact.fields.update(fields)
        contact.custom_attributes.update(custom)
        self._index(contact)
        self.events["contacts_updated"] += 1
        return self.contact_json(contact)

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        paging = body.get("pagination") or {}
        per_page = min(int(paging.get("per_page") or 50), MAX_PER_PAGE)
        after = paging.get("starting_after")
        visible_before = self.clock() - self.search_lag_s
        matches = [
            c for c in self._candidates(body["query"]) if c.created <= visible_before and _matches(c, body["query"])
        ]
        matches.sort(key=lambda c: c.id)
        start = int(after) if after else 0
        page = matches[start:start + per_page]
        total_pages = max(1, -(-len(matches) // per_page)) if matches else 0
        pages: dict[str, Any] = {"type": "pages", "page": start // per_page + 1, "per_page": per_page,
                                 "total_pages": total_pages}
        if start + per_page < len(matches):
            pages["next"] = {"page": start // per_page + 2, "starting_after": str(start + per_page)}
        self.events["searches"] += 1
        return {"type": "list", "data": [self.contact_json(c) for c in page], "total_count": len(matches),
                "pages": pages}

    def _candidates(self, query: dict[str, Any]) -> list[Contact]:
        """The contacts a query can match: through the unique indexes for = / IN on external_id or email."""
        name, op, value = query.get("field"), query.get("operator"), query.get("value")
        if name in ("external_id", "email") and op in ("=", "IN"):
            index = self.by_external_id if name == "external_id" else self.by_email
            values = value if isinstance(value, list) else [value]
            keys = [str(v).lower() if name == "email" else str(v) for v in values]
            return [self.contacts[index[k]] for k in dict.fromkeys(keys) if k in index]
        return list(self.contacts.values())

    def contact_json(self, contact: Contact) -> dict[str, Any]:
        return {
            "type": "contact", "id": contact.id, "workspace_id": "local",
            **{k: contact.fields.get(k) for k in CONTACT_FIELDS},
            "custom_attributes": dict(contact.custom_attributes),
            "tags": {"type": "list", "data": [{"type": "tag", "id": t} for t in sorted(contact.tags)]},
            "companies": {"type": "list", "data": [{"type": "company", "id": c} for c in sorted(contact.companies)]},
        }

    # --- data attributes ----------------------------------------------------------
    def list_data_attributes(self, model: str | None) -> dict[str, Any]:
        models = [model] if model in self.data_attributes else list(self.data_attributes)
        data = []
        for m in models:
            data += [{"type": "data_attribute", "model": m, "name": n, "full_name": n, "custom": False,
                      "api_writable": True, "data_type": "string"} for n in STANDARD_ATTRIBUTES[m]]
            data += list(self.data_attributes[m].values())
        return {"type": "list", "data": data}

    def create_data_attribute(self, body: dict[str, Any]) -> dict[str, Any]:
        model, name = body["model"], body["name"]
        if name in self.data_attributes[model] or name in STANDARD_ATTRIBUTES[model]:
            raise IntercomError(400, "parameter_invalid", f"You already have '{name}' in your {model} data. "
                                "To save this as new data, use a different name.")
        attribute = {"type": "data_attribute", "id": self.next_attribute_id, "model": model, "name": name,
                     "full_name": f"custom_attributes.{name}", "label": name, "data_type": body["data_type"],
                     "custom": True, "api_writable": True, "archived": False}
        self.next_attribute_id += 1
        self.data_attributes[model][name] = attribute
        self.events["data_attributes_created"] += 1
        return attribute

    # --- companies ----------------------------------------------------------------
    def upsert_company(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("company_id"):
            raise IntercomError(400, "parameter_not_found", "company_id not specified")
        custom = dict(body.get("custom_attributes") or {})
        self._check_custom("company", custom)
        intercom_id = self.company_ids.get(body["company_id"])
        if intercom_id is None:
            intercom_id = _new_id()
            self.company_ids[body["company_id"]] = intercom_id
            self.companies[intercom_id] = {"type": "company", "id": intercom_id, "custom_attributes": {}}
            self.events["companies_created"] += 1
        company = self.companies[intercom_id]
        company.update({k: v for k, v in body.items() if k != "custom_attributes"})
        company["custom_attributes"].update(custom)
        return company

    def attach_company(self, contact_id: str, company_id: str) -> dict[str, Any]:
        contact = self.get_contact(contact_id)
        if company_id not in self.companies:
            raise IntercomError(404, "company_not_found", "Company Not Found")
        if company_id not in contact.companies:
            contact.companies.add(company_id)
            self.events["company_attachments"] += 1
        return self.companies[company_id]

    # --- tags ---------------------------------------------------------------------
    def tag_by_name(self, name: str) -> dict[str, str]:
        for tag in self.tags.values():
            if tag["name"].lower() == name.lower():
                return tag
        tag = {"type": "tag", "id": str(self.next_tag_id), "name": name}
        self.next_tag_id += 1
        self.tags[tag["id"]] = tag
        self.events["tags_created"] += 1
        return tag

    def _tag(self, contact: Contact, tag_id: str) -> None:
        if tag_id not in contact.tags:
            contact.tags.add(tag_id)
            self.tagged[(contact.id, tag_id)] += 1

    def post_tags(self, body: dict[str, Any]) -> dict[str, Any]:
        if "companies" in body:
            raise IntercomError(400, "parameter_invalid", "company tagging is not served by the local Intercom")
        users = body.get("users")
        if users is not None:
            contacts = []
            for user in users:
                contact = self.contacts.get(str(user.get("id")))
                if contact is None:  # Intercom fails the whole call, tagging no one
                    raise IntercomError(404, "not_found", "User Not Found")
                contacts.append(contact)
            tag = self.tag_by_name(body["name"])
            for contact in contacts:
                self._tag(contact, tag["id"])
            self.events["bulk_tag_calls"] += 1
            return tag
        if body.get("id"):
            tag = self.tags.get(str(body["id"]))
            if tag is None:
                raise IntercomError(404, "not_found", "Resource Not Found")
            tag["name"] = body["name"]
            return tag
        return self.tag_by_name(body["name"])

    def tag_contact(self, contact_id: str, tag_id: str) -> dict[str, Any]:
        contact = self.get_contact(contact_id)
        tag = self.tags.get(str(tag_id))
        if tag is None:
            raise IntercomError(404, "not_found", "Resource Not Found")
        self._tag(contact, tag["id"])
        return {**tag, "applied_at": int(time.time()), "applied_by": {"type": "admin", "id": "local"}}

    def untag_contact(self, contact_id: str, tag_id: str) -> dict[str, Any]:
        contact = self.get_contact(contact_id)
        tag = self.tags.get(str(tag_id))
        if tag is None:
            raise IntercomError(404, "not_found", "Resource Not Found")
        if tag_id in contact.tags:
            contact.tags.discard(tag_id)
            self.untagged[(contact.id, tag_id)] += 1
        return dict(tag)

    # --- the views the tests count ------------------------------------------------
    def report(self) -> dict[str, Any]:
        external_ids = Counter(str(c.fields["external_id"]) for c in self.contacts.values()
                               if c.fields.get("external_id") is not None)
        emails = Counter(str(c.fields["email"]).lower() for c in self.contacts.values() if c.fields.get("email"))
        tag_names = {t["id"]: t["name"] for t in self.tags.values()}
        return {
            "events": dict(self.events),
            "contacts": [
                {"id": c.id, "external_id": c.fields.get("external_id"), "email": c.fields.get("email"),
                 "custom_attributes": c.custom_attributes, "tags": sorted(tag_names[t] for t in c.tags),
                 "companies": sorted(self.companies[i].get("company_id", "") for i in c.companies)}
                for c in self.contacts.values()
            ],
            "duplicate_external_ids": sorted(k for k, n in external_ids.items() if n > 1),
            "duplicate_emails": sorted(k for k, n in emails.items() if n > 1),
            "tag_applications": sum(self.tagged.values()),
            "tag_removals": sum(self.untagged.values()),
            "tags": sorted(tag_names.values()),
            "companies": sorted(c.get("company_id", "") for c in self.companies.values()),
            "data_attributes": {m: sorted(a) for m, a in self.data_attributes.items()},
        }


def _field_value(contact: Contact, name: str) -> Any:
    if name.startswith("custom_attributes."):
        return contact.custom_attributes.get(name.split(".", 1)[1])
    if name == "id":
        return contact.id
    if name == "tag_id":
        return sorted(contact.tags)
    return contact.fields.get(name)


def _matches(contact: Contact, query: dict[str, Any]) -> bool:
    if query.get("operator") in ("AND", "OR"):
        results = [_matches(contact, q) for q in query.get("value") or []]
        return all(results) if query["operator"] == "AND" else any(results)
    name, op, value = query.get("field"), query.get("operator"), query.get("value")
    if not name or not op:
        raise IntercomError(400, "parameter_invalid", "query requires field, operator and value")
    actual = _field_value(contact, name)
    if name == "email":
        actual = actual.lower() if isinstance(actual, str) else actual
        value = [v.lower() for v in value] if isinstance(value, list) else (
            value.lower() if isinstance(value, str) else value)
    if name == "tag_id":
        if op not in ("=", "!="):
            raise IntercomError(400, "parameter_invalid", "tag_id supports = and != only")
        return (str(value) in actual) == (op == "=")
    as_text = "" if actual is None else str(actual)
    if op == "=":
        return actual is not None and as_text == str(value)
    if op == "!=":
        return as_text != str(value)
    if op in ("IN", "NIN"):
        if not isinstance(value, list):
            raise IntercomError(400, "parameter_invalid", f"{op} requires an array value")
        inside = actual is not None and as_text in {str(v) for v in value}
        return inside if op == "IN" else not inside
    if op == "~":
        return str(value) in as_text
    if op == "!~":
        return str(value) not in as_text
    if op == "^":
        return as_text.startswith(str(value))
    if op == "$":
        return as_text.endswith(str(value))
    try:
        left, right = float(actual), float(value)
    except (TypeError, ValueError):
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


# --- the HTTP app -------------------------------------------------------------------

ROUTES: tuple[tuple[str, str, str], ...] = (
    # (method, path template, store operation); matched in order
    ("POST", "/contacts/search", "search"),
    ("POST", "/contacts", "create_contact"),
    ("GET", "/contacts/{contact_id}", "get_contact"),
    ("PUT", "/contacts/{contact_id}", "update_contact"),
    ("POST", "/contacts/{contact_id}/tags", "tag_contact"),
    ("DELETE", "/contacts/{contact_id}/tags/{tag_id}", "untag_contact"),
    ("POST", "/contacts/{contact_id}/companies", "attach_company"),
    ("POST", "/companies", "upsert_company"),
    ("GET", "/tags", "list_tags"),
    ("POST", "/tags", "post_tags"),
    ("GET", "/data_attributes", "list_data_attributes"),
    ("POST", "/data_attributes", "create_data_attribute"),
)


def match_route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    parts = path.rstrip("/").split("/")
    for route_method, template, operation in ROUTES:
        t_parts = template.split("/")
        if route_method != method or len(t_parts) != len(parts):
            continue
        params: dict[str, str] = {}
        for t, p in zip(t_parts, parts):
            if t.startswith("{"):
                params[t[1:-1]] = p
            elif t != p:
                break
        else:
            return operation, params
    return None


class SpecValidator:
    """Validates a request against the amended description with openapi-core."""

    def __init__(self) -> None:
        from openapi_core import OpenAPI

        self.api = OpenAPI.from_dict(amended_spec())

    def problems(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                 body: bytes, content_type: str) -> list[str]:
        """Why the description rejects the request: field paths and reasons, never values."""
        from openapi_core.datatypes import RequestParameters
        from openapi_core.exceptions import OpenAPIError
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        class _Request:  # the openapi-core request protocol
            host_url = "https://api.intercom.io"

        request = _Request()
        request.path, request.method = path, method.lower()
        request.parameters = RequestParameters(
            query=ImmutableMultiDict(query), header=Headers(headers), cookie=ImmutableMultiDict(), path={},
        )
        request.content_type = content_type or "application/json"
        request.body = body or None
        try:
            self.api.validate_request(request)
        except OpenAPIError as exc:
            from jsonschema.exceptions import best_match

            found = []
            for error in getattr(exc.__cause__, "schema_errors", None) or ():
                while error.context:  # oneOf/anyOf: the branch that came closest
                    error = best_match(error.context)
                where = ".".join(str(p) for p in error.absolute_path) or "body"
                found.append(f"{where}: {error.validator} {error.validator_value!r}"[:200])
            return found or [type(exc).__name__]
        return []


def intercom_error_body(status: int, code: str) -> dict[str, Any]:
    """The error list Intercom answers, for the base's injected faults and rate limits."""
    messages = {
        "rate_limited": ("rate_limit_exceeded", "Exceeded rate limit in 10_seconds"),
        "internal_error": ("server_error", "Server Error"),
        "timeout": ("service_unavailable", "Sorry, the API service is temporarily unavailable"),
    }
    code, message = messages.get(code, (code, code.replace("_", " ")))
    return error_body(code, message)


@register("intercom", error_body=intercom_error_body)
def build(server: LocalServer) -> None:
    """Options: ``token``, ``search_lag_s`` (default 1), ``validate`` (default true).

    The rate limit defaults to Intercom's 10,000 a minute in 10-second windows; pass
    ``rate_limit_per_s`` (and ``rate_limit_window_s=10``) to scale it down.
    """
    opts = server.options
    token = str(opts.get("token") or "local-intercom-token")
    if server.limiter.rate_limit_per_s is None and opts.get("rate_limited", True):
        server.limiter = WindowLimiter(DEFAULT_LIMIT_PER_WINDOW / WINDOW_S, WINDOW_S)
    store = IntercomStore(search_lag_s=float(opts.get("search_lag_s", 1.0)))
    validator = SpecValidator() if opts.get("validate", True) else None
    app = server.app

    def answer(status: int, body: Any) -> Response:
        return Response(orjson.dumps(body), status_code=status, media_type="application/json")

    @server.view("intercom")
    def view() -> dict[str, Any]:
        return store.report()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def api(path: str, request: Request) -> Response:
        path = "/" + path
        body = await request.body()
        if request.headers.get("authorization") != f"Bearer {token}":
            return answer(401, error_body("unauthorized", "Access Token Invalid"))
        route = match_route(request.method, path)
        if route is None:
            return answer(404, error_body("not_found", "Resource Not Found"))
        operation, params = route
        if validator is not None:
            problems = validator.problems(request.method, path, dict(request.query_params), dict(request.headers),
                                          body, request.headers.get("content-type", ""))
            if problems:
                return answer(400, error_body("parameter_invalid", "; ".join(problems)[:500]))
        payload = orjson.loads(body) if body else {}
        if operation == "post_tags" and payload.get("users"):
            # an injected "partial": some users are unknown, so Intercom fails the whole call
            for index in server.partial_rejects(request, len(payload["users"])):
                payload["users"][index] = {"id": "missing-" + str(index)}
        try:
            return answer(200, dispatch(store, operation, params, payload, dict(request.query_params)))
        except IntercomError as exc:
            return answer(exc.status, error_body(exc.code, exc.message))


def dispatch(store: IntercomStore, operation: str, params: dict[str, str], body: Any,
             query: dict[str, str]) -> dict[str, Any]:
    if operation == "search":
        return store.search(body)
    if operation == "create_contact":
        return store.create_contact(body)
    if operation == "get_contact":
        return store.contact_json(store.get_contact(params["contact_id"]))
    if operation == "update_contact":
        return store.update_contact(params["contact_id"], body)
    if operation == "tag_contact":
        return store.tag_contact(params["contact_id"], str(body["id"]))
    if operation == "untag_contact":
        return store.untag_contact(params["contact_id"], params["tag_id"])
    if operation == "attach_company":
        return store.attach_company(params["contact_id"], str(body["id"]))
    if operation == "upsert_company":
        return store.upsert_company(body)
    if operation == "list_tags":
        return {"type": "list", "data": list(store.tags.values())}
    if operation == "post_tags":
        return store.post_tags(body)
    if operation == "list_data_attributes":
        return store.list_data_attributes(query.get("model"))
    if operation == "create_data_attribute":
        return store.create_data_attribute(body)
    raise AssertionError(operation)  # pragma: no cover
