"""Airflow hook for Braze's REST API (connection type ``retention_braze``), shaped like the Slack hook.

The connection's **password** is a REST API key with the ``users.track`` permission;
its **host** is the workspace's REST endpoint (``https://rest.iad-01.braze.com`` and so
on: Braze lists them per instance), or the local server's URL. Extras:
``rate_limit_per_s`` (default 1000, the documented 3,000 requests per 3 seconds),
``timeout``.

``POST /users/track`` with attributes only sets values and adds or removes array items,
so repeating it is harmless and the shared HTTP base retries 5xx and timeouts; a 429
waits for ``X-RateLimit-Reset`` (epoch seconds). Braze answers a partial success with
2xx and ``errors[]`` items carrying an ``index`` into the request's array:
:meth:`BrazeHook.track_attributes` returns them by index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from retention.hooks.http import HttpHookError
from retention.hooks.rest import RestHook

if TYPE_CHECKING:
    import httpx

MAX_OBJECTS = 75


class BrazeHook(RestHook):
    conn_name_attr = "braze_conn_id"
    default_conn_name = "braze_default"
    conn_type = "retention_braze"
    hook_name = "Braze"

    rate_limit_per_s = 1000.0  # 3,000 per 3 s
    burst = 100.0
    reset_header, reset_kind = "X-RateLimit-Reset", "epoch"

    def __init__(self, braze_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(braze_conn_id, **kwargs)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login", "schema", "port"],
            "relabeling": {"host": "REST endpoint (e.g. https://rest.iad-01.braze.com)", "password": "REST API key"},
            "placeholders": {"extra": '{"rate_limit_per_s": 1000}'},
        }

    def auth_headers(self) -> dict[str, str]:
        if not self.connection.password:
            raise HttpHookError(f"Airflow connection {self.conn_id!r} has no password: set it to the REST API key.",
                                retryable=False)
        return super().auth_headers()

    def error_code(self, response: httpx.Response) -> str | None:
        try:
            body = response.json()
        except ValueError:
            return None
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors and isinstance(errors[0], dict):
            return str(errors[0].get("type", ""))[:40] or None
        return None

    def track_attributes(self, objects: Sequence[dict[str, Any]]) -> tuple[int, dict[int, str]]:
        """Send up to 75 attribute objects; (status, index -> error type) for the rejected ones."""
        if len(objects) > MAX_OBJECTS:
            raise ValueError(f"Braze takes at most {MAX_OBJECTS} objects per /users/track request")
        response = self.call("POST", "/users/track", json={"attributes": list(objects)}, ok=(200, 201))
        errors: dict[int, str] = {}
        for error in response.json().get("errors") or []:
            if isinstance(error, dict) and error.get("input_array", "attributes") == "attributes" and "index" in error:
                errors[int(error["index"])] = str(error.get("type", "unknown"))
        return response.status_code, errors
