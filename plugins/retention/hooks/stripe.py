"""Airflow hook for the Stripe API (connection ``stripe_default``), shaped like the Slack hook.

The connection's **password** is the secret API key; its **host** is the API base URL
(empty for the real ``https://api.stripe.com``; e.g. ``http://127.0.0.1:12111`` for
``retention stripe-server``). Example::

    AIRFLOW_CONN_STRIPE_DEFAULT='{"conn_type": "stripe", "host": "http://127.0.0.1:12111", "password": "sk_test_..."}'

The hook owns retries (the SDK's own are off, so there is one policy, tested against the
local server's injected faults): 429 waits ``Retry-After`` (seconds or an HTTP date,
capped) or backs off; 5xx, timeouts and connection errors back off exponentially. Only
GETs go through it, so every retry is safe. Other errors (bad key, bad request) fail at
once with a message that says what to fix; no message ever contains the key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson
from airflow.sdk import BaseHook

from retention.config import STRIPE_CONN_ID
from retention.hooks.http import parse_retry_after

if TYPE_CHECKING:
    import stripe

log = logging.getLogger(__name__)
# The SDK logs two INFO lines per request; ours log retries (with request ids) and counts.
logging.getLogger("stripe").setLevel(logging.WARNING)

PAGE_LIMIT = 100  # Stripe's maximum page size


class StripeHookError(RuntimeError):
    """Stripe refused or kept failing. The message says what to do and holds no secret."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying a GET; delays in seconds."""

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    timeout: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Exponential delay before retry number ``attempt`` (1-based): base * 2**(attempt-1), capped."""
        return min(self.base_delay * 2 ** (attempt - 1), self.max_delay)

    def delay_for_429(self, attempt: int, retry_after: str | None, now: datetime | None = None) -> float:
        """Honour ``Retry-After`` (delta-seconds or HTTP date, RFC 9110), capped; else back off."""
        seconds = parse_retry_after(retry_after, now)
        if seconds is None:
            return self.backoff(attempt)
        return min(max(seconds, 0.0), self.max_retry_after)


class StripeHook(BaseHook):
    """Authenticated, retrying access to Stripe list endpoints through the official SDK."""

    conn_name_attr = "stripe_conn_id"
    default_conn_name = STRIPE_CONN_ID
    conn_type = "stripe"
    hook_name = "Stripe"

    def __init__(
        self,
        stripe_conn_id: str = default_conn_name,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.stripe_conn_id = stripe_conn_id
        self.retry_policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self.retries_done = 0

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login", "schema", "port", "extra"],
            "relabeling": {"host": "API base URL (empty: api.stripe.com)", "password": "Secret API key"},
        }

    @cached_property
    def client(self) -> stripe.StripeClient:
        import stripe

        conn = self.get_connection(self.stripe_conn_id)
        if not conn.password:
            raise StripeHookError(
                f"Airflow connection {self.stripe_conn_id!r} has no password: set it to the Stripe secret API key."
            )
        base = _base_url(conn.host, conn.port, conn.schema)
        return stripe.StripeClient(
            conn.password,
            base_addresses={"api": base} if base else None,
            max_network_retries=0,  # retries are ours: see get()
            http_client=stripe.new_default_http_client(timeout=self.retry_policy.timeout),
        )

    def get_conn(self) -> stripe.StripeClient:
        return self.client

    def get(self, path: str, params: dict[str, Any]) -> dict:
        """GET ``path`` (e.g. ``/v1/customers``) with retries; the parsed JSON body."""
        import stripe

        policy = self.retry_policy
        for attempt in range(1, policy.max_attempts + 1):
            try:
                response = self.client.raw_request("get", path, **params)
                return orjson.loads(response.body)
            except stripe.RateLimitError as exc:
                delay = policy.delay_for_429(attempt, (exc.headers or {}).get("retry-after"))
                reason = f"429 rate limited (request {exc.request_id})"
            except stripe.APIError as exc:  # 5xx
                delay, reason = policy.backoff(attempt), f"{exc.http_status} server error (request {exc.request_id})"
            except stripe.APIConnectionError as exc:
                delay, reason = policy.backoff(attempt), f"connection error: {exc.user_message}"
            except stripe.AuthenticationError:
                raise StripeHookError(
                    f"Stripe rejected the API key of connection {self.stripe_conn_id!r} (401): set its password "
                    f"to a valid secret key."
                ) from None
            except stripe.StripeError as exc:
                raise StripeHookError(f"Stripe refused GET {path}: {exc.http_status} {exc.user_message}") from None
            if attempt == policy.max_attempts:
                raise StripeHookError(
                    f"GET {path} still failing after {attempt} attempts ({reason}); "
                    f"Stripe may be degraded: retry the task later."
                )
            log.warning("stripe GET %s: %s; retry %d in %.1fs", path, reason, attempt, delay)
            self.retries_done += 1
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def list_pages(self, path: str, params: dict[str, Any]) -> Iterator[list[dict]]:
        """Every page of a list endpoint, newest first, following ``starting_after``."""
        query = {**params, "limit": PAGE_LIMIT}
        while True:
            page = self.get(path, query)
            data = page["data"]
            if data:
                yield data
            if not page["has_more"] or not data:
                return
            query["starting_after"] = data[-1]["id"]


def connection_json(base_url: str | None, api_key: str | None, **fields: Any) -> str:
    """The ``AIRFLOW_CONN_STRIPE_DEFAULT`` value for a base URL (None: api.stripe.com) and key."""
    return orjson.dumps({"conn_type": StripeHook.conn_type, "host": base_url, "password": api_key, **fields}).decode()


def _base_url(host: str | None, port: int | None, scheme: str | None) -> str | None:
    """The API base from the connection: a full URL in host, or host + port (+ schema as scheme)."""
    if not host:
        return None
    if "://" in host:
        return host.rstrip("/")
    return f"{scheme or 'https'}://{host}" + (f":{port}" if port else "")
