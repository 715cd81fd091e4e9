"""Freshness of the sources, judged against the wall clock.

The raw gates judge freshness as of the data a run processes, so they only speak when
new data arrives. This module answers the other question: has anything arrived at all?
Each :class:`SourceCheck` reads one cheap bookkeeping table (the load manifest, the
Stripe extraction state; in warehouse mode the destination's ``tracks``) rather than the data itself, so the ``monitor_freshness`` DAG
can run it every hour on any volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg

DEFAULT_MAX_AGE_HOURS = 26  # a daily pipeline, plus two hours of slack


@dataclass(frozen=True)
class SourceCheck:
    source: str
    table: str  # the bookkeeping table the check reads
    sql: str    # -> rows of (part, newest time) ; a part with a null time never arrived
    hint: str   # what to look at when it is stale


CHECKS: dict[str, SourceCheck] = {
    "events": SourceCheck(
        "events", "raw.load_manifest",
        "select 'events', max(loaded_at) filter (where rows_loaded > 0) from raw.load_manifest where source = 'events'",
        "check the landing location and the ingest_events runs",
    ),
    "stripe": SourceCheck(
        "stripe", "raw.stripe_extract_state",
        "select object, updated_at from raw.stripe_extract_state order by object",
        "check the stripe_default connection and the ingest_stripe runs",
    ),
}


def warehouse_events_check(schema: str) -> SourceCheck:
    """Warehouse mode: the newest message the destination wrote into ``<schema>.tracks``
    (its ``received_at``; no bookkeeping table to read, so this scans ``tracks``)."""
    from psycopg import sql

    table = sql.Identifier(schema, "tracks").as_string()
    return SourceCheck(
        "events", f"{schema}.tracks", f"select 'tracks', max(received_at) from {table}",
        "check the Segment/RudderStack warehouse destination's syncs",
    )


def source_check(source: str, source_mode=None) -> SourceCheck:
    """The check of ``source`` in the configured mode (:mod:`retention.sources`)."""
    from retention.sources import mode

    source_mode = source_mode or mode()
    if source == "events" and source_mode.events_source == "warehouse":
        return warehouse_events_check(source_mode.events_warehouse_schema)
    return CHECKS[source]


@dataclass(frozen=True)
class Freshness:
    source: str
    max_age: timedelta
    stale: tuple[tuple[str, timedelta | None], ...]  # (part, age; None: never arrived)
    hint: str

    @property
    def ok(self) -> bool:
        return not self.stale

    def message(self) -> str:
        """One line: what is stale, by how much, and where to look."""
        if self.ok:
            return f"{self.source}: fresh (within {_hours(self.max_age)})"
        parts = ", ".join(f"{part} {'never arrived' if age is None else _hours(age) + ' ago'}"
                          for part, age in self.stale)
        return f"{self.source} is stale: newest {parts} (limit {_hours(self.max_age)}); {self.hint}"


def _hours(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.0f}h" if hours < 72 else f"{hours / 24:.1f}d"


def check(conn: psycopg.Connection, source: str, max_age: timedelta, now: datetime | None = None,
          source_mode=None) -> Freshness:
    """How fresh ``source`` is (``source_mode``: :func:`retention.sources.mode` unless given)."""
    spec = source_check(source, source_mode)
    now = now or datetime.now(timezone.utc)
    if conn.execute("select to_regclass(%s)", (spec.table,)).fetchone()[0] is None:
        return Freshness(source, max_age, ((spec.table, None),), spec.hint)
    rows = conn.execute(spec.sql).fetchall() or [(source, None)]
    stale = tuple((part, None if at is None else now - at) for part, at in rows if at is None or now - at > max_age)
    return Freshness(source, max_age, stale, spec.hint)
