"""Several files at a time (``workers``): the same rows, counts and manifest as one at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from landed_files import DAY1, DAY2, identify, nps_file, query, run_load, segment_file, snapshot, track

from retention.load.loader import load_workers
from support.databases import create_database

DAY3 = DAY2 + timedelta(days=1)


def _landed_with_shared_ids(root) -> None:
    """Files whose message ids overlap within a file, across days, and between two
    large files of one day listing the shared ids in opposite orders."""
    segment_file(root, DAY1, [track("a1"), track("a2"), track("dup", event="Report Created"), identify("i1")], seq=1)
    segment_file(root, DAY1, [track("dup", event="Signed In"), track("b1"), track("dup", event="Comment Added")], seq=2)
    segment_file(root, DAY2, [track("dup", day=DAY2), track("c1", day=DAY2), identify("i1", day=DAY2), track("a2", day=DAY2)])
    shared = [f"s{i}" for i in range(1500)]
    segment_file(root, DAY3, [track(m, day=DAY3, event="Report Created") for m in shared] + [track("a1", day=DAY3)], seq=1)
    segment_file(root, DAY3, [track(m, day=DAY3, event="Signed In") for m in reversed(shared)] + [track("d1", day=DAY3)], seq=2)


def test_parallel_load_keeps_exactly_what_one_at_a_time_keeps(fresh_db, warehouse_server_url, tmp_path):
    _landed_with_shared_ids(tmp_path)
    name = fresh_db.rsplit("/", 1)[1].split("?")[0]
    sequential = create_database(warehouse_server_url, name + "_seq")
    one = run_load(sequential, "events", tmp_path)

    many = run_load(fresh_db, "events", tmp_path, workers=4)
    assert snapshot(fresh_db) == snapshot(sequential)  # rows, event_ids and manifest counts alike
    assert (one["files_loaded"], one["rows_loaded"], one["duplicates"], one["superseded"]) == (5, 1507, 1506, 0)
    # A later file may commit a shared id first and then be superseded by the earlier
    # one: the run counts then show that replacement; net of it they are the same.
    assert many["files_loaded"] == 5
    assert many["rows_loaded"] - many["superseded"] == 1507
    assert many["duplicates"] + many["superseded"] == 1506
    # The first file of the day wins every shared id, whichever of the two committed first.
    assert query(fresh_db, "select event, count(*) from raw.events where message_id like 's%%' group by 1") == [
        ("Report Created", 1500)
    ]


def test_parallel_backfill_ends_like_an_in_order_load(fresh_db, warehouse_server_url, tmp_path):
    _landed_with_shared_ids(tmp_path)
    name = fresh_db.rsplit("/", 1)[1].split("?")[0]
    in_order = create_database(warehouse_server_url, name + "_ref")
    run_load(in_order, "events", tmp_path)

    run_load(fresh_db, "events", tmp_path, since=DAY2, workers=3)  # the later days first
    backfill = run_load(fresh_db, "events", tmp_path, workers=3)  # then everything
    assert (backfill["files_loaded"], backfill["files_skipped"]) == (2, 3)
    assert snapshot(fresh_db) == snapshot(in_order)
    # Superseded: a1 (of DAY3), a2, dup, i1 (of DAY2); once more if DAY1's second file
    # took dup from DAY2 before DAY1's first file took it from the second.
    assert backfill["superseded"] in (4, 5)


def test_parallel_exports_sharing_keys_in_opposite_orders_finish_like_one_at_a_time(
    fresh_db, warehouse_server_url, tmp_path
):
    """Four NPS exports list the same 3,000 response ids, two in each order: loaded four
    at a time they neither deadlock nor keep anything one-at-a-time would not (the first
    export keeps every id, even when a later one commits first)."""
    ids = [f"r{i:05d}" for i in range(3000)]
    for n, month in enumerate(("2024-09", "2024-10", "2024-11", "2024-12")):
        nps_file(tmp_path, month, [
            {"response_id": r, "account_id": "acc_000001", "score": n, "responded_at": f"{month}-03T12:00:00Z"}
            for r in (ids if n % 2 else list(reversed(ids)))
        ])
    name = fresh_db.rsplit("/", 1)[1].split("?")[0]
    sequential = create_database(warehouse_server_url, name + "_seq")
    one = run_load(sequential, "nps", tmp_path)
    by_score = "select score, count(*) from raw.nps_responses group by 1"
    for attempt in range(3):  # a deadlock fails a file, and LoadFailed ends the run
        parallel = create_database(warehouse_server_url, f"{name}_par{attempt}")
        many = run_load(parallel, "nps", tmp_path, workers=4)
        assert many["files_loaded"] == 4
        assert query(parallel, by_score) == query(sequential, by_score) == [(0, 3000)]
    assert one["files_loaded"] == 4


def test_worker_count_comes_from_the_argument_then_the_environment():
    assert load_workers(3, {"RETENTION_LOAD_WORKERS": "5"}) == 3
    assert load_workers(None, {"RETENTION_LOAD_WORKERS": "5"}) == 5
    assert load_workers(None, {}) == 2
    for bad in ("0", "two"):
        with pytest.raises(ValueError, match="RETENTION_LOAD_WORKERS"):
            load_workers(None, {"RETENTION_LOAD_WORKERS": bad})
