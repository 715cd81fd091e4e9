"""File ingestion against a real Postgres: exactly once, dedup, backfill, quarantine, formats."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from landed_files import (
    DAY1,
    DAY2,
    group,
    identify,
    kill_inside_copy,
    nps_file,
    query,
    run_load,
    segment_file,
    small_then_big_file,
    snapshot,
    support_file,
    track,
)

from retention import warehouse
from support.databases import create_database

DAY3 = DAY2 + timedelta(days=1)


def test_first_load_incremental_and_rerun(fresh_db, tmp_path):
    segment_file(tmp_path, DAY1, [track("a1"), track("a2", event="Report Created"), identify("i1"), group("g1")])
    first = run_load(fresh_db, "events", tmp_path, since=DAY1, until=DAY2)
    assert (first["files_loaded"], first["rows_loaded"], first["duplicates"]) == (1, 4, 0)
    assert query(fresh_db, "select message_id, event, account_id from raw.events order by 1") == [
        ("a1", "Project Created", "acc_000001"),
        ("a2", "Report Created", "acc_000001"),
    ]
    assert query(fresh_db, "select message_id, account_id from raw.identifies") == [("i1", "acc_000001")]
    assert query(fresh_db, "select message_id, account_id from raw.groups") == [("g1", "acc_000001")]

    # Next day: a new file (one message is a late retry of a1), loaded by its own window.
    segment_file(tmp_path, DAY2, [track("b1", day=DAY2), track("a1")])
    second = run_load(fresh_db, "events", tmp_path, since=DAY2, until=DAY3)
    assert (second["files_seen"], second["files_loaded"], second["rows_loaded"], second["duplicates"]) == (1, 1, 1, 1)
    assert query(fresh_db, "select count(*) from raw.events") == [(3,)]
    # Monthly partition created on demand (and no default partition to fall into).
    assert query(fresh_db, "select count(*) from raw.events_p202411") == [(3,)]
    assert query(fresh_db, "select to_regclass('raw.events_default')") == [(None,)]

    before = snapshot(fresh_db)
    rerun = run_load(fresh_db, "events", tmp_path)
    assert (rerun["files_skipped"], rerun["files_loaded"], rerun["rows_loaded"]) == (2, 0, 0)
    assert snapshot(fresh_db) == before


def test_backfill_gives_the_same_rows_as_loading_in_order(fresh_db, warehouse_server_url, tmp_path):
    # m_dup is in both days with different content: the earlier file's row must win.
    segment_file(tmp_path, DAY1, [track("x1"), track("m_dup", event="Report Created"), identify("i_dup")])
    segment_file(tmp_path, DAY2, [track("m_dup", day=DAY2, event="Signed In"), track("y1", day=DAY2), identify("i_dup", day=DAY2)])

    in_order = create_database(warehouse_server_url, fresh_db.rsplit("/", 1)[1].split("?")[0] + "_ref")
    run_load(in_order, "events", tmp_path)

    run_load(fresh_db, "events", tmp_path, since=DAY2, until=DAY3)  # today's run first
    backfill = run_load(fresh_db, "events", tmp_path, since=DAY1, until=DAY2)  # then the past day
    assert backfill["superseded"] == 2
    assert snapshot(fresh_db) == snapshot(in_order)
    assert query(fresh_db, "select event from raw.events where message_id = 'm_dup'") == [("Report Created",)]
    # The manifest still adds up: rows_loaded per file sums to the table contents.
    assert query(fresh_db, "select sum(rows_loaded)::int, sum(rows_duplicate)::int from raw.load_manifest") == [(4, 2)]

    again = snapshot(fresh_db)
    run_load(fresh_db, "events", tmp_path, since=DAY1, until=DAY2)
    assert snapshot(fresh_db) == again


def test_bad_input_is_quarantined_per_reason_and_good_rows_all_load(fresh_db, tmp_path):
    good = [track(f"ok{i}") for i in range(6)]
    injected: list[tuple[str, int, str]] = []
    items: list = []

    def bad(item, reason):
        items.append(item)
        injected.append((reason, len(items)))

    items.append(good[0])
    bad(b"{not json", "malformed_json")
    bad(b'{"type": "track", "messageId": "\xff\xfe", "userId": "u"}', "invalid_utf8")
    bad(json.dumps(track("nul", properties={"x": "a\u0000b"})), "invalid_utf8")
    items.append(good[1])
    bad({k: v for k, v in track("nomid").items() if k != "messageId"}, "missing_field")
    bad({k: v for k, v in track("nouser").items() if k != "userId"}, "missing_field")
    bad(track("badts", timestamp=1731801600), "wrong_type")
    bad(track("badprops", properties=["a"]), "wrong_type")
    bad(track("future", timestamp="2999-01-01T00:00:00Z"), "timestamp_out_of_range")
    bad(track("ancient", timestamp="1999-12-31T23:59:59Z"), "timestamp_out_of_range")
    bad({"type": "alias", "messageId": "al", "userId": "u", "timestamp": "2024-11-17T00:00:00Z"}, "unknown_event")
    bad(b"[1, 2]", "malformed_json")
    bad(track("acc", context={"library": {}}), "missing_field")
    bad(track("late", timestamp="2024-10-01T00:00:00Z"), "timestamp_out_of_range")  # 47 days before receivedAt
    bad(b"{" + b'"pad": "' + b"x" * 5000 + b'"', "malformed_json")  # long: preview is cut
    items.extend(good[2:4])
    items.append(track("ok0"))  # a duplicate: dropped and counted, not quarantined
    clean = segment_file(tmp_path, DAY1, items, seq=1)

    # A gzip file cut mid-stream: its readable lines load, the rest is one quarantine row.
    readable = b"".join(json.dumps(m).encode() + b"\n" for m in good[4:])
    whole = gzip.compress(readable + json.dumps(track("cut")).encode())
    cut = segment_file(tmp_path, DAY1, [], seq=2)
    cut.write_bytes(whole[:-12])  # drop the gzip trailer and the end of the deflate stream

    counts = run_load(fresh_db, "events", tmp_path)
    expected = {}
    for reason, _ in injected:
        expected[reason] = expected.get(reason, 0) + 1
    expected["truncated_gzip"] = 1
    assert counts["quarantined"] == dict(sorted(expected.items()))
    assert counts["duplicates"] == 1
    assert counts["files_truncated"] == 1

    rows = query(fresh_db, "select uri, line, reason, byte_offset, length(raw) from raw.quarantine order by uri, line")
    assert [(r[0], r[1], r[2]) for r in rows if r[0].endswith(clean.name)] == [
        (f"file://{clean}", line, reason) for reason, line in injected
    ]
    assert max(r[4] for r in rows) <= 1024
    truncated = [r for r in rows if r[2] == "truncated_gzip"]
    # byte_offset: where the first lost line starts in the decompressed stream.
    assert (truncated[0][0], truncated[0][1], truncated[0][3]) == (f"file://{cut}", 3, len(readable))
    loaded = {r[0] for r in query(fresh_db, "select message_id from raw.events")}
    # Everything readable from the cut file loaded; the 6 good ones are all there.
    assert {m["messageId"] for m in good} <= loaded
    assert query(fresh_db, "select truncated, rows_quarantined from raw.load_manifest order by uri") == [
        (False, len(injected)),
        (True, 1),
    ]


def test_kill_mid_file_then_rerun_ends_with_exact_rows(fresh_db, tmp_path):
    small_then_big_file(tmp_path, DAY1)
    script = (
        "import sys; from retention import warehouse; from retention.load.loader import load_source\n"
        "with warehouse.connect(sys.argv[1], autocommit=True) as c: load_source(c, 'events', sys.argv[2])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, fresh_db, str(tmp_path)], start_new_session=True)
    kill_inside_copy(proc, fresh_db)
    # Killed inside the second file: its rows and manifest entry rolled back together.
    assert query(fresh_db, "select count(*) from raw.load_manifest") == [(1,)]
    assert query(fresh_db, "select count(*) from raw.events") == [(10,)]

    resumed = run_load(fresh_db, "events", tmp_path)
    assert (resumed["files_skipped"], resumed["files_loaded"], resumed["rows_loaded"]) == (1, 1, 60_000)
    assert query(fresh_db, "select count(*), count(distinct message_id) from raw.events") == [(60_010, 60_010)]
    assert query(fresh_db, "select count(*) from raw.event_ids") == [(60_010,)]


def test_csv_and_parquet_events_load_like_json_lines(fresh_db, tmp_path):
    flat_cols = ["type", "messageId", "userId", "anonymousId", "event", "groupId", "timestamp", "receivedAt", "properties", "traits", "context"]

    def flat(msg: dict, prefix: str) -> dict:
        row = {c: msg.get(c) for c in flat_cols}
        row["messageId"] = prefix + msg["messageId"]
        row["groupId"] = msg.get("groupId") or msg.get("context", {}).get("groupId")
        for c in ("properties", "traits", "context"):
            row[c] = json.dumps(msg[c]) if c in msg else None
        return row

    msgs = [track("1"), track("2", event="Campaign Sent", properties={"recipients": 40}), identify("3"), group("4")]
    segment_file(tmp_path, DAY1, [dict(m, messageId="j" + m["messageId"]) for m in msgs])
    folder = tmp_path / "events" / "exports"
    folder.mkdir(parents=True)
    import csv

    with (folder / "events_2024-11.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=flat_cols)
        writer.writeheader()
        writer.writerows([flat(m, "c") for m in msgs])
        writer.writerow(flat(track("bad", timestamp="yesterday"), "c"))
    pq.write_table(pa.Table.from_pylist([flat(m, "p") for m in msgs]), folder / "events_2024-11.parquet")

    counts = run_load(fresh_db, "events", tmp_path)
    assert counts["files_loaded"] == 3
    assert counts["quarantined"] == {"wrong_type": 1}
    assert query(fresh_db, "select line from raw.quarantine") == [(6,)]  # header is line 1

    def by_prefix(prefix: str) -> list[tuple]:
        return query(
            fresh_db,
            "select substr(message_id, 2), type, event, user_id, account_id, timestamp, received_at, properties, context "
            "from raw.events where message_id like %s order by 1",
            (prefix + "%",),
        )

    assert by_prefix("j") == by_prefix("c") == by_prefix("p") and len(by_prefix("j")) == 2
    for table in ("identifies", "groups"):
        rows = query(fresh_db, f"select substr(message_id, 2), account_id, traits::text from raw.{table} order by 1, message_id")
        assert len(rows) == 3 and len(set(rows)) == 1


def test_a_file_that_changed_after_it_was_loaded_is_loaded_again_in_place(fresh_db, tmp_path):
    path = segment_file(tmp_path, DAY1, [track("a1"), track("a2"), "{bad"])
    run_load(fresh_db, "events", tmp_path)
    sha_loaded = query(fresh_db, "select sha256 from raw.load_manifest")[0][0]

    path.write_bytes(gzip.compress(json.dumps(track("a3")).encode() + b"\n"))
    counts = run_load(fresh_db, "events", tmp_path)
    assert (counts["files_reloaded"], counts["rows_loaded"], counts["rows_replaced"]) == (1, 1, 2)
    assert counts["reloaded_uris"] == [f"file://{path}"]
    assert query(fresh_db, "select message_id from raw.events order by 1") == [("a3",)]
    assert query(fresh_db, "select count(*) from raw.quarantine") == [(0,)]  # the old version's reject went too
    status = query(fresh_db, "select status, replaced_sha256, rows_loaded, rows_quarantined from raw.load_manifest")
    assert status == [("loaded", sha_loaded, 1, 0)]


def test_nps_and_support_exports(fresh_db, tmp_path):
    nps_file(tmp_path, "2024-10", [
        {"response_id": "r1", "account_id": "acc_000001", "user_id": "usr_000001_01", "email": "a@example.com",
         "score": 9, "comment": 'Great, "really"\nsecond line', "responded_at": "2024-10-03T12:00:00Z"},
        {"response_id": "r2", "account_id": "acc_000002", "score": "eleven", "responded_at": "2024-10-04T12:00:00Z"},
    ])
    nps_file(tmp_path, "2024-11", [
        {"response_id": "r1", "account_id": "acc_000001", "score": 3, "responded_at": "2024-11-03T12:00:00Z"},
        {"response_id": "r3", "account_id": "acc_000003", "score": 0, "responded_at": "2024-11-05T12:00:00Z"},
    ])
    support_file(tmp_path, "2024-11", [
        {"ticket_id": "t1", "account_id": "acc_000001", "topic": "billing", "status": "open", "created_at": "2024-11-02T08:00:00Z", "resolved_at": None},
        {"ticket_id": "t2", "account_id": "acc_000001", "created_at": "not a date"},
        {"ticket_id": "t3", "topic": "sso", "created_at": "2024-11-02T08:00:00Z"},
    ])
    nps = run_load(fresh_db, "nps", tmp_path)
    assert (nps["rows_loaded"], nps["duplicates"], nps["quarantined"]) == (2, 1, {"wrong_type": 1})
    assert query(fresh_db, "select response_id, score, comment from raw.nps_responses order by 1") == [
        ("r1", 9, 'Great, "really"\nsecond line'),
        ("r3", 0, None),
    ]
    # The multi-line row starts on line 2; the bad score is on line 4 (after the 2-line row).
    assert query(fresh_db, "select line from raw.quarantine") == [(4,)]

    support = run_load(fresh_db, "support", tmp_path)
    assert (support["rows_loaded"], support["quarantined"]) == (1, {"missing_field": 1, "wrong_type": 1})
    assert query(fresh_db, "select ticket_id, topic, status from raw.support_tickets") == [("t1", "billing", "open")]
    # A month window picks only the export that overlaps it.
    assert run_load(fresh_db, "nps", tmp_path, since=DAY1, until=DAY2)["files_seen"] == 1


def test_unknown_source_and_missing_location_say_what_to_do(fresh_db, tmp_path):
    from retention.load.landing import LandingError

    with pytest.raises(LandingError, match="does not exist"):
        run_load(fresh_db, "events", tmp_path / "nowhere")
    with pytest.raises(LandingError, match="unknown source"):
        run_load(fresh_db, "clicks", tmp_path)


def test_each_source_reads_only_its_own_folder_of_a_landing_root(fresh_db, tmp_path):
    from retention.load.landing import LandingError

    # A landing root with events/ only: no NPS or support file is there, so those
    # sources read nothing (they once read the event files as theirs, quarantined every
    # line and, holding the uris in the manifest, kept the events from loading).
    events_only = tmp_path / "events_only"
    segment_file(events_only, DAY1, [track("e1"), track("e2")])
    for source in ("nps", "support"):
        assert run_load(fresh_db, source, events_only)["files_seen"] == 0
    assert run_load(fresh_db, "events", events_only)["rows_loaded"] == 2
    # ... and the other way round: NPS and support exports are never read as events.
    exports_only = tmp_path / "exports_only"
    nps_file(exports_only, "2024-11", [{"response_id": "r1", "account_id": "acc_000001", "score": "9",
                                       "responded_at": "2024-11-17T10:00:00Z"}])
    support_file(exports_only, "2024-11", [{"ticket_id": "t1", "account_id": "acc_000001",
                                            "created_at": "2024-11-17T10:00:00Z"}])
    assert run_load(fresh_db, "events", exports_only)["files_seen"] == 0

    # A plain folder of files is read as the source asked for; once a file is in the
    # manifest as one source, loading it as another is an error that says what to do.
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "batch.jsonl").write_text(json.dumps(track("x1")) + "\n")
    assert run_load(fresh_db, "support", loose)["quarantined"] == {"missing_field": 1}
    with pytest.raises(LandingError, match="as a support file, so it cannot load as events"):
        run_load(fresh_db, "events", loose)
    assert query(fresh_db, "select count(*) from raw.events where message_id = 'x1'") == [(0,)]


def test_awkward_text_offsets_and_month_boundaries_load_exactly(fresh_db, tmp_path):
    # Text that COPY must escape, JSON with escapes, timestamps in other offsets or without
    # one, and rows of three months in one file (partitions created in the middle of it).
    odd = "tab\there\nnew\\line\rcr"
    props = {"quote": 'a"b', "backslash": "c\\d", "unicode": "é😀", "control": "\u0001", "nested": {"t": "\t"}}
    messages = [
        track("m1", userId=odd, anonymousId="anon\\1", properties=props, context={"groupId": "acc\t1"}),
        track("m2", timestamp="2024-10-31T23:30:00-02:00", receivedAt="2024-11-01T01:30:01Z"),  # UTC: Nov 1st
        track("m3", timestamp="2024-10-20T08:00:00+05:30", receivedAt="2024-10-20T02:30:01Z"),  # October
        track("m4", timestamp="2024-11-17T10:00:00", receivedAt="2024-11-17T10:00:01"),  # no offset: UTC
        track("m5", timestamp="2024-12-01T00:00:00.5Z", receivedAt="2024-12-01T00:00:01Z"),  # December
        track(odd, event="Report Created"),
        track(odd, event="Signed In"),  # a duplicate in the same file: the first line wins
        dict(identify("i1"), userId=odd, traits={"name": "x\\y\tz"}),
    ]
    segment_file(tmp_path, DAY1, messages)
    counts = run_load(fresh_db, "events", tmp_path)
    assert (counts["rows_loaded"], counts["duplicates"], counts["quarantined"]) == (7, 1, {})

    rows = query(
        fresh_db,
        "select message_id, user_id, anonymous_id, account_id, properties, event, _line, "
        "to_char(timestamp at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), tableoid::regclass::text "
        "from raw.events order by _line",
    )
    assert [(r[0], r[7], r[8]) for r in rows] == [
        ("m1", "2024-11-17 10:00:00.000", "raw.events_p202411"),
        ("m2", "2024-11-01 01:30:00.000", "raw.events_p202411"),
        ("m3", "2024-10-20 02:30:00.000", "raw.events_p202410"),
        ("m4", "2024-11-17 10:00:00.000", "raw.events_p202411"),
        ("m5", "2024-12-01 00:00:00.500", "raw.events_p202412"),
        (odd, "2024-11-17 10:00:00.000", "raw.events_p202411"),
    ]
    assert rows[0][1:5] == (odd, "anon\\1", "acc\t1", props)
    assert (rows[5][5], rows[5][6]) == ("Report Created", 6)
    assert query(fresh_db, "select user_id, traits from raw.identifies") == [(odd, {"name": "x\\y\tz"})]
    assert query(fresh_db, "select count(*), count(distinct message_id) from raw.event_ids") == [(7, 7)]


def test_event_ids_of_an_earlier_version_are_upgraded_in_place(fresh_db, tmp_path):
    # raw.event_ids as earlier versions made it: default collation, no account_id, one
    # kept id from a file already in the manifest.
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        conn.execute(
            "create schema raw; create table raw.event_ids (message_id text primary key, type text not null, "
            "timestamp timestamptz not null, _file_id bigint not null, _line bigint not null)"
        )
        conn.execute("insert into raw.event_ids values ('old1', 'track', '2024-11-10T00:00:00Z', 1, 1)")
    segment_file(tmp_path, DAY1, [track("old1"), track("new1")])
    counts = run_load(fresh_db, "events", tmp_path)
    assert (counts["rows_loaded"], counts["duplicates"]) == (1, 1)
    assert query(
        fresh_db,
        "select a.attname, c.collname from pg_attribute a left join pg_collation c on c.oid = a.attcollation "
        "where a.attrelid = 'raw.event_ids'::regclass and a.attname in ('message_id', 'account_id') order by 1",
    ) == [("account_id", "default"), ("message_id", "C")]
    assert query(fresh_db, "select message_id, account_id from raw.event_ids order by 1") == [
        ("new1", "acc_000001"), ("old1", None),
    ]
    assert query(fresh_db, "select message_id from raw.events") == [("new1",)]


def test_a_raw_schema_from_before_the_ledger_marks_the_look_back_as_changed(fresh_db, tmp_path):
    """Files loaded by an earlier version but not yet transformed lie within the 4 days
    before each source's landed end (the models' old look-back): the ledger starts there."""
    segment_file(tmp_path, DAY1, [track("a1")])
    run_load(fresh_db, "events", tmp_path, since=DAY1, until=DAY2)
    with warehouse.connect(fresh_db) as conn:
        conn.execute("drop table raw.changed_days")  # as an earlier version left the schema
    segment_file(tmp_path, DAY2, [track("b1", day=DAY2)])
    run_load(fresh_db, "events", tmp_path, since=DAY2, until=DAY3)
    assert query(fresh_db, "select source, day from raw.changed_days order by 2") == [
        ("events", DAY2 - timedelta(days=4)), ("events", DAY2),  # the look-back, then the new file
    ]


def consume(url: str) -> None:
    with warehouse.connect(url) as conn:
        conn.execute("delete from raw.changed_days")


def test_each_file_records_the_earliest_day_it_changed(fresh_db, tmp_path):
    """raw.changed_days: the incremental product models rebuild from these days (macros/rebuilt_window.sql)."""
    changed = "select source, day::text from raw.changed_days order by 1, 2"
    late = DAY1 - timedelta(days=9)
    segment_file(tmp_path, DAY2, [track("b1", day=DAY2), track("b2", day=late), identify("i1", day=DAY2)])
    run_load(fresh_db, "events", tmp_path)
    assert query(fresh_db, changed) == [("events", late.isoformat())]  # a late event: its own day

    consume(fresh_db)  # what a dbt run does
    assert run_load(fresh_db, "events", tmp_path)["files_skipped"] == 1
    assert query(fresh_db, changed) == []  # nothing loaded: nothing changed

    # the file changes without its late event: the day whose row went is recorded
    path = segment_file(tmp_path, DAY2, [track("b1", day=DAY2)])
    assert run_load(fresh_db, "events", tmp_path)["files_reloaded"] == 1
    assert query(fresh_db, changed) == [("events", late.isoformat())]
    consume(fresh_db)

    segment_file(tmp_path, DAY1, [track("c1")], seq=2)
    run_load(fresh_db, "events", tmp_path)
    assert query(fresh_db, changed) == [("events", DAY1.isoformat())]  # the new file only

    # a backfill: an earlier file whose copy of c1 carries another time supersedes the kept
    # one; both days changed
    consume(fresh_db)
    segment_file(tmp_path, DAY1, [track("c1", day=DAY3)], seq=1)
    run_load(fresh_db, "events", tmp_path, since=DAY1, until=DAY2)
    assert query(fresh_db, "select count(*) from raw.events where message_id = 'c1'") == [(1,)]
    assert query(fresh_db, changed) == [("events", DAY1.isoformat())]  # the dropped copy's day
    consume(fresh_db)

    nps_file(tmp_path, "2024-10", [
        {"response_id": "r1", "account_id": "acc_000001", "score": 9, "responded_at": "2024-10-03T23:30:00-02:00"},
        {"response_id": "r2", "account_id": "acc_000002", "score": 7, "responded_at": "2024-10-05T12:00:00Z"},
    ])
    support_file(tmp_path, "2024-11", [
        {"ticket_id": "t1", "account_id": "acc_000001", "topic": "billing", "created_at": "2024-11-02T08:00:00Z"},
        {"ticket_id": "t2", "account_id": "acc_000001", "created_at": "not a date"},  # quarantined: no day
    ])
    run_load(fresh_db, "nps", tmp_path)
    run_load(fresh_db, "support", tmp_path)
    assert query(fresh_db, changed) == [("nps", "2024-10-04"), ("support", "2024-11-02")]  # UTC days
