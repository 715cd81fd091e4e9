"""Airflow hook for Intercom's REST API, version 2.14 (connection ``intercom_default``).

The connection's **password** is an access token (a private app's, or an OAuth token
with the scopes *Read and list users and companies*, *Write users and companies*, *Read
and write users*, *Read tags* and *Write tags*); its **host** is the API base: empty for ``https://api.intercom.io``,
``https://api.eu.intercom.io`` or ``https://api.au.intercom.io`` for a workspace hosted
there, or a local server's URL. Example::

    AIRFLOW_CONN_INTERCOM_DEFAULT='{"conn_type": "retention_intercom", "password": "dG9r..."}'

Budget, 429s and retries come from :class:`retention.hooks.http.HttpHook`: Intercom
allows 10,000 calls a minute per app (25,000 per workspace), enforced in 10-second
windows with ``X-RateLimit-Reset`` in epoch seconds. Every call made here is safe to
repeat: updates and tags are idempotent, and a repeated create answers 409 "already
exists with id=...", which :meth:`IntercomHook.create_contact` turns into that id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from retention.hooks.http import HttpHookError
from retention.hooks.rest import RestHook

API_VERSION = "2.14"
SEARCH_PAGE = 50  # contacts per search page (and so ids per IN query)
_EXISTING_ID = re.compile(r"already exists with id=([0-9a-zA-Z]+)")


class IntercomError(HttpHookError):
    """Intercom refused a call; the message names the call, status and Intercom's error code."""


class IntercomHook(RestHook):
    """Contacts, companies, tags and data attributes, one call per method."""

    conn_name_attr = "intercom_conn_id"
    default_conn_name = "intercom_default"
    conn_type = "retention_intercom"
    hook_name = "Intercom (retention sync)"

    default_base_url: ClassVar[str | None] = "https://api.intercom.io"
    # 99% of 10,000 a minute, no burst: at most 1,651 calls in any 10-second window of 1,666
    rate_limit_per_s: ClassVar[float] = 10_000 / 60 * 0.99
    burst: ClassVar[float] = 1.0
    reset_header, reset_kind = "X-RateLimit-Reset", "epoch"
    error_class = IntercomError
    retryable_4xx = frozenset({404, 409})

    def __init__(self, intercom_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(intercom_conn_id, **kwargs)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login", "schema", "port"],
            "relabeling": {"host": "API base URL (empty: api.intercom.io)", "password": "Access token"},
            "placeholders": {"host": "https://api.eu.intercom.io", "extra": '{"rate_limit_per_s": 165}'},
        }

    def auth_headers(self) -> dict[str, str]:
        token = self.connection.password
        if not token:
            raise IntercomError(
                f"Airflow connection {self.conn_id!r} has no password: set it to an Intercom access token.",
                retryable=False,
            )
        return {"Authorization": f"Bearer {token}", "Intercom-Version": API_VERSION, "Accept": "application/json"}

    def error_code(self, response: Any) -> str | None:
        try:
            errors = response.json().get("errors") or []
            return str(errors[0].get("code")) if errors else None
        except (ValueError, AttributeError):
            return None

    # one method per call ---------------------------------------------------------------

    def shown_path(self, path: str) -> str:
        """The path with Intercom ids replaced, so a message names the call, not the contact."""
        return re.sub(r"/(contacts|tags|companies)/[^/]+", r"/\1/{id}", path)

    def call_json(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                  ok: Iterable[int] = (200,)) -> tuple[int, dict[str, Any]]:
        """(status, body) of one call; a status other than ``ok`` raises :class:`IntercomError`."""
        response = self.call(method, path, json=json, params=params, ok=tuple(ok))
        try:
            return response.status_code, (response.json() if response.content else {})
        except ValueError:
            return response.status_code, {}

    def search_contacts(self, field: str, values: Sequence[str]) -> dict[str, str]:
        """``value -> contact id`` for contacts whose ``field`` (``external_id`` or ``email``) is in ``values``.

        Search lags creation by up to minutes: a contact missing here may still exist
        (:meth:`create_contact` handles that through the 409 answer).
        """
        found: dict[str, str] = {}
        wanted = list(dict.fromkeys(values))
        for start in range(0, len(wanted), SEARCH_PAGE):
            chunk = wanted[start:start + SEARCH_PAGE]
            query: dict[str, Any] = {"query": {"field": field, "operator": "IN", "value": chunk},
                                     "pagination": {"per_page": SEARCH_PAGE}}
            while True:
                _, body = self.call_json("POST", "/contacts/search", json=query)
                for contact in body.get("data") or []:
                    value = contact.get(field)
                    if value is not None:
                        found.setdefault(value.lower() if field == "email" else str(value), contact["id"])
                after = ((body.get("pages") or {}).get("next") or {}).get("starting_after")
                if not after:
                    break
                query = {**query, "pagination": {"per_page": SEARCH_PAGE, "starting_after": after}}
        return found

    def create_contact(self, fields: dict[str, Any]) -> tuple[str, bool]:
        """(contact id, created): a new contact, or the existing one a 409 names."""
        status, body = self.call_json("POST", "/contacts", json=fields, ok=(200, 409))
        if status == 200:
            return body["id"], True
        for error in body.get("errors") or []:
            match = _EXISTING_ID.search(str(error.get("message") or ""))
            if match:
                return match.group(1), False
        raise IntercomError("Intercom POST /contacts answered 409 without the existing contact's id",
                            status=409, code="conflict")

    def get_contact(self, contact_id: str) -> dict[str, Any]:
        _, body = self.call_json("GET", f"/contacts/{contact_id}")
        return body

    def update_contact(self, contact_id: str, fields: dict[str, Any]) -> None:
        self.call_json("PUT", f"/contacts/{contact_id}", json=fields)

    def data_attributes(self, model: str) -> set[str]:
        _, body = self.call_json("GET", "/data_attributes", params={"model": model})
        return {str(a["name"]) for a in body.get("data") or []}

    def create_data_attribute(self, model: str, name: str, data_type: str) -> None:
        """Create a custom attribute; one that already exists (a rerun, a concurrent run) is fine."""
        status, body = self.call_json("POST", "/data_attributes", json={"name": name, "model": model, "data_type": data_type},
                                 ok=(200, 400))
        if status == 400 and not any("already have" in str(e.get("message")) for e in body.get("errors") or []):
            raise IntercomError(f"Intercom refused data attribute {name!r} ({data_type})", status=400,
                                code=self.error_code_from(body), retryable=False)

    def upsert_company(self, company: dict[str, Any]) -> str:
        _, body = self.call_json("POST", "/companies", json=company)
        return str(body["id"])

    def attach_company(self, contact_id: str, company_id: str) -> None:
        self.call_json("POST", f"/contacts/{contact_id}/companies", json={"id": company_id})

    def tag_id(self, name: str) -> str:
        """The id of tag ``name``, created when missing (Intercom matches names case-insensitively)."""
        _, body = self.call_json("POST", "/tags", json={"name": name})
        return str(body["id"])

    def tag_contacts(self, name: str, contact_ids: Sequence[str]) -> None:
        """Tag many contacts in one call; Intercom fails the whole call when one id is unknown."""
        self.call_json("POST", "/tags", json={"name": name, "users": [{"id": i} for i in contact_ids]})

    def tag_contact(self, contact_id: str, tag_id: str) -> None:
        self.call_json("POST", f"/contacts/{contact_id}/tags", json={"id": tag_id})

    def untag_contact(self, contact_id: str, tag_id: str) -> None:
        """Remove a tag; a contact that no longer exists has nothing left to remove."""
        self.call_json("DELETE", f"/contacts/{contact_id}/tags/{tag_id}", ok=(200, 404))

    @staticmethod
    def error_code_from(body: dict[str, Any]) -> str | None:
        errors = body.get("errors") or []
        return str(errors[0].get("code")) if errors else None

