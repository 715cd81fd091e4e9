"""Destination kinds: ``kind`` in ``syncs.yml`` -> the adapter class that delivers it.

Adapters are imported only when a sync of their kind runs, so loading the configuration
or parsing a DAG never imports an HTTP client. A vendor adapter plugs in with one line in
:data:`ADAPTERS` (``"module:Class"``); the class follows
:class:`retention.sync.destinations.base.Destination` and is built as
``Class(conn_id, options)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from retention.sync.destinations.base import Destination

ADAPTERS: dict[str, str] = {
    "files": "retention.sync.destinations.files:FilesDestination",
    "intercom": "retention.sync.destinations.intercom:IntercomDestination",
    "slack_digest": "retention.sync.destinations.slack_digest:SlackDigestDestination",
    "webhook": "retention.sync.destinations.webhook:WebhookDestination",
    "hubspot": "retention.sync.destinations.hubspot:HubSpotDestination",
    "customerio": "retention.sync.destinations.customerio:CustomerIODestination",
    "braze": "retention.sync.destinations.braze:BrazeDestination",
}


POOL_SLOTS = 1  # one sync at a time per destination kind: they share the tool's rate budget


def kinds() -> frozenset[str]:
    return frozenset(ADAPTERS)


def pool_name(kind: str) -> str:
    """The Airflow pool the syncs of one destination kind run in."""
    return f"sync_{kind}"


def pools() -> dict[str, tuple[int, str]]:
    """Every destination pool the project's set-up creates: name -> (slots, description)."""
    return {pool_name(k): (POOL_SLOTS, f"segment syncs delivering to {k}") for k in sorted(ADAPTERS)}


def adapter_class(kind: str) -> type:
    try:
        module_name, class_name = ADAPTERS[kind].split(":")
    except KeyError:
        raise ValueError(f"unknown destination kind {kind!r}; one of: {', '.join(sorted(ADAPTERS))}") from None
    return getattr(importlib.import_module(module_name), class_name)


def build(kind: str, conn_id: str | None, options: Mapping[str, Any]) -> Destination:
    """A ready adapter for ``kind`` (its hook reads the connection ``conn_id``)."""
    return adapter_class(kind)(conn_id, dict(options))
