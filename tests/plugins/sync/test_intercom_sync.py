"""The Intercom destination through the real engine, against the local Intercom in its own process.

Each test counts at the server: contacts (never two for one external id or email), tags,
companies and every request received.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import httpx
import pytest
import segments as seg

from retention.local_servers.base import serve
from retention.sync import engine
from retention.sync.config import SyncSpec
from retention.sync.errors import SyncError

CANARY = "canary-intercom-token-5f1c2b"
CONN_ID = "intercom_test"
FAST = {"timeout_s": 2.0, "base_delay_s": 0.05, "max_attempts": 6}


@pytest.fixture(scope="module")
def intercom():
    with serve("intercom", token=CANARY, search_lag_s=60) as server:
        yield server


@pytest.fixture
def ic(intercom, monkeypatch):
    intercom.control.reset()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(
        {"conn_type": "retention_intercom", "host": intercom.base_url, "password": CANARY}))
    return intercom


MAPPING = {"email": "email", "name": "name", "mrr": "mrr", "plan": "plan",
           "company_id": "account_id", "company_name": "account_name"}


def ic_spec(name: str = "ic", options: dict | None = None, mapping: dict | None = None, **overrides) -> SyncSpec:
    return SyncSpec.model_validate({
        "name": name,
        "source": {"segments": ["health_dropped", "inactive"]},
        "destination": {"kind": "intercom", "conn_id": CONN_ID, "options": {**FAST, **(options or {})}},
        "identity": {"column": "account_id", "kind": "account_id"},
        "mapping": mapping or MAPPING,
        "mode": "membership",
        "remove_exits": True,
        **overrides,
    })


def view(server) -> dict:
    return server.control.view("intercom")


def requests(server) -> list[dict]:
    return server.control.requests()


def calls(entries: list[dict]) -> Counter:
    return Counter(f"{e['method']} {_route(e['path'])}" for e in entries)


def _route(path: str) -> str:
    parts = path.split("/")
    return "/".join("{id}" if i in (2, 4) and len(p) > 10 else p for i, p in enumerate(parts))


def tags_by_external_id(server) -> dict[str, list[str]]:
    return {c["external_id"]: c["tags"] for c in view(server)["contacts"]}


def assert_no_duplicates(server) -> None:
    v = view(server)
    assert v["duplicate_external_ids"] == [] and v["duplicate_emails"] == []


def test_first_sync_rerun_change_exit_and_mapping_change(ic, fresh_db):
    rows = seg.accounts(30) + seg.accounts(10, "inactive", start=31)
    seg.build(fresh_db, rows)
    spec = ic_spec()

    first = engine.run_sync(fresh_db, spec)
    assert (first.added, first.failed) == (40, 0)
    v = view(ic)
    assert len(v["contacts"]) == 40 and v["events"]["contacts_created"] == 40
    assert_no_duplicates(ic)
    tags = tags_by_external_id(ic)
    assert tags["acct_00001"] == ["ic: health_dropped"] and tags["acct_00031"] == ["ic: inactive"]
    assert sorted(v["companies"]) == sorted(r["account_id"] for r in rows)
    assert all(c["companies"] == [c["external_id"]] for c in v["contacts"])
    assert v["data_attributes"]["contact"] == ["mrr", "plan"]  # custom attributes created first
    ids = dict(seg.table(fresh_db, "select key, destination_id from activation.sync_state where sync_name = 'ic'"))
    assert ids == {c["external_id"]: c["id"] for c in v["contacts"]}  # Intercom ids cached in the state
    first_calls = calls(requests(ic))
    assert first_calls["POST /tags"] == 2 + 0  # one bulk call per segment for the batch (plus none per contact)
    assert first_calls["POST /contacts"] == 40

    # unchanged rerun: not one request
    before = len(requests(ic))
    again = engine.run_sync(fresh_db, spec)
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    assert len(requests(ic)) == before

    # one account changes: one contact updated by its cached id, nothing searched or created
    rows[4]["mrr"] = 999
    seg.build(fresh_db, rows)
    changed = engine.run_sync(fresh_db, spec)
    assert changed.updated == 1
    new = calls(requests(ic)[before:])
    assert new["PUT /contacts/{id}"] == 1
    assert new["POST /contacts/search"] == 0 and new["POST /contacts"] == 0
    contact = next(c for c in view(ic)["contacts"] if c["external_id"] == "acct_00005")
    assert contact["custom_attributes"]["mrr"] == 999

    # someone else tags a member ("VIP") and a non-member with this sync's tag; then the member exits
    client = httpx.Client(base_url=ic.base_url, headers={"Authorization": f"Bearer {CANARY}"})
    member_id = ids["acct_00002"]
    client.post("/tags", json={"name": "VIP", "users": [{"id": member_id}]}).raise_for_status()
    outsider = client.post("/contacts", json={"external_id": "outsider", "email": "outsider@example.com"}).json()["id"]
    client.post("/tags", json={"name": "ic: health_dropped", "users": [{"id": outsider}]}).raise_for_status()
    rows = [r for r in rows if r["account_id"] != "acct_00002"]
    seg.build(fresh_db, rows)
    exited = engine.run_sync(fresh_db, spec)
    assert exited.removed == 1
    tags = tags_by_external_id(ic)
    assert tags["acct_00002"] == ["VIP"]  # only the tag this sync added is gone
    assert tags["outsider"] == ["ic: health_dropped"]  # never touched: this sync never tagged it
    assert view(ic)["tag_removals"] == 1

    # mapping change: every member resent once (an update by cached id), no duplicates
    before = len(requests(ic))
    spec2 = ic_spec(mapping={**MAPPING, "tier": "tier"})
    remapped = engine.run_sync(fresh_db, spec2)
    assert remapped.updated == 39 and remapped.failed == 0
    new = calls(requests(ic)[before:])
    assert new["PUT /contacts/{id}"] == 39 and new["POST /contacts"] == 0
    assert_no_duplicates(ic)
    members = [c for c in view(ic)["contacts"] if c["external_id"] not in ("outsider", "acct_00002")]
    assert len(members) == 39 and all(c["custom_attributes"]["tier"] == "red" for c in members)
