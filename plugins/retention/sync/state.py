"""The sync's tables in the warehouse, schema ``activation`` (created idempotently).

* ``sync_state``: one row per (sync, key): what the destination last *confirmed* (hash
  of the mapped payload with the mapping version, membership and segments, the tool's own
  id), plus the last attempt (status, attempts, error without personal data) and the
  key's ``generation`` (confirmed changes so far, part of every delivery id).
* ``sync_runs``: one row per run: as-of date, times, counts, and whether it halted and why.
* ``sync_log``: one row per record and action of a run (and one per invalid key), pruned
  after ``log_retention_days``.
* ``sync_send_log``: the delivery ids handed to a non-idempotent destination, written
  before the send, so a rerun after a crash never sends one of them twice.
* ``mart_publications``: each as-of date ``transform_dbt`` published after its quality
  gates passed, with the identity (OID) of every mart relation it validated.

:func:`ensure_schema` is safe to call from concurrent processes: the DDL runs under a
transaction-level advisory lock.
"""

from __future__ import annotations

SCHEMA = "activation"
_DDL_LOCK = 0x72657465_6E5F7379  # any constant, shared by every process creating these tables

DDL = f"""
create schema if not exists {SCHEMA};

create table if not exists {SCHEMA}.mart_publications (
    id bigserial primary key,
    as_of date not null,
    run_id text not null,
    relations jsonb not null,
    published_at timestamptz not null default now()
);

create table if not exists {SCHEMA}.sync_runs (
    run_id bigserial primary key,
    sync_name text not null,
    as_of date,
    mapping_version text not null,
    forced boolean not null default false,
    status text not null default 'running',
    started_at timestamptz not null default now(),
    ended_at timestamptz,
    members_before bigint not null default 0,
    added bigint not null default 0,
    updated bigint not null default 0,
    removed bigint not null default 0,
    unchanged bigint not null default 0,
    failed bigint not null default 0,
    invalid bigint not null default 0,
    retried bigint not null default 0,
    halted boolean not null default false,
    halted_reason text,
    error text,
    constraint sync_runs_status check (status in ('running', 'succeeded', 'halted', 'failed', 'interrupted'))
);
create index if not exists sync_runs_by_sync on {SCHEMA}.sync_runs (sync_name, run_id desc);

create table if not exists {SCHEMA}.sync_state (
    sync_name text not null,
    key text not null,
    payload_hash text,
    segments text[] not null default '{{}}',
    is_member boolean not null default false,
    destination_id text,
    generation integer not null default 0,
    last_status text,
    attempts integer not null default 0,
    last_error text,
    first_synced_at timestamptz,
    last_synced_at timestamptz,
    last_run_id bigint,
    primary key (sync_name, key)
);

create table if not exists {SCHEMA}.sync_log (
    id bigserial primary key,
    run_id bigint not null,
    sync_name text not null,
    key text not null,
    action text not null,
    status text not null,
    attempts integer,
    http_status integer,
    error text,
    delivery_id uuid,
    logged_at timestamptz not null default now()
);
create index if not exists sync_log_by_run on {SCHEMA}.sync_log (run_id);
create index if not exists sync_log_by_time on {SCHEMA}.sync_log (logged_at);

create table if not exists {SCHEMA}.sync_send_log (
    sync_name text not null,
    delivery_id uuid not null,
    key text not null,
    run_id bigint not null,
    status text not null,
    sent_at timestamptz not null default now(),
    primary key (sync_name, delivery_id),
    constraint sync_send_log_status check (status in ('sending', 'ok', 'unknown', 'rejected'))
);
"""


def ensure_schema(conn) -> None:
    """Create the ``activation`` schema and tables if missing (one transaction)."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        exists = conn.execute(
            "select to_regclass(%s) is not null", (f"{SCHEMA}.sync_send_log",)
        ).fetchone()[0]
        if not exists:
            conn.execute(DDL)


def prune_log(conn, days: int) -> int:
    """Delete ``sync_log`` rows older than ``days``; the number deleted."""
    cur = conn.execute(
        f"delete from {SCHEMA}.sync_log where logged_at < now() - make_interval(days => %s)", (days,)
    )
    return cur.rowcount
