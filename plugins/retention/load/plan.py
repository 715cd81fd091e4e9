"""What one load task of ``ingest_events`` does: a small plan and one function, the same
shape as ``ingest_stripe`` (``retention.extract.stripe.ExtractPlan`` / ``ingest``).

The DAG builds the :class:`LoadPlan` from its params and calls :func:`ingest` per source;
the CLI (``retention load``) calls :func:`retention.load.loader.load_source`, which
:func:`ingest` calls, with explicit days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from retention.load.landing import interval_days
from retention.load.loader import load_source, load_workers


@dataclass(frozen=True)
class LoadPlan:
    landing_uri: str
    full: bool = False  # every landed file, not only the run's days (and late files)
    lookback_days: int = 2  # day partitions before the run's days that are read again
    workers: int | None = None  # files at a time; None: RETENTION_LOAD_WORKERS, else 2

    def days(self, start: datetime, end: datetime) -> tuple[date | None, date | None]:
        """The days ``[since, until)`` a run over ``[start, end]`` reads (None: all)."""
        if self.full:
            return None, None
        return interval_days(start, end, self.lookback_days)


def ingest(conn: psycopg.Connection, source: str, plan: LoadPlan, start: datetime, end: datetime) -> dict[str, Any]:
    """Load ``source`` for the run over ``[start, end]``; return the run's counts.

    Raises :class:`~retention.load.landing.LandingError` (configuration) and
    :class:`~retention.load.loader.LoadFailed` (files that could not be loaded; the
    others were), each with a message that says what to do.
    """
    since, until = plan.days(start, end)
    run = load_source(conn, source, plan.landing_uri, since=since, until=until, workers=load_workers(plan.workers))
    return run.counts()
