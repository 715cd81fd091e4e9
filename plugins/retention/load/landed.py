"""How far each file source has landed completely (``raw.landed_intervals``), and which
days changed since the product models last read them (``raw.changed_days``).

One row per source (``events``, ``nps``, ``support``): ``interval_end``, the end of the
latest day interval a load covered with every file loaded (a run with a file that could
not be loaded records nothing), and ``updated_at``. It never moves back (a backfill of an
earlier day leaves it). Written by :func:`retention.load.loader.load_source` whenever its
days have an end (every ``ingest_events`` run; ``retention load --until``).

The product models are computed as of the last day with events, but never past the day
before the events' ``interval_end`` (``int_product__as_of``): events of a day not landed
completely (files of today already there, a partial day) are never scored as that day.

``raw.changed_days``: one row per source (``events``, ``nps``, ``support``) and day, the
earliest UTC day of the rows a file added or removed (a new file, a file loaded again),
written in the file's own transaction (:func:`record_changed`), so it commits with the rows.
The incremental product models rebuild from the earliest day of their sources, however
late the rows came, and delete the rows they consumed (``macros/rebuilt_window.sql``), in
place of a fixed look-back of N days.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone

import psycopg

DDL = """
create schema if not exists raw;
create table if not exists raw.landed_intervals (
    source text primary key,
    interval_end timestamptz not null,
    updated_at timestamptz not null
)"""


def record(conn: psycopg.Connection, source: str, until: date) -> None:
    """``source`` has landed every file of the days before ``until`` (own transaction)."""
    end = datetime.combine(until, time(), timezone.utc)
    with conn.transaction():
        conn.execute(DDL)
        conn.execute(
            "insert into raw.landed_intervals as l (source, interval_end, updated_at) values (%s, %s, now())"
            " on conflict (source) do update set interval_end = greatest(l.interval_end, excluded.interval_end),"
            " updated_at = excluded.updated_at",
            (source, end),
        )


def record_changed(conn: psycopg.Connection, source: str, day: date | None) -> None:
    """In a file's transaction: rows of ``source`` from ``day`` on were added or removed."""
    if day is not None:
        conn.execute("insert into raw.changed_days (source, day) values (%s, %s) on conflict do nothing", (source, day))


def landed_end(conn: psycopg.Connection, source: str) -> datetime | None:
    with conn.transaction():
        if conn.execute("select to_regclass('raw.landed_intervals')").fetchone()[0] is None:
            return None
        row = conn.execute("select interval_end from raw.landed_intervals where source = %s", (source,)).fetchone()
    return row[0] if row else None
