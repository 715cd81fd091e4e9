"""The sync engine on a real Postgres with the files destination: diff, state, safety.

Each test builds a small ``marts.segment_members`` table in a fresh database (test input,
as dbt would build it) and publishes it as ``transform_dbt`` does."""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg
import pytest
import segments as seg

from retention import warehouse
from retention.sync import engine, publication
from retention.sync.config import SyncConfigError
from retention.sync.errors import SyncLocked


def _state(url: str, sync: str = "accts") -> dict[str, tuple]:
    rows = seg.table(url, "select key, is_member, payload_hash, generation, last_status, attempts, segments"
                          " from activation.sync_state where sync_name = %s", sync)
    return {r[0]: r[1:] for r in rows}


def _runs(url: str) -> list[tuple]:
    return seg.table(url, "select status, added, updated, removed, unchanged, failed, invalid, halted_reason"
                          " from activation.sync_runs order by run_id")


def test_first_run_sends_every_member_and_an_unchanged_rerun_sends_nothing(fresh_db: str, tmp_path: Path):
    rows = seg.accounts(8) + seg.accounts(3, "inactive") + seg.accounts(2, "not_activated", start=20)
    seg.build(fresh_db, rows)
    spec = seg.spec(tmp=tmp_path)

    first = engine.run_sync(fresh_db, spec)
    assert (first.status, first.sent, first.added, first.failed) == ("succeeded", 8, 8, 0)
    changes = seg.change_files(tmp_path, "accts")
    assert sorted(c["key"] for c in changes) == [f"acct_{i:05d}" for i in range(1, 9)]  # not_activated is not selected
    assert {c["action"] for c in changes} == {"add"}
    acct1 = next(c for c in changes if c["key"] == "acct_00001")
    assert acct1["payload"] == {"account_id": "acct_00001", "plan": "pro", "mrr": 101, "tier": "red"}  # mapped only
    assert acct1["segments"] == ["health_dropped", "inactive"]
    with open(tmp_path / "accts" / "members.csv") as fh:
        members = list(csv.DictReader(fh))
    assert len(members) == 8 and members[0]["payload.mrr"] == "101" and "payload.email" not in members[0]
    state = _state(fresh_db)
    assert len(state) == 8 and all(s[0] and s[2] == 1 and s[3] == "ok" for s in state.values())

    files_before = sorted((tmp_path / "accts").rglob("*"))
    second = engine.run_sync(fresh_db, spec)
    assert (second.status, second.sent, second.counts.unchanged) == ("succeeded", 0, 8)
    assert sorted((tmp_path / "accts").rglob("*")) == files_before  # nothing written at all
    assert _runs(fresh_db) == [("succeeded", 8, 0, 0, 0, 0, 0, None), ("succeeded", 0, 0, 0, 8, 0, 0, None)]


def test_changes_and_exits_send_only_the_difference(fresh_db: str, tmp_path: Path):
    rows = seg.accounts(40)
    seg.build(fresh_db, rows)
    spec = seg.spec(tmp=tmp_path)
    engine.run_sync(fresh_db, spec)

    rows[0]["plan"] = "enterprise"            # changed payload
    rows[1]["mrr"] = rows[1]["mrr"] + 0       # same value, no change
    rows[2]["segment_key"] = "inactive"       # moved segment: a membership change
    rows[2]["member_key"] = "inactive:acct_00003:"
    exited = rows.pop(3)                      # exited
    rows.append(seg.member("acct_00099"))     # entered
    seg.build(fresh_db, rows)
    o = engine.run_sync(fresh_db, spec)
    assert (o.added, o.updated, o.removed, o.counts.unchanged) == (1, 2, 1, 37)
    by_key = {c["key"]: c for c in seg.change_files(tmp_path, "accts")[-4:]}  # run 2's file comes last
    assert by_key["acct_00001"]["action"] == "update" and by_key["acct_00001"]["payload"]["plan"] == "enterprise"
    assert by_key["acct_00003"]["segments"] == ["inactive"]
    assert by_key[exited["account_id"]]["action"] == "remove" and by_key[exited["account_id"]]["payload"] == {}
    assert by_key["acct_00099"]["action"] == "add"
    state = _state(fresh_db)
    assert state[exited["account_id"]][0] is False and state[exited["account_id"]][2] == 2  # removed, 2nd change
    assert state["acct_00003"][5] == ["inactive"]


def test_exits_stay_when_remove_exits_is_off_and_keys_never_added_are_never_removed(fresh_db: str, tmp_path: Path):
    rows = seg.accounts(30)
    seg.build(fresh_db, rows)
    spec = seg.spec(tmp=tmp_path, remove_exits=False)
    engine.run_sync(fresh_db, spec)
    seg.build(fresh_db, rows[:29])
    o = engine.run_sync(fresh_db, spec)
    assert (o.sent, o.counts.exits_kept, o.counts.removes) == (0, 1, 0)
    # Rows other writers own at the destination have no state row: a removal never names them.
    removing = seg.spec(tmp=tmp_path, remove_exits=True)
    o = engine.run_sync(fresh_db, removing)
    assert (o.removed, o.sent) == (1, 1)


def test_a_mapping_change_resends_every_row_once(fresh_db: str, tmp_path: Path):
    seg.build(fresh_db, seg.accounts(30))
    engine.run_sync(fresh_db, seg.spec(tmp=tmp_path))
    remapped = seg.spec(tmp=tmp_path, mapping={"account_id": "account_id", "plan": "plan", "mrr": "mrr",
                                               "tier": "tier", "health": "health_score"})
    o = engine.run_sync(fresh_db, remapped)
    assert (o.updated, o.added, o.removed, o.sent) == (30, 0, 0, 30)  # an update each, not a threshold halt
    assert engine.run_sync(fresh_db, remapped).sent == 0


def test_a_dry_run_sends_nothing_and_writes_no_state(fresh_db: str, tmp_path: Path):
    seg.build(fresh_db, seg.accounts(12) + [seg.member("  ", member_key="x")])
    o = engine.plan_sync(fresh_db, seg.spec(tmp=tmp_path))
    assert (o.status, o.counts.adds, o.counts.invalid, o.sent, o.halted_reason) == ("dry_run", 12, 1, 0, None)
    assert not (tmp_path / "accts").exists()
    for table in ("sync_state", "sync_runs", "sync_log", "sync_send_log"):
        assert seg.table(fresh_db, f"select count(*) from activation.{table}") == [(0,)]


def test_the_change_threshold_halts_and_force_passes(fresh_db: str, tmp_path: Path):
    seg.build(fresh_db, seg.accounts(100))
    spec = seg.spec(tmp=tmp_path, limits={"max_change_pct": 20, "min_change_count": 5})
    assert engine.run_sync(fresh_db, spec).added == 100  # the first run is the baseline

    seg.build(fresh_db, seg.accounts(75))  # 25 % leave
    dry = engine.plan_sync(fresh_db, spec)
    assert dry.halted_reason and "25 adds + removes exceed 20% of the 100 synced keys" in dry.halted_reason
    halted = engine.run_sync(fresh_db, spec)
    assert (halted.status, halted.sent) == ("halted", 0)
    assert _runs(fresh_db)[-1][0] == "halted" and "exceed 20%" in _runs(fresh_db)[-1][-1]
    assert sum(s[0] for s in _state(fresh_db).values()) == 100

    forced = engine.run_sync(fresh_db, spec, force=True)
    assert (forced.status, forced.removed) == ("succeeded", 25)

    seg.build(fresh_db, seg.accounts(79))  # 4 enter: below min_change_count, not a halt
    assert engine.run_sync(fresh_db, spec).added == 4


def test_an_empty_source_removes_nothing_and_halts_even_forced(fresh_db: str, tmp_path: Path):
    seg.build(fresh_db, seg.accounts(10))
    spec = seg.spec(tmp=tmp_path)
    engine.run_sync(fresh_db, spec)
    seg.build(fresh_db, [])
    for force in (False, True):
        o = engine.run_sync(fresh_db, spec, force=force)
        assert (o.status, o.sent) == ("halted", 0) and "no valid rows while 10 keys are synced" in o.halted_reason
    assert sum(s[0] for s in _state(fresh_db).values()) == 10


def test_invalid_rows_are_skipped_with_a_reason_counted_and_never_sent(fresh_db: str, tmp_path: Path):
    rows = [
        seg.member("acct_00001", email=" Ann@Example.COM "),
        seg.member("acct_00002", email=None),
        seg.member("acct_00003", email="   "),
        seg.member("acct_00004", email="not-an-email"),
        seg.member("acct_00005", email="dup@example.com", plan="pro"),
        seg.member("acct_00006", email="DUP@example.com", plan="team"),
        seg.member("acct_00007", email="same@example.com"),
        seg.member("acct_00007", "inactive", email="same@example.com"),  # one key in two segments: fine
    ]
    seg.build(fresh_db, rows)
    spec = seg.spec("people", tmp=tmp_path, identity={"column": "email", "kind": "email"},
                    mapping={"email": "email", "plan": "plan"})
    o = engine.run_sync(fresh_db, spec)
    assert (o.added, o.counts.invalid, o.counts.invalid_keys) == (2, 5, 3)
    sent = {c["key"]: c for c in seg.change_files(tmp_path, "people")}
    assert set(sent) == {"ann@example.com", "same@example.com"}
    assert sent["same@example.com"]["segments"] == ["health_dropped", "inactive"]
    logged = dict(seg.table(fresh_db, "select key, error from activation.sync_log where status = 'invalid'"))
    assert logged == {"": "missing_email (2 source rows)", "not-an-email": "invalid_email (1 source rows)",
                      "dup@example.com": "duplicate_key (2 source rows)"}
    assert _runs(fresh_db)[0][6] == 5


def test_failed_rows_keep_their_state_never_block_others_and_are_retried_next_run(fresh_db: str, tmp_path: Path):
    seg.build(fresh_db, seg.accounts(6))
    spec = seg.spec(tmp=tmp_path, limits={"batch_size": 4})
    blocker = tmp_path / "accts" / "changes" / f"{seg.AS_OF}_run1_0002.jsonl"
    blocker.mkdir(parents=True)  # the second batch's file cannot be written: that batch fails
    failed = engine.run_sync(fresh_db, spec)
    assert (failed.status, failed.sent, failed.added, failed.failed) == ("succeeded", 6, 4, 2)
    state = _state(fresh_db)
    failed_keys = [k for k, s in state.items() if s[3] == "failed"]
    assert len(failed_keys) == 2
    assert all(s[0] is False and s[1] is None and s[4] == 1 for s in state.values() if s[3] == "failed")
    error, = {e for (e,) in seg.table(fresh_db, "select error from activation.sync_log where status = 'failed'")}
    assert error.startswith("files: cannot write") and "@" not in error
    assert _runs(fresh_db)[0][:6] == ("succeeded", 4, 0, 0, 0, 2)

    blocker.rmdir()
    retried = engine.run_sync(fresh_db, spec)
    assert (retried.counts.retries, retried.added, retried.sent) == (2, 2, 2)
    assert all(s[0] and s[3] == "ok" for s in _state(fresh_db).values())
    assert all(_state(fresh_db)[k][4] == 2 for k in failed_keys)  # their second attempt
    assert engine.run_sync(fresh_db, spec).sent == 0


def test_the_sync_refuses_marts_that_were_not_published(fresh_db: str, tmp_path: Path):
    spec = seg.spec(tmp=tmp_path)
    seg.build(fresh_db, seg.accounts(5), publish=False)
    with pytest.raises(publication.NotPublished, match="no published marts"):
        engine.run_sync(fresh_db, spec)
    seg.build(fresh_db, seg.accounts(5))
    seg.build(fresh_db, seg.accounts(6), publish=False)  # rebuilt afterwards, gates not passed
    with pytest.raises(publication.NotPublished, match="rebuilt after the last publication"):
        engine.plan_sync(fresh_db, spec)
    assert not (tmp_path / "accts").exists()
    assert seg.table(fresh_db, "select count(*) from activation.sync_runs") == [(0,)]


def test_a_bad_destination_option_is_one_config_error_recorded_with_its_reason(fresh_db: str, tmp_path: Path):
    seg.build(fresh_db, seg.accounts(3))
    spec = seg.spec(tmp=tmp_path, destination={"options": {"dir": str(tmp_path), "formats": ["xml"]}})
    with pytest.raises(SyncConfigError, match=r"^sync 'accts': destination files: .*unknown formats \['xml'\]"):
        engine.run_sync(fresh_db, spec)
    (status, error), = seg.table(fresh_db, "select status, error from activation.sync_runs")
    assert status == "failed" and "unknown formats" in error
    assert seg.table(fresh_db, "select count(*) from activation.sync_state") == [(0,)]


def test_a_second_concurrent_run_stops_with_a_clear_message(fresh_db: str, tmp_path: Path):
    seg.build(fresh_db, seg.accounts(3))
    with warehouse.connect(fresh_db, autocommit=True) as other:
        other.execute("select pg_advisory_lock(hashtextextended(%s, 0))", (engine.LOCK_NAMESPACE + "accts",))
        with pytest.raises(SyncLocked, match="'accts' is already running"):
            engine.run_sync(fresh_db, seg.spec(tmp=tmp_path))
    assert engine.run_sync(fresh_db, seg.spec(tmp=tmp_path)).added == 3


def test_delivery_ids_are_stable_per_change():
    a = engine.delivery_id("s", "k", 0, "add", "h1")
    assert a == engine.delivery_id("s", "k", 0, "add", "h1")
    assert len({a, engine.delivery_id("s", "k", 1, "add", "h1"), engine.delivery_id("s", "k", 0, "update", "h1"),
                engine.delivery_id("s", "k", 0, "add", "h2"), engine.delivery_id("t", "k", 0, "add", "h1")}) == 5


def test_state_tables_can_be_created_by_concurrent_processes(fresh_db: str):
    import threading

    from retention.sync import state

    errors: list[Exception] = []

    def create():
        try:
            with warehouse.connect(fresh_db, autocommit=True) as conn:
                state.ensure_schema(conn)
        except psycopg.Error as exc:  # pragma: no cover - the failure this test guards against
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
