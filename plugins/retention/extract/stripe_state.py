"""Per object type, what the last Stripe extraction read: ``raw.stripe_extract_state``.

One row per object type: ``read_up_to`` (the time the run started reading; the next events
run starts there minus the look-back), ``interval_end`` (the latest end of a data
interval a run was for (a DAG run's, or ``retention stripe-ingest``'s: the same rule): the
instant the finance marts are computed as of, dbt macro ``finance_as_of_at``; it never moves back, as every run reads
Stripe up to the moment it runs, so a backfill of an earlier day leaves it), the
run's ``mode``, ``objects`` (listed by a full refresh, changed by an events run),
``live_rows_before`` (the table's non-deleted rows before a full refresh, what the
cut-short guard compares with) and ``updated_at``.
"""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg
from psycopg import sql

from retention.load import schema

TABLE = schema.STRIPE_STATE_TABLE  # DDL: retention.load.schema


# Every read and write runs in its own short transaction: the load that follows needs the
# connection outside any transaction.


def ensure(conn: psycopg.Connection) -> None:
    schema.ensure_stripe_state(conn)


def cursor(conn: psycopg.Connection, name: str) -> datetime | None:
    with conn.transaction():
        row = conn.execute(sql.SQL("select read_up_to from {} where object = %s").format(TABLE), (name,)).fetchone()
    return row[0] if row else None


def save(conn: psycopg.Connection, name: str, read_up_to: datetime, mode: str, objects: int,
         live_rows_before: int | None, interval_end: datetime | None = None) -> None:
    with conn.transaction():
        conn.execute(
            sql.SQL("""
                insert into {} as s (object, read_up_to, mode, objects, live_rows_before, updated_at, interval_end)
                values (%s, %s, %s, %s, %s, %s, %s)
                on conflict (object) do update set read_up_to = excluded.read_up_to, mode = excluded.mode,
                    objects = excluded.objects, live_rows_before = excluded.live_rows_before,
                    updated_at = excluded.updated_at,
                    interval_end = greatest(s.interval_end, excluded.interval_end)
            """).format(TABLE),
            (name, read_up_to, mode, objects, live_rows_before, datetime.now(timezone.utc), interval_end),
        )


def live_rows(conn: psycopg.Connection, table: str) -> int:
    """Rows of ``raw.<table>`` not marked deleted (0 when the table does not exist yet)."""
    with conn.transaction():
        if conn.execute("select to_regclass(%s)", (f"raw.{table}",)).fetchone()[0] is None:
            return 0
        query = sql.SQL("select count(*) from {} where not coalesce((data->>'deleted')::boolean, false)")
        return conn.execute(query.format(sql.Identifier("raw", table))).fetchone()[0]
