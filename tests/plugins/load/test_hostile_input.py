"""Ingestion tried as a hostile or unlucky source would (issue 14): one test per way it
could be stopped, lose data without saying so, or block readers."""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from landed_files import (
    DAY1, DAY2, day_ms, group, identify, nps_file, query, run_load, segment_file, snapshot, support_file, track,
)

from retention import warehouse
from retention.load.loader import LoadFailed
from support.databases import create_database

DAY3 = DAY2 + timedelta(days=1)
LONG = "x" * 3000  # more than an index entry holds (about 2.7 kB)


def test_a_poison_record_of_each_kind_is_quarantined_and_the_rest_of_every_file_loads(fresh_db, tmp_path):
    segment_file(tmp_path, DAY1, [track("before1"), track("before2")], seq=1)
    poison = {
        "long messageId": (track(LONG), "value_out_of_range"),
        "long context.groupId": (track("p2", account=LONG), "value_out_of_range"),
        "long event name": (track("p3", event=LONG), "value_out_of_range"),
        "number out of range": ('{"type": "track", "messageId": "p4", "userId": "u", "event": "E", '
                                '"timestamp": "2024-11-17T10:00:00Z", "receivedAt": "2024-11-17T10:00:01Z", '
                                '"context": {"groupId": "acc_000001"}, "properties": {"n": 1e400000}}', "value_out_of_range"),
        "lone surrogate": (json.dumps(track("p5", properties={"s": "@"})).replace("@", "\\ud800"), "invalid_utf8"),
        "NUL escape": (json.dumps(track("p6", properties={"s": "a\u0000b"})), "invalid_utf8"),
        "long identify messageId": ({**identify("i"), "messageId": LONG}, "value_out_of_range"),
    }
    good_middle = [
        track("m1"),
        track("m2", properties={"text": "\\u0000"}),  # the six characters, not a NUL
        track("m3", timestamp="2024-11-17T10:00:00+20:00", receivedAt="2024-11-16T14:00:01Z"),  # Postgres: +15:59 at most
        track("m4", properties={"tiny": 1e-300}),
    ]
    items = [good_middle[0], *(item for item, _ in poison.values()), *good_middle[1:]]
    segment_file(tmp_path, DAY1, items, seq=2)
    segment_file(tmp_path, DAY1, [track("after1")], seq=3)
    nps_file(tmp_path, "2024-11", [
        {"response_id": LONG, "account_id": "acc_000001", "score": "9", "responded_at": "2024-11-03T12:00:00Z"},
        {"response_id": "r_nul", "account_id": "acc_000001", "score": "9", "comment": "a\x00b",
         "responded_at": "2024-11-03T12:00:00Z"},
        {"response_id": "r_ok", "account_id": "acc_000001", "score": "9", "responded_at": "2024-11-03T12:00:00Z"},
    ])
    support_file(tmp_path, "2024-11", [
        {"ticket_id": LONG, "account_id": "acc_000001", "created_at": "2024-11-02T08:00:00Z"},
        {"ticket_id": "t_ok", "account_id": "acc_000001", "created_at": "2024-11-02T08:00:00Z"},
    ])

    events = run_load(fresh_db, "events", tmp_path)
    assert (events["files_loaded"], events["files_failed"]) == (3, 0)
    assert query(fresh_db, "select message_id from raw.events order by 1") == [
        ("after1",), ("before1",), ("before2",), ("m1",), ("m2",), ("m3",), ("m4",),
    ]
    lines = query(fresh_db, "select line, reason from raw.quarantine order by line")
    assert lines == [(2 + i, reason) for i, (_, reason) in enumerate(poison.values())]
    assert query(fresh_db, "select properties->>'text', timestamp = '2024-11-16T14:00:00Z' from raw.events "
                           "where message_id in ('m2', 'm3') order by message_id") == [("\\u0000", False), (None, True)]

    nps = run_load(fresh_db, "nps", tmp_path)
    support = run_load(fresh_db, "support", tmp_path)
    assert (nps["rows_loaded"], nps["quarantined"]) == (1, {"invalid_utf8": 1, "value_out_of_range": 1})
    assert (support["rows_loaded"], support["quarantined"]) == (1, {"value_out_of_range": 1})
    assert query(fresh_db, "select response_id from raw.nps_responses") == [("r_ok",)]


def _unreadable(path) -> None:
    """Make ``path`` a file that exists and cannot be read (as root, permissions do not
    stop a read: a link to a file whose reads fail)."""
    if os.geteuid() == 0:
        path.unlink()
        path.symlink_to("/proc/self/mem")
    else:
        path.chmod(0)


def test_an_unreadable_file_is_recorded_and_the_run_goes_on_then_fails_with_one_line(fresh_db, tmp_path):
    from retention.quality.gate import QualityGateFailed, run_gates
    from retention.quality.suites import GateSettings

    segment_file(tmp_path, DAY1, [track("a1")], seq=1)
    bad = segment_file(tmp_path, DAY1, [track("b1")], seq=2)
    body = bad.read_bytes()
    _unreadable(bad)
    segment_file(tmp_path, DAY1, [track("c1")], seq=3)

    with pytest.raises(LoadFailed) as failed:
        run_load(fresh_db, "events", tmp_path)
    message = str(failed.value)
    assert message.splitlines()[1:] == [f"  file://{bad}: {failed.value.run.files[1].error}"]
    assert "Errno" in message and "Traceback" not in message
    assert query(fresh_db, "select message_id from raw.events order by 1") == [("a1",), ("c1",)]
    assert query(fresh_db, "select status, error is not null from raw.load_manifest order by uri") == [
        ("loaded", False), ("failed", True), ("loaded", False),
    ]
    # The raw gate fails while the manifest holds a failed file ...
    with pytest.raises(QualityGateFailed, match="no landed file in an error state"):
        run_gates(fresh_db, ["raw_quarantine"], GateSettings(as_of=DAY2))

    # ... and the next run, once the file can be read, loads it and clears the state.
    bad.unlink()
    bad.write_bytes(body)
    again = run_load(fresh_db, "events", tmp_path)
    assert (again["files_loaded"], again["files_skipped"], again["rows_loaded"]) == (1, 2, 1)
    assert query(fresh_db, "select count(*) from raw.load_manifest where status = 'loaded' and error is null") == [(3,)]
    [outcome] = run_gates(fresh_db, ["raw_quarantine"], GateSettings(as_of=DAY2))
    assert outcome.success


def test_the_cli_says_which_files_failed_and_exits_1(fresh_db, tmp_path):
    segment_file(tmp_path, DAY1, [track("a1")], seq=1)
    _unreadable(segment_file(tmp_path, DAY1, [track("b1")], seq=2))
    env = {**os.environ, "WAREHOUSE_URL": fresh_db}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "retention"), "load", "--source", "events", "--path", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    [failed] = [line for line in proc.stderr.splitlines() if line.startswith("  file://")]
    assert ".h002.gz: " in failed
    assert json.loads(proc.stdout)["files_failed"] == 1


def test_a_file_read_half_written_is_loaded_whole_once_completed(fresh_db, tmp_path):
    messages = [track(f"h{i}") for i in range(5000)]
    path = segment_file(tmp_path, DAY1, messages)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 3])  # the upload is a third of the way through

    first = run_load(fresh_db, "events", tmp_path, since=DAY1, until=DAY2)
    assert first["files_truncated"] == 1 and 0 < first["rows_loaded"] < 5000
    path.write_bytes(whole)  # upload complete

    # The next day's run: the file is outside its days, but its size changed.
    second = run_load(fresh_db, "events", tmp_path, since=DAY2, until=DAY3)
    assert query(fresh_db, "select count(*), count(distinct message_id) from raw.events") == [(5000, 5000)]
    assert (second["files_reloaded"], second["rows_loaded"], second["rows_replaced"]) == (1, 5000, first["rows_loaded"])
    assert query(fresh_db, "select count(*) from raw.event_ids") == [(5000,)]
    assert query(fresh_db, "select count(*) from raw.quarantine") == [(0,)]
    assert query(fresh_db, "select status, truncated, rows_loaded, replaced_sha256 is not null from raw.load_manifest") == [
        ("loaded", False, 5000, True)
    ]
    assert run_load(fresh_db, "events", tmp_path)["files_skipped"] == 1


def test_a_file_landing_in_a_week_old_day_folder_is_found_by_the_next_daily_run(fresh_db, tmp_path, caplog):
    today = DAY1 + timedelta(days=10)
    segment_file(tmp_path, DAY1, [track("old")])
    run_load(fresh_db, "events", tmp_path, since=DAY1, until=DAY2)  # the daily run of DAY1
    # Loaded long ago: the next runs do not look at that file any more, only list its folder.
    query(fresh_db, "update raw.load_manifest set loaded_at = loaded_at - interval '10 days' returning 1")
    segment_file(tmp_path, today - timedelta(days=2), [track("y", day=today - timedelta(days=2))])
    run_load(fresh_db, "events", tmp_path, since=today - timedelta(days=4), until=today - timedelta(days=1))
    week_old = today - timedelta(days=7)
    late = segment_file(tmp_path, week_old, [track("late", day=week_old)], seq=5)

    with caplog.at_level(logging.WARNING, logger="retention.load.loader"):
        counts = run_load(fresh_db, "events", tmp_path, since=today - timedelta(days=3), until=today)
    assert query(fresh_db, "select message_id from raw.events order by 1") == [("late",), ("old",), ("y",)]
    assert (counts["files_loaded"], counts["files_late"]) == (1, 1)
    assert f"late file: dated {week_old}" in caplog.text and str(late) in caplog.text
    assert run_load(fresh_db, "events", tmp_path, since=today - timedelta(days=3), until=today)["files_seen"] == 1


SHARED_IDS = 20_000


def _shuffled_files_sharing_ids(root) -> None:
    """6 files of one day, each holding 8,000 of 20,000 shared ids in its own order."""
    rng = random.Random(14)
    ids = [f"s{i:05d}" for i in range(SHARED_IDS)]
    template = json.dumps(track("MID", event="EVT"))
    for seq in range(1, 7):
        picked = rng.sample(ids, 8000)
        lines = [template.replace('"MID"', f'"{m}"').replace('"EVT"', f'"Event {seq}"') for m in picked]
        segment_file(root, DAY1, lines, seq=seq)


DEADLOCK_RETRY = "deadlock with a concurrent load"


@pytest.mark.slow
def test_parallel_loads_of_files_sharing_ids_in_shuffled_orders_never_deadlock(
    fresh_db, warehouse_server_url, tmp_path, caplog
):
    _shuffled_files_sharing_ids(tmp_path)
    name = fresh_db.rsplit("/", 1)[1].split("?")[0]
    in_order = create_database(warehouse_server_url, name + "_ref")
    run_load(in_order, "events", tmp_path)
    expected = snapshot(in_order)
    for attempt in range(3):
        url = fresh_db if attempt == 0 else create_database(warehouse_server_url, f"{name}_{attempt}")
        with caplog.at_level(logging.WARNING, logger="retention.load.loader"):
            counts = run_load(url, "events", tmp_path, workers=4)
        assert snapshot(url) == expected
        assert (counts["files_loaded"], counts["files_failed"]) == (6, 0)
        assert DEADLOCK_RETRY not in caplog.text


def test_two_loads_taking_shared_ids_in_opposite_orders_at_the_same_moment_do_not_deadlock(fresh_db, tmp_path, caplog):
    """The interleaving that deadlocks keys taken in file order, made certain: each file
    holds one id the other holds too, first in its own order, and both loads are held at
    the same point (an uncommitted key of a third transaction) before they take them."""
    from retention.load import schema

    segment_file(tmp_path, DAY1, [track("m_p"), track("b_k1"), track("m_q")], seq=1)
    segment_file(tmp_path, DAY1, [track("m_q"), track("b_k2"), track("m_p")], seq=2)
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        schema.ensure_schema(conn)
        schema.ensure_month_partitions(conn, {DAY1.replace(day=1)})
    with warehouse.connect(fresh_db) as blocker:  # holds b_k1 and b_k2, uncommitted
        blocker.execute(
            "insert into raw.event_ids (message_id, type, timestamp, _file_id, _line) "
            "values ('b_k1', 'track', now(), 0, 1), ('b_k2', 'track', now(), 0, 2)"
        )
        result: dict = {}
        loader = threading.Thread(target=lambda: result.update(run_load(fresh_db, "events", tmp_path, workers=2)))
        with caplog.at_level(logging.WARNING, logger="retention.load.loader"):
            loader.start()
            try:
                _until_waiting_for_the_blocker(fresh_db, blocker.info.backend_pid, 2)
            finally:
                blocker.rollback()
                loader.join(timeout=120)
    assert DEADLOCK_RETRY not in caplog.text
    # Whichever file committed first (the later one's shared ids are then superseded).
    assert result["files_loaded"] == 2
    assert (result["rows_loaded"] - result["superseded"], result["duplicates"] + result["superseded"]) == (4, 2)
    assert query(fresh_db, "select message_id, m.uri like '%%h001.gz' from raw.event_ids e "
                           "join raw.load_manifest m on m.file_id = e._file_id order by 1") == [
        ("b_k1", True), ("b_k2", False), ("m_p", True), ("m_q", True),
    ]


def _until_waiting_for_the_blocker(url: str, blocker_pid: int, loads: int, timeout_s: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    with warehouse.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "select count(*) from pg_stat_activity where datname = current_database() "
                "and %s = any(pg_blocking_pids(pid))", (blocker_pid,),
            ).fetchone()[0]
            if waiting >= loads:
                return
            time.sleep(0.01)
    raise AssertionError("the loads never reached the shared ids")


def test_a_reader_is_not_blocked_by_a_load_that_creates_a_partition(fresh_db, tmp_path):
    from landed_files import BIG_FILE_ROWS, wait_inside_copy

    segment_file(tmp_path, DAY1, [track("first")])
    run_load(fresh_db, "events", tmp_path)  # raw.events exists, with November only
    december = DAY1.replace(month=12, day=3)
    template = json.dumps(track("MID", day=december))
    segment_file(tmp_path, december, [template.replace('"MID"', f'"d{i}"') for i in range(BIG_FILE_ROWS)])

    script = (
        "import sys; from retention import warehouse; from retention.load.loader import load_source\n"
        "with warehouse.connect(sys.argv[1], autocommit=True) as c: load_source(c, 'events', sys.argv[2])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, fresh_db, str(tmp_path)], start_new_session=True)
    try:
        # Inside the December file's COPY (its partition is already there) ...
        wait_inside_copy(proc, fresh_db)
        with warehouse.connect(fresh_db, autocommit=True) as reader:
            assert reader.execute("select to_regclass('raw.events_p202412') is not null").fetchone()[0]
            reader.execute("set lock_timeout = '500ms'")
            # ... a reader of raw.events takes no lock a load holds.
            assert reader.execute("select count(*) from raw.events").fetchone()[0] == 1
    finally:
        proc.wait(timeout=300)
    assert proc.returncode == 0
    assert query(fresh_db, "select count(*) from raw.events_p202412") == [(BIG_FILE_ROWS,)]


def test_real_segment_streams_load_page_screen_any_track_name_and_no_received_at(fresh_db, tmp_path, caplog):
    folder = tmp_path / "events" / "segment-logs" / "src_web" / day_ms(DAY1)
    folder.mkdir(parents=True)
    base = {"userId": "u1", "timestamp": "2024-11-17T10:00:00Z", "context": {"groupId": "acc_1"}}
    page = {**base, "type": "page", "messageId": "pg1", "name": "Pricing", "properties": {"path": "/pricing"}}
    screen = {**base, "type": "screen", "messageId": "sc1", "name": "Home", "context": {"app": {"name": "x"}}}
    no_received = {**track("t_sent"), "sentAt": "2024-11-17T10:00:02Z"}
    no_received.pop("receivedAt")
    no_received_at_all = track("t_ts")
    no_received_at_all.pop("receivedAt")
    lines = [page, screen, track("t_any", event="Legacy Widget Clicked"), no_received, no_received_at_all]
    (folder / "A.NDJSON").write_bytes(b"".join(json.dumps(m).encode() + b"\n" for m in lines))
    (folder / "b.jsonl.gzip").write_bytes(gzip.compress(json.dumps(track("t_gzip")).encode() + b"\n"))
    (folder / "C.JSON.GZ").write_bytes(gzip.compress(json.dumps(identify("i_upper")).encode() + b"\n"))
    (folder / "notes.txt").write_text("not events")
    (folder / "export.xlsx").write_bytes(b"PK")

    with caplog.at_level(logging.WARNING, logger="retention.load.landing"):
        counts = run_load(fresh_db, "events", tmp_path)
    assert (counts["files_loaded"], counts["quarantined"]) == (3, {})
    warnings = [r.getMessage() for r in caplog.records if "are not events files" in r.getMessage()]
    assert len(warnings) == 1 and "notes.txt" in warnings[0] and "export.xlsx" in warnings[0]
    assert query(fresh_db, "select message_id, event, received_at_source from raw.events order by 1") == [
        ("t_any", "Legacy Widget Clicked", None), ("t_gzip", "Project Created", None),
        ("t_sent", "Project Created", "sentAt"), ("t_ts", "Project Created", "timestamp"),
    ]
    assert query(fresh_db, "select message_id, name, account_id, properties from raw.pages") == [
        ("pg1", "Pricing", "acc_1", {"path": "/pricing"})
    ]
    assert query(fresh_db, "select message_id, name, account_id, properties from raw.screens") == [("sc1", "Home", None, {})]
    assert query(fresh_db, "select message_id from raw.identifies") == [("i_upper",)]
    assert query(fresh_db, "select type, count(*) from raw.event_ids group by 1 order by 1") == [
        ("identify", 1), ("page", 1), ("screen", 1), ("track", 4),
    ]


def test_connection_strings_in_every_libpq_form_are_parsed_and_masked():
    # Parsing and round trips of these forms: tests/plugins/test_warehouse.py.
    for url, password, written in (
        ("postgresql://u:x@h:5432/db?password=p%26w", "p&w", "p%26w"),  # the query wins, as in libpq
        ("postgresql:///db?host=db.internal&user=etl&password=s3cret&sslmode=require", "s3cret", "s3cret"),
        ("postgresql://u:pw@[::1]:6000/db", "pw", ":pw@"),
    ):
        assert warehouse.parse_url(url).password == password
        assert written not in warehouse.redact(url) and "***" in warehouse.redact(url)
    assert warehouse.parse_url("postgresql://u@[::1]:6000/db").host == "::1"
    assert ("sslmode", "require") in warehouse.parse_url("postgresql:///db?host=h&sslmode=require").options


@pytest.mark.parametrize("url", ["postgresql://u:x@[::1/db", "postgresql://u:hunter2@h:port/db", "mysql://u:hunter2@h/db",
                                 "postgresql://h/db?password=hunter2&nosuch=1"])
def test_a_malformed_connection_string_is_one_line_naming_warehouse_url(url):
    with pytest.raises(warehouse.WarehouseError) as err:
        warehouse.parse_url(url)
    message = str(err.value)
    assert "WAREHOUSE_URL" in message and "\n" not in message
    assert "hunter2" not in message and ":x@" not in message


def test_an_unreachable_warehouse_masks_a_query_password(fresh_db):
    url = "postgresql://u@127.0.0.1:1/db?password=hunter2"
    with pytest.raises(warehouse.WarehouseError) as err:
        warehouse.check_reachable(url)
    assert "WAREHOUSE_URL" in str(err.value) and "hunter2" not in str(err.value)


def test_every_field_the_segment_spec_makes_optional_may_be_absent(fresh_db, tmp_path):
    """Segment spec: ``properties`` (track, page, screen), ``traits`` (identify, group),
    ``timestamp`` (the Tracking API defaults it to when the message was received),
    ``receivedAt`` / ``sentAt``, ``context`` (page, screen, group) and ``name`` (page,
    screen) are optional; each message below lacks one or more of them and loads."""
    no_props = track("t_no_props")
    no_props.pop("properties")
    no_ts = track("t_no_ts")
    no_ts.pop("timestamp")
    no_times = {k: v for k, v in track("t_sent_only", sentAt="2024-11-17T10:00:03Z").items()
                if k not in ("timestamp", "receivedAt")}
    bare_identify = {k: v for k, v in identify("i_bare").items() if k != "traits"}
    bare_group = {k: v for k, v in group("g_bare").items() if k not in ("traits", "context")}
    bare_page = {"type": "page", "messageId": "pg_bare", "anonymousId": "anon_1", "receivedAt": "2024-11-17T10:00:01Z"}
    bare_screen = {**bare_page, "type": "screen", "messageId": "sc_bare", "timestamp": "2024-11-17T10:00:00Z"}
    segment_file(tmp_path, DAY1, [no_props, no_ts, no_times, bare_identify, bare_group, bare_page, bare_screen])

    counts = run_load(fresh_db, "events", tmp_path)
    assert (counts["rows_loaded"], counts["quarantined"]) == (7, {})
    assert query(fresh_db, "select message_id, properties, timestamp::text, received_at_source from raw.events order by 1") == [
        ("t_no_props", {}, "2024-11-17 10:00:00+00", None),
        ("t_no_ts", {"n": 1}, "2024-11-17 10:00:01+00", None),  # timestamp: receivedAt
        ("t_sent_only", {"n": 1}, "2024-11-17 10:00:03+00", "sentAt"),  # both: sentAt
    ]
    assert query(fresh_db, "select message_id, traits from raw.identifies") == [("i_bare", {})]
    assert query(fresh_db, "select message_id, account_id, traits from raw.groups") == [("g_bare", "acc_000001", {})]
    assert query(fresh_db, "select message_id, name, account_id, properties, timestamp::text from raw.pages") == [
        ("pg_bare", None, None, {}, "2024-11-17 10:00:01+00")
    ]
    assert query(fresh_db, "select message_id, name, timestamp::text, received_at_source from raw.screens") == [
        ("sc_bare", None, "2024-11-17 10:00:00+00", None)
    ]


def test_a_reloaded_file_that_dropped_an_id_a_later_file_holds_gives_that_id_back(
    fresh_db, warehouse_server_url, tmp_path, caplog
):
    """A changed file no longer holds ``shared``, whose kept copy it was; the later copies
    (one in another file, dropped as a duplicate; one superseded by a backfill) come back,
    so the state is an in-order load of the files as they are now."""
    early = segment_file(tmp_path, DAY1, [track("a1"), track("shared", event="Early"), track("back", event="Early")])
    segment_file(tmp_path, DAY2, [track("shared", day=DAY2, event="Late"), track("b1", day=DAY2)])
    segment_file(tmp_path, DAY3, [track("back", day=DAY3, event="Late"), track("c1", day=DAY3)])
    run_load(fresh_db, "events", tmp_path, since=DAY3, until=DAY3 + timedelta(days=1))  # DAY3 first
    run_load(fresh_db, "events", tmp_path, since=DAY1, until=DAY3)  # "back" superseded in DAY3, "shared" dropped in DAY2
    assert query(fresh_db, "select message_id, event from raw.events where message_id in ('shared', 'back') order by 1") == [
        ("back", "Early"), ("shared", "Early")
    ]

    early.write_bytes(gzip.compress(json.dumps(track("a1")).encode() + b"\n"))  # both shared ids gone
    with caplog.at_level(logging.WARNING, logger="retention.load.loader"):
        counts = run_load(fresh_db, "events", tmp_path, since=DAY1, until=DAY2)

    name = fresh_db.rsplit("/", 1)[1].split("?")[0]
    in_order = create_database(warehouse_server_url, name + "_ref")
    run_load(in_order, "events", tmp_path)
    assert snapshot(fresh_db) == snapshot(in_order)
    assert query(fresh_db, "select message_id, event from raw.events where message_id in ('shared', 'back') order by 1") == [
        ("back", "Late"), ("shared", "Late")
    ]
    assert (counts["files_reloaded"], counts["files_reread"]) == (1, 2)
    assert "no longer holds keys that 2 other file(s) also hold" in caplog.text
    assert query(fresh_db, "select count(*) from raw.reread_files") == [(0,)]
    assert run_load(fresh_db, "events", tmp_path)["files_skipped"] == 3


def test_a_reloaded_export_that_dropped_a_key_a_later_export_holds_gives_that_key_back(
    fresh_db, warehouse_server_url, tmp_path
):
    row = {"account_id": "acc_1", "user_id": "u", "email": "", "score": 9, "comment": "", "responded_at": "2024-11-17T10:00:00Z"}
    nps_file(tmp_path, "2024-10", [{**row, "response_id": "r1"}, {**row, "response_id": "shared", "comment": "Oct"}])
    nps_file(tmp_path, "2024-11", [{**row, "response_id": "shared", "comment": "Nov"}])
    run_load(fresh_db, "nps", tmp_path)
    nps_file(tmp_path, "2024-10", [{**row, "response_id": "r1"}])
    counts = run_load(fresh_db, "nps", tmp_path)

    name = fresh_db.rsplit("/", 1)[1].split("?")[0]
    in_order = create_database(warehouse_server_url, name + "_ref")
    run_load(in_order, "nps", tmp_path)
    assert snapshot(fresh_db) == snapshot(in_order)
    assert query(fresh_db, "select comment from raw.nps_responses where response_id = 'shared'") == [("Nov",)]
    assert counts["files_reread"] == 1
