"""The shape the JSON REST vendor hooks share (HubSpot, Customer.io, Braze, Intercom) on the HTTP base.

:class:`RestHook` adds to :class:`retention.hooks.http.HttpHook` only what those four
have in common: every call they make is safe to repeat (upserts by a unique key, list or
segment membership changes, tags, reads), and an answer outside the statuses a call
expects raises :attr:`RestHook.error_class` naming the call (its path as
:meth:`HttpHook.shown_path` shows it), the status and the vendor's error code
(:meth:`HttpHook.error_code`), never a value or a secret.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from retention.hooks.http import HttpHook, HttpHookError

if TYPE_CHECKING:
    import httpx

RETRYABLE_4XX = frozenset({408, 409, 423, 429})


class RestHook(HttpHook):
    """A vendor hook whose calls are idempotent and whose errors name the vendor's code."""

    error_class: ClassVar[type[HttpHookError]] = HttpHookError
    retryable_4xx: ClassVar[frozenset[int]] = RETRYABLE_4XX  # 4xx statuses a later attempt may pass

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
        raise self.error_class(
            f"{method} {self.shown_path(path)} (connection {self.conn_id!r}) answered {status}"
            + (f" {code}" if code else ""),
            status=status, code=code, retryable=status >= 500 or status in self.retryable_4xx,
        )
