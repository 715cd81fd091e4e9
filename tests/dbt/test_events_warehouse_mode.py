"""Warehouse-source events mode (issue #18): the tables a Segment warehouse destination
writes (`tracks`, `identifies`, `groups`, one table per event with its properties as
columns, traits as columns, the context flattened into `context_*`) are read in place by
the product staging models, with no file loading. One real `dbt build` of the staging
models on a database that has no raw event tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from finance_raw import run_dbt
from retention import warehouse
from support.databases import create_database

pytestmark = pytest.mark.slow

T = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)

WAREHOUSE_DDL = """
create schema segment_prod;
create table segment_prod.tracks (
    id text, event text, event_text text, user_id text, anonymous_id text, context_group_id text,
    context_library_name text, "timestamp" timestamptz, received_at timestamptz, sent_at timestamptz,
    original_timestamp timestamptz, uuid_ts timestamptz);
create table segment_prod.messages_sent (
    id text, event text, event_text text, user_id text, anonymous_id text, context_group_id text,
    "timestamp" timestamptz, received_at timestamptz, uuid_ts timestamptz, recipients bigint, channel_name text);
create table segment_prod.identifies (
    id text, user_id text, anonymous_id text, context_ip text, "timestamp" timestamptz, received_at timestamptz,
    uuid_ts timestamptz, email text, first_name text, last_name text);
create table segment_prod.groups (
    id text, user_id text, group_id text, "timestamp" timestamptz, received_at timestamptz, uuid_ts timestamptz,
    name text, plan text, created_at text);
create table segment_prod.pages (id text, user_id text, "timestamp" timestamptz, url text);
"""


@pytest.fixture(scope="module")
def built(warehouse_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = create_database(warehouse_server_url, "t_events_warehouse_mode")
    with warehouse.connect(url, autocommit=True) as conn:
        conn.execute(WAREHOUSE_DDL)
        conn.execute("insert into segment_prod.tracks values"
                     " ('m1', 'Messages Sent', 'Messages Sent', 'usr_1', null, 'acc_1', 'analytics.js', %(t)s, %(t)s, %(t)s, %(t)s, %(t)s),"
                     " ('m2', 'Report Viewed', 'Report Viewed', 'usr_2', 'anon_2', null, 'analytics.js', %(t)s, %(t)s, %(t)s, %(t)s, %(t)s),"
                     " ('m3', 'Report Viewed', 'Report Viewed', null, 'anon_3', null, null, %(t)s, %(t)s, null, null, %(t)s)",
                     {"t": T})
        conn.execute("insert into segment_prod.messages_sent values"
                     " ('m1', 'Messages Sent', 'Messages Sent', 'usr_1', null, 'acc_1', %(t)s, %(t)s, %(t)s, 12, 'email')",
                     {"t": T})
        conn.execute("insert into segment_prod.identifies values"
                     " ('i1', 'usr_2', 'anon_2', '10.0.0.1', %(t)s, %(t)s, %(t)s, 'ann@example.com', 'Ann', 'Lee')", {"t": T})
        conn.execute("insert into segment_prod.groups values"
                     " ('g1', 'usr_2', 'acc_old', %(t0)s, %(t0)s, %(t0)s, 'Old Co', null, null),"
                     " ('g2', 'usr_2', 'acc_2', %(t)s, %(t)s, %(t)s, 'Acme', 'pro', '2024-05-01T00:00:00Z')",
                     {"t": T, "t0": datetime(2025, 1, 1, tzinfo=timezone.utc)})
        raw_tables = conn.execute("select count(*) from information_schema.tables where table_schema = 'raw'").fetchone()[0]
    assert raw_tables == 0
    result = run_dbt(url, tmp_path_factory.mktemp("dbt_target"), "build",
                     "--select", "stg_segment__events", "stg_segment__identifies", "stg_segment__groups",
                     "product_events_present",
                     "--vars", "{events_source: warehouse, events_warehouse_schema: segment_prod}")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "PASS product_events_present" in result.stdout
    yield url


def _rows(url: str, sql: str) -> list[tuple]:
    with warehouse.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_tracks_are_read_in_place_with_their_event_tables_properties(built):
    rows = _rows(built, "select message_id, event_name, user_id, account_id, occurred_at, recipients, properties"
                        " from staging.stg_segment__events order by message_id")
    assert rows == [
        ("m1", "Messages Sent", "usr_1", "acc_1", T, 12, {"recipients": 12, "channel_name": "email"}),
        # no context_group_id: the user's latest group call gives the account
        ("m2", "Report Viewed", "usr_2", "acc_2", T, None, {}),
        # anonymous, no account anywhere: kept, without an account
        ("m3", "Report Viewed", None, None, T, None, {}),
    ]


def test_identifies_and_groups_take_their_traits_from_the_columns(built):
    assert _rows(built, "select message_id, user_id, account_id, email, user_name from staging.stg_segment__identifies") == [
        ("i1", "usr_2", "acc_2", "ann@example.com", "Ann Lee")]
    assert _rows(built, "select message_id, account_id, account_name, plan, account_created_at::date::text"
                        " from staging.stg_segment__groups order by message_id") == [
        ("g1", "acc_old", "Old Co", None, None), ("g2", "acc_2", "Acme", "pro", "2024-05-01")]
