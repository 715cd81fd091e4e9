"""Every vendor destination through the real engine, against its local server in its own process.

Parametrised by :data:`harness.CASES` (HubSpot, Customer.io, Braze): the same scenarios,
checked against each server's own deduplicated view of what it holds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import segments as seg  # tests/plugins/sync/segments.py
from harness import CASES, FAULT_KINDS, SLOW_S, Member, VendorCase, expected, holds, keys_in

from retention.local_servers import serve
from retention.local_servers.base import RunningServer
from retention.sync import engine
from retention.sync.config import SyncSpec
from retention.sync.errors import SyncError

CONN_ID = "vendor_test"
MAPPING = {"account_id": "account_id", "plan": "plan", "mrr": "mrr", "tier": "tier"}


@dataclass
class Rig:
    """One vendor's server, connection and sync on a fresh warehouse database."""

    case: VendorCase
    server: RunningServer
    url: str
    secret: str
    tmp: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=lambda: dict(MAPPING))
    batch_size: int = 500
    others: set[str] = field(default_factory=set)  # keys someone else put at the vendor

    def spec(self) -> SyncSpec:
        return seg.spec(
            f"{self.case.kind}_sync", self.tmp,
            destination={"kind": self.case.kind, "conn_id": CONN_ID, "options": self.case.options},
            identity=self.case.identity, mapping=self.mapping, limits={"batch_size": self.batch_size},
        )

    def publish(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        seg.build(self.url, rows)

    def run(self) -> engine.SyncOutcome:
        return engine.run_sync(self.url, self.spec())

    def requests(self) -> list[dict]:
        return self.server.control.requests()

    def members(self) -> dict[str, Member]:
        """The server's view of our keys (without those someone else added)."""
        return {k: m for k, m in self.case.members(self.server).items() if k not in self.others}

    def wanted(self) -> dict[str, Member]:
        return expected(self.rows, self.mapping, self.case.key_of)

    def keys(self, rows: list[dict[str, Any]] | None = None) -> list[str]:
        return [self.case.key_of(r) for r in (self.rows if rows is None else rows)]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[RunningServer, str]]]:
    """One server process per vendor for this module (reset before each test), with a canary secret."""
    with ExitStack() as stack:
        started: dict[str, tuple[RunningServer, str]] = {}

        class Lazy(dict):
            def __missing__(self, kind: str) -> tuple[RunningServer, str]:
                case = next(c for c in CASES if c.kind == kind)
                secret = f"canary-{uuid.uuid4().hex}"
                self[kind] = (stack.enter_context(serve(kind, **case.server_options(secret))), secret)
                return self[kind]

        yield Lazy(started)


@pytest.fixture(params=CASES, ids=str)
def rig(request: pytest.FixtureRequest, servers: dict, fresh_db: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Rig:
    case: VendorCase = request.param
    server, secret = servers[case.kind]
    server.control.reset()  # empty state and log; faults off
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(case.connection(server.base_url, secret)))
    return Rig(case, server, fresh_db, secret, tmp_path)


def test_lifecycle_first_rerun_change_exit_mapping(rig: Rig, caplog: pytest.LogCaptureFixture,
                                                   capfd: pytest.CaptureFixture) -> None:
    rows = seg.accounts(90) + seg.accounts(10, "inactive", start=91)
    rig.publish(rows)
    outcomes = [rig.run()]
    assert (outcomes[0].added, outcomes[0].failed) == (100, 0)
    assert holds(rig.members(), rig.wanted()) == []

    # Unchanged rerun: not one request.
    before = len(rig.requests())
    outcomes.append(rig.run())
    assert outcomes[-1].sent == 0 and len(rig.requests()) == before

    # 1% changed: only that row goes out.
    rows[5] = {**rows[5], "plan": "enterprise"}
    rig.publish(rows)
    outcomes.append(rig.run())
    sent = keys_in(rig.requests()[before:], rig.keys())
    assert outcomes[-1].updated == 1 and {k for k, n in sent.items() if n} == {rig.case.key_of(rows[5])}
    assert holds(rig.members(), rig.wanted()) == []

    # Exit: the sync removes only what it added; what someone else put there stays.
    leaving = rig.case.key_of(rows[0])
    foreign = rig.case.foreign_key(leaving)
    rig.case.plant_foreign(rig.server, rig.secret, foreign)
    rig.publish(rows[1:])
    outcomes.append(rig.run())
    assert rig.case.foreign_kept(rig.case.members(rig.server), foreign)
    rig.others = {foreign} - {leaving}
    assert outcomes[-1].removed == 1 and not rig.members()[leaving].segments
    assert holds(rig.members(), rig.wanted()) == []

    # Mapping change: every row resent once, none twice.
    rig.mapping = {**MAPPING, "health_score": "health_score"}
    before = len(rig.requests())
    outcomes.append(rig.run())
    assert (outcomes[-1].updated, outcomes[-1].failed) == (99, 0)
    assert set(keys_in(rig.requests()[before:], rig.keys()).values()) == {1}
    assert holds(rig.members(), rig.wanted()) == []

    # The connection's secret is nowhere: logs, XCom (the summaries), sync_log, sync_runs, errors.
    out, err = capfd.readouterr()
    audit = seg.table(rig.url, "select l::text from activation.sync_log l union all select r::text from activation.sync_runs r")
    for text in (caplog.text, out, err, json.dumps([o.summary() for o in outcomes], default=str), json.dumps(audit)):
        assert rig.secret not in text


def test_faults_of_every_kind_deliver_each_change_once(rig: Rig) -> None:
    # Small batches: enough requests for the faults to spread over their kinds.
    rig.batch_size = 2 if rig.case.kind != "customerio" else 5  # Customer.io: one PUT per row already
    n = 40 if rig.case.kind != "customerio" else 20
    rig.publish(seg.accounts(n - 5) + seg.accounts(5, "inactive", start=n - 4))
    rig.server.control.faults(rate=0.2, kinds=FAULT_KINDS, seed=5, retry_after_s=0.2, slow_s=SLOW_S)
    confirmed: set[str] = set()
    for _ in range(4):
        before = len(rig.requests())
        outcome = rig.run()
        sent = {k for k, n in keys_in(rig.requests()[before:], rig.keys()).items() if n}
        assert not sent & confirmed, "a confirmed change was sent again"
        failed = {k for (k,) in seg.table(rig.url, "select key from activation.sync_state where last_status <> 'ok'")}
        confirmed |= sent - failed
        if outcome.failed == 0:
            break
    assert outcome.failed == 0
    kinds = {k for k in rig.server.control.log(requests=False)["counts"] if k.startswith("fault:")}
    assert len(kinds) >= 4, kinds
    assert holds(rig.members(), rig.wanted()) == []


def test_partial_failure_retried_next_run_without_the_others(rig: Rig) -> None:
    rows = seg.accounts(60)
    if rig.case.partial == "data":  # a value the vendor refuses (Customer.io: over 1,000 bytes)
        rows[7] = {**rows[7], "tier": "x" * 1200}
    else:
        rig.server.control.faults(rate=1.0, kinds=["partial"], seed=3, count=1, partial_share=0.1,
                                  paths=list(rig.case.data_paths))
    rig.publish(rows)
    first = rig.run()
    failed = {k for (k,) in seg.table(rig.url, "select key from activation.sync_state where last_status = 'failed'")}
    assert first.failed == len(failed) > 0 and first.added == len(rows) - len(failed)
    before = len(rig.requests())
    second = rig.run()
    resent = {k for k, n in keys_in(rig.requests()[before:], rig.keys()).items() if n}
    assert resent == failed
    if rig.case.partial == "data":
        assert second.failed == len(failed)  # still refused, still not blocking anyone
    else:
        assert second.failed == 0 and holds(rig.members(), rig.wanted()) == []


def test_sigkill_between_send_and_state_write_then_rerun(rig: Rig) -> None:
    rig.publish(seg.accounts(20))
    # The first data request is processed, then its answer held back: the kill lands after
    # the vendor applied the batch and before the engine could record it.
    rig.server.control.faults(rate=1.0, kinds=["slow_after"], slow_s=4, count=1, paths=list(rig.case.data_paths))
    seg.run_killed_when(rig.url, rig.spec(), lambda: _held(rig), "reached the vendor", timeout=60)
    assert seg.table(rig.url, "select count(*) from activation.sync_state where last_status = 'ok'")[0][0] == 0
    assert rig.members(), "the vendor applied the batch before the kill"
    rig.server.control.faults()
    outcome = rig.run()
    assert (outcome.added, outcome.failed) == (20, 0)
    assert holds(rig.members(), rig.wanted()) == []
    assert rig.run().sent == 0


def _held(rig: Rig) -> bool:
    return any(r["fault"] == "slow_after" and r["processed"] for r in rig.server.control.requests(bodies=False))


@pytest.mark.parametrize("rig", [c for c in CASES if c.kind == "hubspot"], ids=str, indirect=True)
def test_hubspot_stops_cleanly_at_the_daily_cap(rig: Rig) -> None:
    rig.batch_size = 5
    rig.publish(seg.accounts(30))
    # 2 list lookups/creations, then an upsert and a list update per batch of 5: the cap of
    # 8 calls is spent within the third batch.
    httpx.post(f"{rig.server.base_url}/__control/new_day", json={"daily": 8}).raise_for_status()
    with pytest.raises(SyncError, match="daily API limit"):
        rig.run()
    rows = seg.table(rig.url, "select last_status, last_error from activation.sync_state")
    done = [r for r in rows if r[0] == "ok"]
    left = [r for r in rows if r[0] == "failed"]
    assert len(done) + len(left) == 30 and done and left
    assert all("daily API limit" in (error or "") for _, error in left)
    run = seg.table(rig.url, "select status, error from activation.sync_runs order by run_id desc limit 1")[0]
    assert run[0] == "failed" and "daily API limit" in run[1]
    requests = len(rig.requests())
    assert requests == 8  # nothing was sent once the cap was spent

    httpx.post(f"{rig.server.base_url}/__control/new_day", json={"daily": 1000}).raise_for_status()  # midnight
    before = requests
    outcome = rig.run()
    assert (outcome.added, outcome.failed) == (len(left), 0)
    resent = {k for k, n in keys_in(rig.requests()[before:], rig.keys()).items() if n}
    assert len(resent) == len(left)
    assert holds(rig.members(), rig.wanted()) == []
