"""The Intercom destination through the real engine, against the local Intercom in its own process.

Each test counts at the server: contacts (never two for one external id or email), tags,
companies and every request received.
"""

from __future__ import annotations

import json
import logging
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
FAST = {"timeout": 2.0, "retry_base_delay": 0.05, "max_attempts": 6}  # the connection's extra


@pytest.fixture(scope="module")
def intercom():
    with serve("intercom", token=CANARY, search_lag_s=60) as server:
        yield server


def connect(monkeypatch, server, **extra) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(
        {"conn_type": "retention_intercom", "host": server.base_url, "password": CANARY, "extra": {**FAST, **extra}}))


@pytest.fixture
def ic(intercom, monkeypatch):
    intercom.control.reset()
    connect(monkeypatch, intercom)
    return intercom


MAPPING = {"email": "email", "name": "name", "mrr": "mrr", "plan": "plan",
           "company_id": "account_id", "company_name": "account_name"}


def ic_spec(name: str = "ic", mapping: dict | None = None, **overrides) -> SyncSpec:
    return SyncSpec.model_validate({
        "name": name,
        "source": {"segments": ["health_dropped", "inactive"]},
        "destination": {"kind": "intercom", "conn_id": CONN_ID, "options": {}},
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


def all_confirmed(url: str, sync: str) -> bool:
    return seg.table(url, "select count(*) from activation.sync_state where sync_name = %s and last_status <> 'ok'",
                     sync)[0][0] == 0


def assert_delivered_once(server, rows: list[dict], sync: str = "ic") -> None:
    """Every member exactly once at Intercom: one contact, its company, its segment's tag."""
    v = view(server)
    assert_no_duplicates(server)
    assert v["events"]["contacts_created"] == len(rows)
    contacts = {c["external_id"]: c for c in v["contacts"]}
    assert set(contacts) == {r["account_id"] for r in rows}
    for r in rows:
        c = contacts[r["account_id"]]
        assert c["tags"] == [f"{sync}: {r['segment_key']}"] and c["companies"] == [r["account_id"]]
        assert c["email"] == r["email"] and c["custom_attributes"]["mrr"] == float(r["mrr"])


def test_faults_of_every_kind_deliver_every_change_once_and_leak_no_secret(ic, fresh_db, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    rows = seg.accounts(15) + seg.accounts(5, "inactive", start=16)
    seg.build(fresh_db, rows)
    connect(monkeypatch, ic, timeout=0.8)
    spec = ic_spec()
    ic.control.faults(rate=0.2, kinds=["429_seconds", "429_date", "500", "slow", "reset", "partial",
                                       "500_after", "slow_after", "reset_after"],
                      seed=11, retry_after_s=0.2, slow_s=1.2)
    outcomes, errors = [], []
    for _ in range(4):
        try:
            outcomes.append(engine.run_sync(fresh_db, spec))
        except SyncError as exc:
            errors.append(str(exc))
        if all_confirmed(fresh_db, "ic") and outcomes:
            break
    ic.control.faults()
    assert all_confirmed(fresh_db, "ic")
    log = ic.control.log(bodies=False)
    assert sum(1 for e in log["requests"] if e["fault"]) >= 5  # the faults did happen (about 15 expected)
    assert_delivered_once(ic, rows)

    texts = [caplog.text, *errors, *(json.dumps(o.summary(), default=str) for o in outcomes)]
    texts += [str(r) for r in seg.table(fresh_db, "select * from activation.sync_log")]
    texts += [str(r) for r in seg.table(fresh_db, "select * from activation.sync_runs")]
    texts += [str(r) for r in seg.table(fresh_db, "select * from activation.sync_state")]
    for text in texts:
        assert CANARY not in text
        assert "@example.com" not in text  # no personal data in logs or errors either


def test_a_failed_row_is_retried_next_run_and_the_others_are_not_resent(ic, fresh_db, monkeypatch):
    rows = seg.accounts(6)
    seg.build(fresh_db, rows)
    connect(monkeypatch, ic, max_attempts=1)  # no retry within the run
    spec = ic_spec()
    # One company upsert fails: that one row fails.
    ic.control.faults(rate=1.0, kinds=["500"], count=1, paths=["/companies"])
    first = engine.run_sync(fresh_db, spec)
    assert (first.added, first.failed) == (5, 1)
    failed = seg.table(fresh_db, "select key, last_error, destination_id from activation.sync_state"
                                 " where sync_name = 'ic' and last_status = 'failed'")
    assert len(failed) == 1
    key, error, contact_id = failed[0]
    assert error == "intercom company failed: 500" and contact_id  # its id is cached all the same

    before = len(requests(ic))
    second = engine.run_sync(fresh_db, spec)
    assert (second.added, second.failed) == (1, 0)
    new = requests(ic)[before:]
    assert calls(new) == Counter({"GET /data_attributes": 1, "PUT /contacts/{id}": 1, "POST /companies": 1,
                                  "POST /contacts/{id}/companies": 1, "POST /tags": 1})  # no search, no create
    assert {e["path"] for e in new if e["path"].startswith("/contacts/")} == {
        f"/contacts/{contact_id}", f"/contacts/{contact_id}/companies"}
    assert new[-1]["body"]["users"] == [{"id": contact_id}]
    assert_delivered_once(ic, rows)


def test_sigkill_between_send_and_state_write_then_rerun_sends_no_duplicate(ic, fresh_db, monkeypatch):
    rows = seg.accounts(12)
    seg.build(fresh_db, rows)
    connect(monkeypatch, ic, timeout=60)
    spec = ic_spec()
    # The bulk tag call is processed, then its answer hangs: the run is inside send(), state not yet written.
    ic.control.faults(rate=1.0, kinds=["slow_after"], count=1, slow_s=60, paths=["/tags"])
    seg.run_killed_when(
        fresh_db, spec,
        lambda: any(e["fault"] == "slow_after" and e["processed"] for e in ic.control.requests(bodies=False)),
        "reached the tag call")
    assert seg.table(fresh_db, "select count(*) from activation.sync_state")[0][0] == 0  # nothing recorded
    assert view(ic)["events"]["contacts_created"] == 12  # ... but Intercom has them all, tagged

    ic.control.faults()
    rerun = engine.run_sync(fresh_db, spec)
    assert (rerun.added, rerun.failed) == (12, 0)
    assert view(ic)["events"]["contact_conflicts"] == 12  # search lags: each create answered 409 with the id
    assert_delivered_once(ic, rows)


def test_an_email_held_by_another_external_id_is_never_taken_over(ic, fresh_db):
    """Two accounts sharing an email: the create answers 409 naming the other account's contact.
    That contact keeps its external id and attributes; the row fails, naming no value."""
    client = httpx.Client(base_url=ic.base_url, headers={"Authorization": f"Bearer {CANARY}"})
    other = client.post("/contacts", json={"external_id": "acct_elsewhere", "email": "owner2@example.com",
                                           "name": "Someone Else"}).json()["id"]
    rows = seg.accounts(3)  # acct_00002's email is owner2@example.com
    seg.build(fresh_db, rows)
    first = engine.run_sync(fresh_db, ic_spec())
    assert (first.added, first.failed) == (2, 1)
    contact = next(c for c in view(ic)["contacts"] if c["id"] == other)
    assert contact["external_id"] == "acct_elsewhere" and contact["custom_attributes"] == {}
    assert contact["tags"] == [] and contact["companies"] == []
    assert client.get(f"/contacts/{other}").json()["name"] == "Someone Else"
    (key, error, contact_id), = seg.table(
        fresh_db, "select key, last_error, destination_id from activation.sync_state where last_status = 'failed'")
    assert key == "acct_00002" and contact_id is None
    assert error == "intercom find contact failed: 409 external_id_mismatch"
    assert_no_duplicates(ic)
