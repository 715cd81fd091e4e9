"""Airflow hook for HubSpot's CRM v3 API (connection type ``retention_hubspot``), shaped like the Slack hook.

The connection's **password** is a private app's access token (scopes
``crm.objects.contacts.read``, ``crm.objects.contacts.write``, ``crm.lists.read``,
``crm.lists.write``); its **host** is the API base URL, empty for ``https://api.hubapi.com``
(``http://127.0.0.1:<port>`` for the local server). Extras: ``rate_limit_per_s`` (below),
``timeout``.

The rate budget, retries and ``Retry-After`` handling are the shared HTTP base's; every
call here is safe to repeat (an upsert by a unique property, list membership add/remove,
reads), so 5xx and timeouts are retried. The budget is HubSpot's rolling 10-second
window: the extra ``rate_limit_per_s`` is the account's limit per 10 s divided by ten
(default 9.5, i.e. 95 of the Free/Starter 100; 19 for Professional/Enterprise's 190).
The daily cap is read from ``X-HubSpot-RateLimit-Daily-Remaining`` on every answer: once
it is spent, every further call raises :class:`DailyLimitReached` without being sent
(nothing succeeds before HubSpot's midnight reset). Answers are read raw (a 207 is a
partial success, not an error), and no message holds the token or a property value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from retention.hooks.http import HttpHookError
from retention.hooks.rest import RestHook

API_BASE = "https://api.hubapi.com"
CONTACTS = "/crm/v3/objects/contacts"
CONTACT_TYPE = "0-1"
MAX_BATCH = 100
DAILY_MESSAGE = (
    "HubSpot's daily API limit is spent (X-HubSpot-RateLimit-Daily-Remaining 0, 429 policy DAILY): "
    "not sent in this run; the next run after HubSpot's midnight reset sends it"
)


class DailyLimitReached(HttpHookError):
    """HubSpot's daily request cap is spent; nothing succeeds before its midnight reset."""


@dataclass(frozen=True)
class InputError:
    category: str
    sub_category: str | None
    status: int

    @property
    def retryable(self) -> bool:
        return self.category not in ("VALIDATION_ERROR", "OBJECT_NOT_FOUND")

    def describe(self) -> str:
        code = self.category if self.sub_category in (None, self.category) else f"{self.category}/{self.sub_category}"
        return f"HubSpot rejected this input ({self.status} {code})"


@dataclass
class UpsertAnswer:
    status: int
    ids: dict[str, str] = field(default_factory=dict)  # trace id -> record id
    errors: dict[str, InputError] = field(default_factory=dict)  # trace id -> why


class HubSpotHook(RestHook):
    conn_name_attr = "hubspot_conn_id"
    default_conn_name = "hubspot_default"
    conn_type = "retention_hubspot"
    hook_name = "HubSpot"

    default_base_url = API_BASE
    rate_limit_per_s = 9.5  # 95% of the Free/Starter 100 per rolling 10 s; extra rate_limit_per_s: 19 on Pro
    burst = 1.0  # a rolling window forgives no burst on top of the rate
    reset_header = None  # HubSpot sends the window's length, not its reset

    def __init__(self, hubspot_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(hubspot_conn_id, **kwargs)
        self.daily_remaining: int | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login", "schema", "port"],
            "relabeling": {"host": "API base URL (empty: api.hubapi.com)", "password": "Private app access token"},
            "placeholders": {"extra": '{"rate_limit_per_s": 9.5}'},
        }

    def auth_headers(self) -> dict[str, str]:
        if not self.connection.password:
            raise HttpHookError(
                f"Airflow connection {self.conn_id!r} has no password: set it to the HubSpot private app token.",
                retryable=False,
            )
        return super().auth_headers()

    def error_code(self, response: Any) -> str | None:
        try:
            body = response.json()
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        return body.get("policyName") or body.get("category")

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """As :meth:`RestHook.call`, stopping cleanly once HubSpot's daily cap is spent."""
        if self.daily_remaining is not None and self.daily_remaining <= 0:
            raise DailyLimitReached(DAILY_MESSAGE, status=429, code="DAILY")
        response = super().call(method, path, **kwargs)
        remaining = response.headers.get("X-HubSpot-RateLimit-Daily-Remaining")
        if remaining is not None and remaining.strip().isdigit():
            self.daily_remaining = int(remaining)
        return response

    # -- contacts -----------------------------------------------------------------------
    def upsert_contacts(self, inputs: Sequence[tuple[str, str, dict[str, Any]]], *, id_property: str = "email") -> UpsertAnswer:
        """Upsert ``(trace_id, key, properties)`` rows (at most 100); per-row ids and errors."""
        if len(inputs) > MAX_BATCH:
            raise ValueError(f"HubSpot takes at most {MAX_BATCH} inputs per batch")
        body = {
            "inputs": [
                {"id": key, "idProperty": id_property, "properties": _strings(props), "objectWriteTraceId": trace}
                for trace, key, props in inputs
            ]
        }
        response = self.call("POST", f"{CONTACTS}/batch/upsert", json=body, ok=(200, 207))
        data = response.json()
        answer = UpsertAnswer(status=response.status_code)
        for result in data.get("results") or []:
            if result.get("objectWriteTraceId") is not None:
                answer.ids[result["objectWriteTraceId"]] = str(result["id"])
        for error in data.get("errors") or []:
            why = InputError(error.get("category", "UNKNOWN"), error.get("subCategory"), response.status_code)
            for trace in (error.get("context") or {}).get("objectWriteTraceId") or []:
                answer.errors[trace] = why
        # A row neither confirmed nor named in errors[] is not confirmed.
        for trace, _key, _props in inputs:
            if trace not in answer.ids and trace not in answer.errors:
                answer.errors[trace] = InputError("NO_RESULT", None, response.status_code)
        return answer

    def read_contact_ids(self, keys: Sequence[str], *, id_property: str = "email") -> dict[str, str]:
        """Record ids of existing contacts by ``id_property``; unknown keys are left out."""
        found: dict[str, str] = {}
        for start in range(0, len(keys), MAX_BATCH):
            chunk = keys[start : start + MAX_BATCH]
            body = {"idProperty": id_property, "properties": [id_property], "inputs": [{"id": k} for k in chunk]}
            data = self.call("POST", f"{CONTACTS}/batch/read", json=body, ok=(200, 207)).json()
            for result in data.get("results") or []:
                value = (result.get("properties") or {}).get(id_property)
                if value is not None:
                    found[str(value).lower() if id_property == "email" else str(value)] = str(result["id"])
        return {k: found[k.lower() if id_property == "email" else k] for k in keys if (k.lower() if id_property == "email" else k) in found}

    # -- lists --------------------------------------------------------------------------
    def ensure_list(self, name: str) -> str:
        """The id of the contact list called ``name``; a MANUAL list is created when there is none."""
        response = self.call("GET", f"/crm/v3/lists/object-type-id/{CONTACT_TYPE}/name/{quote(name, safe='')}", ok=(200, 404))
        if response.status_code == 200:
            found = response.json()["list"]
            if found.get("processingType") == "DYNAMIC":
                raise HttpHookError(
                    f"HubSpot list {found['listId']} ({name!r}) is an active (DYNAMIC) list; the sync needs a MANUAL one",
                    retryable=False,
                )
            return str(found["listId"])
        body = {"name": name, "objectTypeId": CONTACT_TYPE, "processingType": "MANUAL"}
        return str(self.call("POST", "/crm/v3/lists", json=body).json()["list"]["listId"])

    def update_list(self, list_id: str, *, add: Sequence[str], remove: Sequence[str]) -> dict[str, Any]:
        body = {"recordIdsToAdd": list(add), "recordIdsToRemove": list(remove)}
        return self.call("PUT", f"/crm/v3/lists/{list_id}/memberships/add-and-remove", json=body).json()


def _strings(props: dict[str, Any]) -> dict[str, Any]:
    """HubSpot property values are strings (numbers and booleans as text; None clears)."""
    out: dict[str, Any] = {}
    for name, value in props.items():
        if value is None or isinstance(value, str):
            out[name] = value
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out
