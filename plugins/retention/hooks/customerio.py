"""Airflow hook for Customer.io's Track API (connection type ``retention_customerio``), shaped like the Slack hook.

The connection's **login** is the workspace's Site ID and its **password** the Track API
key (Customer.io: Settings > API Credentials > Track API keys), sent as HTTP Basic auth.
**host** is empty for the region's Track API, chosen by the extra ``region``: ``us``
(``https://track.customer.io``, the default) or ``eu`` (``https://track-eu.customer.io``);
or a full base URL (the local server). Extras: ``region``, ``rate_limit_per_s`` (the
fair-use limit, default 100), ``timeout``.

Every call here repeats safely (``PUT`` of a person's attributes, adding or removing
manual segment members), so the shared HTTP base retries 5xx and timeouts. The Track
API's error body is ``{"meta": {"error": "..."}}``. A person's identifier may be an
email, so no message of this hook shows a customer path.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from retention.hooks.http import HttpHookError
from retention.hooks.rest import RestHook

if TYPE_CHECKING:
    import httpx

REGIONS = {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"}
MAX_SEGMENT_IDS = 1000


class CustomerIOHook(RestHook):
    conn_name_attr = "customerio_conn_id"
    default_conn_name = "customerio_default"
    conn_type = "retention_customerio"
    hook_name = "Customer.io"

    rate_limit_per_s = 100.0  # Track API fair use
    burst = 10.0
    reset_header = None

    def __init__(self, customerio_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(customerio_conn_id, **kwargs)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "Track API base URL (empty: by region)", "login": "Site ID", "password": "Track API key"},
            "placeholders": {"extra": '{"region": "us", "rate_limit_per_s": 100}'},
        }

    @cached_property
    def base_url(self) -> str:
        if self.connection.host:
            return super().base_url
        region = str(self.extra.get("region", "us")).lower()
        if region not in REGIONS:
            raise HttpHookError(f"Airflow connection {self.conn_id!r}: extra region must be 'us' or 'eu'", retryable=False)
        return REGIONS[region]

    def auth_headers(self) -> dict[str, str]:
        conn = self.connection
        if not conn.login or not conn.password:
            raise HttpHookError(
                f"Airflow connection {self.conn_id!r} needs login (the Site ID) and password (the Track API key).",
                retryable=False,
            )
        return {"Authorization": "Basic " + base64.b64encode(f"{conn.login}:{conn.password}".encode()).decode()}

    def error_code(self, response: httpx.Response) -> str | None:
        """The Track API's ``meta.error`` (it names attributes, never their values), shortened."""
        try:
            body = response.json()
        except ValueError:
            return None
        error = (body.get("meta") or {}).get("error") if isinstance(body, dict) else None
        return str(error)[:80] if error else None

    def shown_path(self, path: str) -> str:
        """A person's path without the person: ``/api/v1/customers/<identifier>``."""
        return re.sub(r"^/api/v1/customers/[^/]+", "/api/v1/customers/<identifier>", path)

    def identify(self, identifier: str, attributes: dict[str, Any]) -> httpx.Response:
        """Create or update one person (``PUT /api/v1/customers/{identifier}``); the raw answer."""
        return self.call("PUT", f"/api/v1/customers/{quote(identifier, safe='')}", json=attributes, ok=None)

    def change_segment(self, segment_id: str, ids: Sequence[str], *, add: bool, id_type: str) -> None:
        """Add ``ids`` to (or remove them from) a manual segment, 1,000 a call."""
        verb = "add_customers" if add else "remove_customers"
        for start in range(0, len(ids), MAX_SEGMENT_IDS):
            body = {"ids": list(ids[start : start + MAX_SEGMENT_IDS])}
            self.call("POST", f"/api/v1/segments/{quote(str(segment_id), safe='')}/{verb}",
                      params={"id_type": id_type}, json=body)
