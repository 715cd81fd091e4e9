"""Airflow hook for a signed webhook receiver (connection type ``retention_webhook``).

The connection's **host** is the receiver's full URL and its **password** the shared
signing secret (never sent itself). Example::

    AIRFLOW_CONN_RETENTION_WEBHOOK_DEFAULT='{"conn_type": "retention_webhook",
        "host": "https://hooks.example.com/retention", "password": "<secret>",
        "extra": {"rate_limit_per_s": 5}}'

Each POST carries three headers:

* ``X-Retention-Delivery``: the delivery id, the same on every retry of that batch;
* ``X-Retention-Timestamp``: Unix seconds when this attempt was signed;
* ``X-Retention-Signature``: ``v1=`` + hex HMAC-SHA256 of ``<timestamp>.<body>`` with the
  secret. A receiver recomputes it, compares in constant time, rejects timestamps
  outside its window (:mod:`retention.hooks.webhook_signature`) and drops delivery ids it has seen.

Retries follow :mod:`retention.hooks.http`; a delivery is safe to repeat because it keeps
its delivery id (and each record its own), so 5xx answers and timeouts are retried, each
attempt signed afresh.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from retention.hooks.http import HttpHook, HttpHookError
from retention.hooks.webhook_signature import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

if TYPE_CHECKING:
    import httpx

class WebhookHook(HttpHook):
    """POSTs signed JSON deliveries to the URL of an Airflow connection."""

    conn_name_attr = "webhook_conn_id"
    default_conn_name = "retention_webhook_default"
    conn_type = "retention_webhook"
    hook_name = "Retention signed webhook"
    rate_limit_per_s = 10.0

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login", "schema", "port"],
            "relabeling": {"host": "Receiver URL", "password": "Signing secret"},
            "placeholders": {
                "host": "https://hooks.example.com/retention",
                "extra": '{"rate_limit_per_s": 10, "burst": 1}',
            },
        }

    @property
    def secret(self) -> str:
        secret = self.connection.password
        if not secret:
            raise HttpHookError(
                f"Airflow connection {self.conn_id!r} has no password: set it to the webhook's shared signing secret.",
                retryable=False,
            )
        return secret

    def auth_headers(self) -> dict[str, str]:
        return {}  # the secret signs; it is never sent

    def attempt_headers(self, content: bytes) -> dict[str, str]:
        timestamp = int(time.time())
        return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(self.secret, timestamp, content)}

    def deliver(self, body: bytes, delivery_id: str) -> httpx.Response:
        """POST one JSON delivery (retried with the same id, each attempt signed afresh)."""
        return self.request(
            "POST", "", content=body, idempotent=True,
            headers={"Content-Type": "application/json", DELIVERY_HEADER: delivery_id},
        )


def connection_json(url: str, secret: str, **extra: Any) -> str:
    """An ``AIRFLOW_CONN_<ID>`` value for a receiver URL and signing secret (``extra``: rate, timeouts)."""
    return orjson.dumps(
        {"conn_type": WebhookHook.conn_type, "host": url, "password": secret, "extra": extra}
    ).decode()
