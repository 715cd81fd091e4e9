"""DDL of every raw table (docs/DATA_CONTRACTS.md section 2): file ingestion's, and the
Stripe tables written by :mod:`retention.load.stripe` / :mod:`retention.extract.stripe_state`.

Everything here is idempotent (``if not exists``), so every load calls
:func:`ensure_schema` first; indexes are created once, with the tables.

Deduplication of Segment ``messageId`` across the partitioned ``raw.events`` uses
``raw.event_ids`` (``message_id`` primary key, one row per kept message of any type):
a unique constraint on ``raw.events`` itself would have to include the partition key
``timestamp``, which would let the same message id through twice with two timestamps.
Its key is ``collate "C"``: equality is the same under every deterministic collation,
and byte comparisons make the index cheaper to maintain than the database's default
collation (docs/ingestion.md). A ``raw.event_ids`` made by an earlier version is
brought up to date once by :func:`ensure_schema` (:func:`_migrate_event_ids`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import date

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

SCHEMA_DDL = """
create schema if not exists raw;

create table if not exists raw.load_manifest (
    file_id bigserial primary key,
    source text not null,
    uri text not null unique,
    size_bytes bigint,
    sha256 text,
    rows_loaded bigint not null default 0,
    rows_quarantined bigint not null default 0,
    rows_duplicate bigint not null default 0,
    truncated boolean not null default false,
    status text not null,
    loaded_at timestamptz not null default now(),
    changed_sha256 text,
    changed_seen_at timestamptz,
    error text,
    failed_at timestamptz,
    replaced_sha256 text,
    reloaded_at timestamptz
);

create table if not exists raw.quarantine (
    file_id bigint not null references raw.load_manifest (file_id),
    uri text not null,
    line bigint,
    byte_offset bigint,
    reason text not null,
    detail text,
    raw text,
    quarantined_at timestamptz not null default now()
);
create index if not exists quarantine_reason_idx on raw.quarantine (reason);
create index if not exists quarantine_file_idx on raw.quarantine (file_id);

create table if not exists raw.event_ids (
    message_id text collate "C" primary key,
    type text not null,
    timestamp timestamptz not null,
    _file_id bigint not null,
    _line bigint not null,
    account_id text
);

-- Every copy of a key that a load did not keep (a duplicate in its file, a key an earlier
-- file holds, or superseded by an earlier file in a backfill): which file to read again
-- when the copy that was kept goes away (a reloaded file that no longer holds the key).
create table if not exists raw.duplicate_keys (
    key text collate "C" not null,
    file_id bigint not null,
    line bigint not null
);
create index if not exists duplicate_keys_key_idx on raw.duplicate_keys (key);
create index if not exists duplicate_keys_file_idx on raw.duplicate_keys (file_id);

-- The days each source's files changed since the product models last read them: the
-- earliest day of each file's rows, consumed by the incremental models (retention.load.landed).
create table if not exists raw.changed_days (
    source text not null,
    day date not null,
    primary key (source, day)
);

-- Files to load again, unchanged, because a key they hold lost its kept copy.
create table if not exists raw.reread_files (
    file_id bigint not null,
    marked_at timestamptz not null default now()
);

create table if not exists raw.events (
    message_id text not null,
    type text not null,
    event text not null,
    user_id text,
    anonymous_id text,
    account_id text,
    timestamp timestamptz not null,
    received_at timestamptz,
    properties jsonb,
    context jsonb,
    _file_id bigint not null,
    _line bigint not null,
    received_at_source text
) partition by range (timestamp);
create index if not exists events_account_ts_idx on raw.events (account_id, timestamp);
create index if not exists events_event_idx on raw.events (event);
-- The newest days, read by every daily run (staging's window, the windowed dbt tests, the
-- raw gate): a BRIN index on the time, a few pages per partition and nearly free to
-- maintain, since events land in about time order (a day's file a day).
create index if not exists events_timestamp_brin on raw.events using brin (timestamp);

create table if not exists raw.identifies (
    message_id text primary key,
    user_id text,
    account_id text,
    timestamp timestamptz not null,
    traits jsonb,
    _file_id bigint not null,
    _line bigint not null
);

create table if not exists raw.groups (
    message_id text primary key,
    user_id text,
    account_id text not null,
    timestamp timestamptz not null,
    traits jsonb,
    _file_id bigint not null,
    _line bigint not null
);

create table if not exists raw.pages (
    message_id text primary key,
    user_id text,
    anonymous_id text,
    account_id text,
    name text,
    timestamp timestamptz not null,
    received_at timestamptz,
    received_at_source text,
    properties jsonb,
    context jsonb,
    _file_id bigint not null,
    _line bigint not null
);

create table if not exists raw.screens (like raw.pages including all);

create table if not exists raw.nps_responses (
    response_id text primary key,
    account_id text not null,
    user_id text,
    email text,
    score int not null,
    comment text,
    responded_at timestamptz not null,
    _file_id bigint not null,
    _line bigint not null
);

create table if not exists raw.support_tickets (
    ticket_id text primary key,
    account_id text not null,
    user_id text,
    requester_email text,
    topic text,
    subject text,
    status text,
    created_at timestamptz not null,
    resolved_at timestamptz,
    _file_id bigint not null,
    _line bigint not null
);
"""

# One lock id for DDL on raw.* (pg_advisory_xact_lock): concurrent loaders serialise
# table and partition creation instead of racing on the catalogue.
_DDL_LOCK = 0x7265746E  # "retn"


# Columns added since the first version, for databases made by an earlier one.
_ADDED_COLUMNS = {
    "load_manifest": ("error text", "failed_at timestamptz", "replaced_sha256 text", "reloaded_at timestamptz"),
    "events": ("received_at_source text",),
}
_TABLES = ("load_manifest", "quarantine", "event_ids", "duplicate_keys", "reread_files", "changed_days", "events",
           "identifies", "groups", "pages", "screens", "nps_responses", "support_tickets")


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the raw tables and their indexes if missing (one short transaction).

    Nothing is locked when the schema is already current: ``create ... if not exists``
    on a table other loads write would still queue for its lock.
    """
    if _is_current(conn):
        return
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        new_ledger = conn.execute("select to_regclass('raw.changed_days') is null").fetchone()[0]
        conn.execute(SCHEMA_DDL)
        if new_ledger:
            _seed_changed_days(conn)
        for table, columns in _ADDED_COLUMNS.items():
            for column in columns:
                conn.execute(f"alter table raw.{table} add column if not exists {column}")
        _migrate_event_ids(conn)
        _drop_default_partition(conn)


def _is_current(conn: psycopg.Connection) -> bool:
    """Every table and added column there, and no default partition."""
    wanted = [(t, c.split()[0]) for t, cols in _ADDED_COLUMNS.items() for c in cols]
    return bool(conn.execute(
        "select (select count(*) from unnest(%s::text[]) t where to_regclass('raw.' || t) is not null) = %s "
        "and to_regclass('raw.events_default') is null "
        "and (select count(*) from unnest(%s::text[], %s::text[]) w(t, c) join pg_attribute a "
        "     on a.attrelid = to_regclass('raw.' || w.t) and a.attname = w.c and not a.attisdropped) = %s",
        (list(_TABLES), len(_TABLES), [t for t, _ in wanted], [c for _, c in wanted], len(wanted)),
    ).fetchone()[0])


# The product models' fixed look-back before raw.changed_days (dbt vars
# product_usage_lookback_days / product_health_lookback_days, both 3 by default: the
# usage and the health signals still fall back on them without that table).
_OLD_LOOKBACK_DAYS = 3


def _seed_changed_days(conn: psycopg.Connection) -> None:
    """A raw schema from before ``raw.changed_days``: the models rebuilt a fixed look-back
    before it, so files loaded but not yet transformed lie within the look-back before the
    last landed day (``raw.landed_intervals``' end - 1) of each source; those days are
    marked changed."""
    if conn.execute("select to_regclass('raw.landed_intervals') is not null").fetchone()[0]:
        conn.execute(
            "insert into raw.changed_days (source, day) "
            "select source, (interval_end at time zone 'UTC')::date - 1 - %s from raw.landed_intervals "
            "on conflict do nothing",
            (_OLD_LOOKBACK_DAYS,),
        )


def _drop_default_partition(conn: psycopg.Connection) -> None:
    """Earlier versions gave ``raw.events`` a default partition (always empty). Without it
    a new month partition is attached under a lock that readers and loads do not wait
    for (:func:`ensure_month_partitions`)."""
    if conn.execute("select to_regclass('raw.events_default') is null").fetchone()[0]:
        return
    if conn.execute("select exists (select 1 from raw.events_default)").fetchone()[0]:
        log.warning("raw.events_default holds rows; kept (new month partitions then lock it while attached)")
        return
    conn.execute("alter table raw.events detach partition raw.events_default")
    conn.execute("drop table raw.events_default")


def _migrate_event_ids(conn: psycopg.Connection) -> None:
    """Bring a ``raw.event_ids`` made by an earlier version up to date, once.

    Earlier versions had ``message_id`` in the database's default collation (now "C":
    dedup results do not change, since equal texts are equal under any deterministic
    collation; the primary-key index is rebuilt, under an exclusive lock) and no
    ``account_id`` (added empty: only rows loaded from now on carry it).
    """
    columns = dict(conn.execute(
        "select a.attname, c.collname from pg_attribute a left join pg_collation c on c.oid = a.attcollation "
        "where a.attrelid = 'raw.event_ids'::regclass and a.attnum > 0 and not a.attisdropped"
    ).fetchall())
    if columns["message_id"] != "C":
        log.info("raw.event_ids.message_id: collation %s -> \"C\" (one-time index rebuild)", columns["message_id"])
        conn.execute('alter table raw.event_ids alter column message_id type text collate "C"')
    if "account_id" not in columns:
        conn.execute("alter table raw.event_ids add column account_id text")


def partition_name(month: date) -> str:
    return f"events_p{month:%Y%m}"


def month_partitions(conn: psycopg.Connection) -> set[tuple[int, int]]:
    """(year, month) of every monthly partition of ``raw.events`` that exists."""
    names = conn.execute(
        "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "where i.inhparent = 'raw.events'::regclass"
    ).fetchall()
    return {(int(n[8:12]), int(n[12:14])) for (n,) in names if re.fullmatch(r"events_p[0-9]{6}", n)}


def ensure_month_partitions(conn: psycopg.Connection, months: set[date]) -> list[str]:
    """Create the monthly partitions of ``raw.events`` that ``months`` need; return new ones.

    In a short transaction of its own (``conn`` autocommit, outside any load), before the
    load that needs them: each is created empty and then attached, which takes only a
    ``SHARE UPDATE EXCLUSIVE`` lock on ``raw.events`` (``CREATE TABLE ... PARTITION OF``
    would take an ``ACCESS EXCLUSIVE`` one), so neither readers nor concurrent loads
    wait for it, nor it for them.
    """
    wanted = {partition_name(m): m for m in months}
    if not wanted or not set(wanted) - _existing(conn, wanted):
        return []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        missing = sorted(set(wanted) - _existing(conn, wanted))
        for name in missing:
            start = wanted[name]
            end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
            conn.execute(f"create table raw.{name} (like raw.events including defaults)")
            conn.execute(
                f"alter table raw.events attach partition raw.{name} "
                f"for values from ('{start.isoformat()} 00:00:00+00') to ('{end.isoformat()} 00:00:00+00')"
            )
    if missing:
        log.info("month partitions created: %s", ", ".join(f"raw.{n}" for n in missing))
    return missing


def _existing(conn: psycopg.Connection, wanted: dict[str, date]) -> set[str]:
    return {
        row[0]
        for row in conn.execute(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
            "where i.inhparent = 'raw.events'::regclass and c.relname = any(%s)",
            (list(wanted),),
        )
    }


# --- Stripe (retention.load.stripe, retention.extract.stripe_state) ---------------------

STRIPE_TABLE_DDL = """
create table if not exists {latest} (
    id text primary key,
    created timestamptz not null,
    data jsonb not null,
    _extracted_at timestamptz not null,
    _content_hash text not null
);
create index if not exists {created_idx} on {latest} (created);
create table if not exists {history} (
    id text not null,
    created timestamptz not null,
    data jsonb not null,
    _extracted_at timestamptz not null,
    _content_hash text not null,
    primary key (id, _content_hash)
);
"""

STRIPE_STATE_TABLE = sql.Identifier("raw", "stripe_extract_state")
STRIPE_STATE_DDL = sql.SQL("""
create schema if not exists raw;
create table if not exists {table} (
    object text primary key,
    read_up_to timestamptz not null,
    mode text not null,
    objects integer not null,
    live_rows_before integer,
    updated_at timestamptz not null
);
alter table {table} add column if not exists interval_end timestamptz""").format(table=STRIPE_STATE_TABLE)


def ensure_stripe_tables(conn: psycopg.Connection, tables: Iterable[str]) -> None:
    """Create ``raw`` and ``raw.<table>`` (latest version per id) + ``raw.<table>_history``
    (every distinct version) if missing (own short transaction)."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        conn.execute("create schema if not exists raw")
        for table in tables:
            conn.execute(sql.SQL(STRIPE_TABLE_DDL).format(
                latest=sql.Identifier("raw", table),
                history=sql.Identifier("raw", f"{table}_history"),
                created_idx=sql.Identifier(f"{table}_created_idx"),
            ))


def ensure_stripe_state(conn: psycopg.Connection) -> None:
    """Create ``raw.stripe_extract_state`` if missing or older (own short transaction)."""
    with conn.transaction():
        current = conn.execute(
            "select 1 from information_schema.columns"
            " where table_schema = 'raw' and table_name = 'stripe_extract_state' and column_name = 'interval_end'"
        ).fetchone()
        if current is None:  # missing, or created before interval_end was added
            conn.execute("select pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
            conn.execute(STRIPE_STATE_DDL)
