"""``retention stripe-ingest``: load Stripe objects into raw.stripe_* from the command line.

The same function the ``ingest_stripe`` DAG calls (:func:`retention.extract.stripe.ingest`),
with a progress bar per object (API pages and rows per second); the connection comes
from ``AIRFLOW_CONN_STRIPE_DEFAULT``. Prints each object's counts as one JSON line.

Its data interval follows the DAG's rule for a manual run (:mod:`retention.schedule`):
``--day D`` is day D, else the last complete UTC day before now. Like a DAG run it is
recorded in ``raw.stripe_extract_state.interval_end`` (the finance marts' as-of instant).
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timedelta, timezone
from typing import Annotated

import typer

from retention.cli import choice, iso_date
from retention.extract.stripe import STRIPE_OBJECTS, ExtractPlan, StripeExtractError, ingest

StripeObject = choice("StripeObject", sorted(STRIPE_OBJECTS))


def cli_interval(day: date | None, now: datetime | None = None):
    """The days a CLI run covers: ``day``, else the last complete UTC day before ``now``
    (what a manual ``ingest_stripe`` run without a date processes)."""
    from retention.schedule import RunInterval, day_ended_at

    if day is not None:
        return RunInterval(day, day + timedelta(days=1), f"retention stripe-ingest --day {day}")
    now = now or datetime.now(timezone.utc)
    return day_ended_at(now, f"retention stripe-ingest run at {now:%Y-%m-%d %H:%M} UTC")


def _cmd_stripe_ingest(objects: list[str] | None, full_refresh: bool, max_count_drop: float,
                       day: date | None = None) -> int:
    from retention import warehouse
    from retention.cli_progress import bars
    from retention.hooks.stripe import StripeHook, StripeHookError

    plan = ExtractPlan(full_refresh=full_refresh, full_refresh_weekday=None, max_count_drop=max_count_drop)
    days = cli_interval(day)
    print(f"this run {days.describe()}", file=sys.stderr, flush=True)
    hook = StripeHook()
    try:
        with warehouse.connect(autocommit=True) as conn:
            for name in objects or STRIPE_OBJECTS:
                with bars() as progress:
                    counts = ingest(hook, conn, name, plan, days.start_at, days.end_at, progress=progress)
                print(json.dumps(counts), flush=True)
    except (StripeHookError, StripeExtractError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def register(app: typer.Typer) -> None:
    @app.command("stripe-ingest")
    def stripe_ingest(
        object_: Annotated[list[StripeObject] | None, typer.Option(
            "--object", help="repeatable; default: all")] = None,
        full_refresh: Annotated[bool, typer.Option(
            "--full-refresh",
            help="list every object (default: apply Stripe events since the last run; full on a first load)")] = False,
        max_count_drop: Annotated[float, typer.Option(
            help="a full refresh listing fewer than (1 - this) x the live rows stops as cut short")
        ] = ExtractPlan.max_count_drop,
        day: Annotated[str | None, typer.Option(
            metavar="YYYY-MM-DD",
            help="the UTC day the run is for (the finance marts' as-of: its end); default: yesterday")] = None,
    ) -> int:
        """Load Stripe objects into raw.stripe_* (connection from AIRFLOW_CONN_STRIPE_DEFAULT)."""
        return _cmd_stripe_ingest([o.value for o in object_ or []], full_refresh, max_count_drop, iso_date(day, "--day"))
