"""The HubSpot, Customer.io and Braze hooks: registered connection types, and what they read from a connection."""

from __future__ import annotations

import base64
import importlib
import json

import pytest

from retention.hooks.braze import BrazeHook
from retention.hooks.customerio import CustomerIOHook
from retention.hooks.http import HttpHookError
from retention.hooks.hubspot import HubSpotHook
from retention.local_servers import serve
from retention.provider import get_provider_info


@pytest.mark.parametrize("hook", [HubSpotHook, CustomerIOHook, BrazeHook], ids=lambda h: h.conn_type)
def test_connection_types_are_registered_with_their_form(hook):
    entry = next(e for e in get_provider_info()["connection-types"] if e["connection-type"] == hook.conn_type)
    module, _, name = entry["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is hook
    assert "password" in hook.get_ui_field_behaviour()["relabeling"]


def _conn(monkeypatch, conn_id: str, **conn) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def test_customerio_region_and_basic_auth(monkeypatch):
    _conn(monkeypatch, "cio_us", conn_type="retention_customerio", login="site", password="key")
    _conn(monkeypatch, "cio_eu", conn_type="retention_customerio", login="site", password="key", extra={"region": "EU"})
    _conn(monkeypatch, "cio_xx", conn_type="retention_customerio", login="site", password="key", extra={"region": "ap"})
    _conn(monkeypatch, "cio_nokey", conn_type="retention_customerio", login="site")
    assert CustomerIOHook("cio_us").base_url == "https://track.customer.io"
    assert CustomerIOHook("cio_eu").base_url == "https://track-eu.customer.io"
    assert CustomerIOHook("cio_us").auth_headers() == {"Authorization": "Basic " + base64.b64encode(b"site:key").decode()}
    with pytest.raises(HttpHookError, match="region must be 'us' or 'eu'"):
        CustomerIOHook("cio_xx").base_url  # noqa: B018
    with pytest.raises(HttpHookError, match="needs login .* and password"):
        CustomerIOHook("cio_nokey").auth_headers()


def test_hubspot_and_braze_defaults(monkeypatch):
    _conn(monkeypatch, "hs", conn_type="retention_hubspot", password="pat-1")
    _conn(monkeypatch, "bz", conn_type="retention_braze", password="k")
    hubspot = HubSpotHook("hs")
    assert hubspot.base_url == "https://api.hubapi.com" and hubspot.auth_headers() == {"Authorization": "Bearer pat-1"}
    # A rolling 10-second window: no burst on top of the rate, 95 of Free/Starter's 100 per 10 s.
    assert (hubspot.bucket.rate, hubspot.bucket.capacity) == (9.5, 1.0)
    with pytest.raises(HttpHookError, match="has no host: set it"):
        BrazeHook("bz").base_url  # noqa: B018  (Braze has one REST endpoint per instance: no default)


def test_customerio_errors_never_show_the_person(monkeypatch, caplog):
    """The identifier may be an email: a failing identify names neither it nor the key, in its error or its retry logs."""
    caplog.set_level("DEBUG", logger="retention")
    with serve("customerio", site_id="site", api_key="secret-key-7") as server:
        server.control.faults(rate=1.0, kinds=["500"])
        _conn(monkeypatch, "cio_fail", conn_type="retention_customerio", host=server.base_url, login="site",
              password="secret-key-7", extra={"max_attempts": 2, "retry_base_delay": 0.01})
        with pytest.raises(HttpHookError) as caught:
            CustomerIOHook("cio_fail").identify("jane.doe@example.com", {"plan": "pro"})
    message = str(caught.value)
    assert "500" in message and "jane" not in message and "example.com" not in message and "secret" not in message
    retries = [r.getMessage() for r in caplog.records if r.name == "retention.hooks.http"]
    assert retries and all("500" in line for line in retries)
    assert not [line for line in retries if "jane" in line or "example.com" in line or "secret" in line]
