"""DDL of the raw tables written by file ingestion (docs/DATA_CONTRACTS.md section 2).

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
from datetime import date

import psycopg

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
    changed_seen_at timestamptz
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
    _line bigint not null
) partition by range (timestamp);
create table if not exists raw.events_default partition of raw.events default;
create index if not exists events_account_ts_idx on raw.events (account_id, timestamp);
create index if not exists events_event_idx on raw.events (event);

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


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the raw tables and their indexes if missing (one short transaction)."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        conn.execute(SCHEMA_DDL)
        _migrate_event_ids(conn)


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

    Runs inside the caller's transaction, so a rolled-back load leaves no partition.
    """
    if not months:
        return []
    wanted = {partition_name(m): m for m in months}
    existing = {
        row[0]
        for row in conn.execute(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
            "where i.inhparent = 'raw.events'::regclass and c.relname = any(%s)",
            (list(wanted),),
        )
    }
    missing = sorted(set(wanted) - existing)
    if missing:
        conn.execute("select pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
    for name in missing:
        start = wanted[name]
        end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        conn.execute(
            f"create table if not exists raw.{name} partition of raw.events "
            f"for values from ('{start.isoformat()} 00:00:00+00') to ('{end.isoformat()} 00:00:00+00')"
        )
    return missing
