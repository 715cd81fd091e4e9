"""Signing and verifying webhook deliveries (stdlib only: the local receiver imports it cheaply)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Retention-Signature"
TIMESTAMP_HEADER = "X-Retention-Timestamp"
DELIVERY_HEADER = "X-Retention-Delivery"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex>``: HMAC-SHA256 with ``secret`` over ``<timestamp>.<body>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> str | None:
    """Why a delivery must be refused (``missing_signature``, ``stale_timestamp``, ``bad_signature``), or None."""
    headers = {k.lower(): v for k, v in headers.items()}
    sent, stamp = headers.get(SIGNATURE_HEADER.lower()), headers.get(TIMESTAMP_HEADER.lower())
    if not sent or not stamp:
        return "missing_signature"
    try:
        timestamp = int(stamp)
    except ValueError:
        return "stale_timestamp"
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return "stale_timestamp"
    if not hmac.compare_digest(signature(secret, timestamp, body), sent):
        return "bad_signature"
    return None
