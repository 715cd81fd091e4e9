"""The shape the JSON REST vendor hooks share (HubSpot, Customer.io, Braze) on the HTTP base.

:class:`RestHook` adds to :class:`retention.hooks.http.HttpHook` only what those three
have in common: every call they make is safe to repeat (upserts by a unique key, list or
segment membership changes, reads), and an answer outside the statuses a call expects
raises :class:`~retention.hooks.http.HttpHookError` naming the call, the status and the
vendor's error code (:meth:`HttpHook.error_code`), never a value or a secret.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from retention.hooks.http import HttpHook, HttpHookError

if TYPE_CHECKING:
    import httpx

RETRYABLE_4XX = frozenset({408, 409, 423, 429})


class RestHook(HttpHook):
    """A vendor hook whose calls are idempotent and whose errors name the vendor's code."""

    def call(
        self,
        method: str,
        path: str,
        *,
        ok: Collection[int] | None = (200,),
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """One idempotent call; its response, or an error when its status is not in ``ok`` (None: any)."""
        response = self.request(method, path, idempotent=True, json=json, params=params)
        status = response.status_code
        if ok is None or status in ok:
            return response
        code = self.error_code(response)
        raise HttpHookError(
            f"{method} {path} (connection {self.conn_id!r}) answered {status}" + (f" {code}" if code else ""),
            status=status, code=code, retryable=status >= 500 or status in RETRYABLE_4XX,
        )
