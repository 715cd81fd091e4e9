"""One test harness for every vendor destination: what differs per vendor is a :class:`VendorCase`.

A case says how to start the vendor's local server (its own process, the secret in its
options), how the Airflow connection points at it, how the sync is configured, and how
to read the server's own deduplicated views back as ``{key: Member}`` (attributes and the
segments the key is in). The tests in ``test_vendor_sync.py`` run the real engine
(:func:`retention.sync.engine.run_sync`) on a real Postgres and compare that view with
what the warehouse says, so a vendor adds itself with one case and no test code.

Also here: which request bodies name which keys (to prove what a run did or did not
resend), and the "someone else's member" each vendor test plants and expects untouched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from retention.local_servers.base import RunningServer

SEGMENTS = ("health_dropped", "inactive")
FAULT_KINDS = ("429_seconds", "429_date", "500", "slow", "reset", "partial", "500_after", "slow_after", "reset_after")
# The hooks' per-request timeout and first backoff in these tests; "slow" faults wait longer.
CLIENT = {"timeout": 0.5, "retry_base_delay": 0.1}
SLOW_S = 0.8


@dataclass(frozen=True)
class Member:
    attributes: dict[str, Any]
    segments: frozenset[str]


@dataclass(frozen=True)
class VendorCase:
    kind: str                                   # destination kind = local server name
    server_options: Callable[[str], dict]       # secret -> serve() options
    connection: Callable[[str, str], dict]      # (base_url, secret) -> Airflow connection as JSON
    identity: dict                              # the sync's identity block
    options: dict                               # the sync's destination options
    data_paths: tuple[str, ...]                 # request paths that carry records (faults aim here)
    members: Callable[[RunningServer], dict[str, Member]]
    plant_foreign: Callable[[RunningServer, str, str], None]  # (server, secret, key): someone else adds `key`
    foreign_kept: Callable[[dict[str, Member], str], bool]
    foreign_key: Callable[[str], str]           # the key someone else adds, given the key that will exit
    partial: str = "fault"                      # "fault": the server's partial fault; "data": a row it rejects
    key_of: Callable[[Mapping[str, Any]], str] = field(default=lambda row: row["account_id"])

    def __str__(self) -> str:
        return self.kind


def keys_in(requests: Iterable[dict], keys: Iterable[str]) -> dict[str, int]:
    """How many request bodies (and paths) mention each key: what a run sent, by key."""
    wanted = set(keys)
    seen: dict[str, int] = dict.fromkeys(wanted, 0)
    for entry in requests:
        text = json.dumps(entry.get("body")) + entry.get("path", "")
        for key in wanted:
            if f'"{key}"' in text or entry.get("path", "").endswith("/" + key):
                seen[key] += 1
    return seen


def norm(value: Any) -> Any:
    """Vendors store numbers as text (HubSpot) or as sent: compare both as numbers."""
    if isinstance(value, bool) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def expected(rows: Iterable[Mapping[str, Any]], mapping: Mapping[str, str], key_of: Callable) -> dict[str, Member]:
    """What the destination must hold for these segment_members rows."""
    attrs: dict[str, dict] = {}
    segs: dict[str, set[str]] = {}
    for row in rows:
        key = key_of(row)
        attrs[key] = {field: norm(row[col]) for field, col in mapping.items()}
        segs.setdefault(key, set()).add(row["segment_key"])
    return {k: Member(attrs[k], frozenset(segs[k])) for k in attrs}


def holds(actual: dict[str, Member], wanted: dict[str, Member]) -> list[str]:
    """Differences between the server's view and the wanted state (empty: equal), by key."""
    problems = []
    for key, member in wanted.items():
        got = actual.get(key)
        if got is None:
            problems.append(f"{key}: missing")
            continue
        got_attrs = {f: norm(got.attributes.get(f)) for f in member.attributes}
        if got_attrs != member.attributes:
            problems.append(f"{key}: attributes {got_attrs} != {member.attributes}")
        if got.segments != member.segments:
            problems.append(f"{key}: segments {sorted(got.segments)} != {sorted(member.segments)}")
    for key, got in actual.items():
        if key not in wanted and got.segments:
            problems.append(f"{key}: still in {sorted(got.segments)}")
    return problems


# ----------------------------------------------------------------------------- HubSpot

LIST_PREFIX = "Retention: "


def _hubspot_members(server: RunningServer) -> dict[str, Member]:
    contacts = server.control.view("contacts")
    lists = server.control.view("lists")
    segs: dict[str, set[str]] = {}
    for name, lst in lists.items():
        for email in lst["members"]:
            segs.setdefault(email, set()).add(name.removeprefix(LIST_PREFIX))
    return {email: Member(c["properties"], frozenset(segs.get(email, ()))) for email, c in contacts.items()}


def _hubspot_plant(server: RunningServer, secret: str, key: str) -> None:
    import httpx

    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {secret}"}) as client:
        up = client.post("/crm/v3/objects/contacts/batch/upsert",
                         json={"inputs": [{"id": key, "idProperty": "email", "properties": {}}]})
        rid = up.json()["results"][0]["id"]
        found = client.get(f"/crm/v3/lists/object-type-id/0-1/name/{LIST_PREFIX}health_dropped").json()
        client.put(f"/crm/v3/lists/{found['list']['listId']}/memberships/add-and-remove",
                   json={"recordIdsToAdd": [rid], "recordIdsToRemove": []}).raise_for_status()


HUBSPOT = VendorCase(
    kind="hubspot",
    server_options=lambda secret: {"token": secret, "max_per_interval": 200, "interval_ms": 1000},
    connection=lambda url, secret: {"conn_type": "retention_hubspot", "host": url, "password": secret,
                                    "extra": {"rate_limit_per_s": 150, **CLIENT}},
    identity={"column": "email", "kind": "email"},
    options={"list_prefix": LIST_PREFIX},
    data_paths=("/crm/v3/objects/contacts/batch/upsert",),
    members=_hubspot_members,
    plant_foreign=_hubspot_plant,
    foreign_kept=lambda members, key: "health_dropped" in members[key].segments,
    foreign_key=lambda exiting: "someone@else.example",
    key_of=lambda row: row["email"],
)


# ----------------------------------------------------------------------------- Customer.io

CIO_SEGMENTS = {"health_dropped": "101", "inactive": "102"}


def _cio_members(server: RunningServer) -> dict[str, Member]:
    people = server.control.view("people")
    segments = server.control.view("segments")
    by_id = {v: k for k, v in CIO_SEGMENTS.items()}
    segs: dict[str, set[str]] = {}
    for segment_id, keys in segments.items():
        for key in keys:
            segs.setdefault(key, set()).add(by_id.get(segment_id, segment_id))
    return {key: Member(p["attributes"], frozenset(segs.get(key, ()))) for key, p in people.items()}


def _cio_plant(server: RunningServer, secret: str, key: str) -> None:
    import httpx

    with httpx.Client(base_url=server.base_url, auth=("site_test", secret)) as client:
        client.post(f"/api/v1/segments/{CIO_SEGMENTS['health_dropped']}/add_customers",
                    json={"ids": [key]}).raise_for_status()


CUSTOMERIO = VendorCase(
    kind="customerio",
    server_options=lambda secret: {"site_id": "site_test", "api_key": secret, "id_type": "id"},
    connection=lambda url, secret: {"conn_type": "retention_customerio", "host": url, "login": "site_test", "password": secret,
                                    "extra": {"rate_limit_per_s": 400, "burst": 20, **CLIENT}},
    identity={"column": "account_id", "kind": "account_id"},
    options={"segments": CIO_SEGMENTS, "id_type": "id"},
    data_paths=("/api/v1/",),
    members=_cio_members,
    plant_foreign=_cio_plant,
    foreign_kept=lambda members, key: "health_dropped" in members[key].segments,
    foreign_key=lambda exiting: "acct_foreign",
    partial="data",
)


# ----------------------------------------------------------------------------- Braze

BRAZE_ATTRIBUTE = "retention_segments"
FOREIGN_VALUE = "vip_by_sales"


def _braze_members(server: RunningServer) -> dict[str, Member]:
    users = server.control.view("users")
    return {
        key: Member(u["attributes"], frozenset(s for s in u["attributes"].get(BRAZE_ATTRIBUTE) or () if s in SEGMENTS))
        for key, u in users.items()
    }


def _braze_plant(server: RunningServer, secret: str, key: str) -> None:
    """Someone else adds their own value to the same array attribute of one of our users."""
    import httpx

    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {secret}"}) as client:
        client.post("/users/track", json={"attributes": [
            {"external_id": key, BRAZE_ATTRIBUTE: {"add": [FOREIGN_VALUE]}}]}).raise_for_status()


BRAZE = VendorCase(
    kind="braze",
    server_options=lambda secret: {"api_key": secret},
    connection=lambda url, secret: {"conn_type": "retention_braze", "host": url, "password": secret,
                                    "extra": {"rate_limit_per_s": 400, "burst": 20, **CLIENT}},
    identity={"column": "account_id", "kind": "account_id"},
    options={"membership_attribute": BRAZE_ATTRIBUTE},
    data_paths=("/users/track",),
    members=_braze_members,
    plant_foreign=_braze_plant,
    foreign_kept=lambda members, key: FOREIGN_VALUE in (members[key].attributes.get(BRAZE_ATTRIBUTE) or ()),
    foreign_key=lambda exiting: exiting,  # another writer's value in the array of a user who exits
)

CASES = (HUBSPOT, CUSTOMERIO, BRAZE)
