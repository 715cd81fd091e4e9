"""What a DAG run processes: one rule for scheduled, backfill, manual and Asset-triggered runs.

Every pipeline DAG is daily and processes whole UTC days. The first task of each run,
``run_interval`` (:func:`interval_task`), decides which days once, logs it, and returns
them as XCom; every later task of the run takes that XCom instead of reading
``logical_date`` or the data interval itself. The rule, first match wins:

* **The ``day`` param** (YYYY-MM-DD in the run conf, :func:`day_param`): that day. The
  way to (re)process a given day by hand, e.g. ``airflow dags trigger ingest_events -c
  '{"day": "2025-12-30"}'``, even if a run with that logical date already exists (Airflow
  keeps one run per logical date), and what ``retention demo`` uses.
* **A run with a logical date** (scheduled, backfill, manual with a date) processes the
  UTC day of its logical date, midnight to midnight. Under the DAGs' timetable,
  ``CronTriggerTimetable("@daily", interval=1 day)``, the scheduled run for day D has
  logical date D (its data interval is ``[D, D+1)`` and it starts at D+1 00:00), and so
  has a backfill run for D, so a manual run dated D processes the same day. Airflow 3
  gives a manual run a data interval that ends when it was *triggered* (the CLI), or the
  day *before* its date (``dags test``, the API); this rule uses neither.
* **A manual run without a date** processes the last complete day before it was
  triggered (its ``run_after``), as a scheduled run at that moment would.
* **An Asset-scheduled DAG** (``transform_dbt``, on the raw Assets of both ingestion
  DAGs) processes what its upstream runs landed. Each ingestion DAG publishes its Assets
  once, at its end, with ``extra = {"interval_start", "interval_end"}``
  (:meth:`RunInterval.asset_extra`). An Asset-triggered run (and a manual run without a
  date) ends where *every* Asset has landed: the smallest, over the Assets, of the
  latest ``interval_end`` among that Asset's recent events; it starts at the earliest
  ``interval_start`` of the triggering events (at most a day before its end). So a day
  counts as landed only when all sources have it, whatever order the ingestion runs
  finish in, and leftover events of an earlier day do not move the end. A triggered run
  with nothing newly complete (a source still missing that day, or the day already
  built) does nothing: :func:`anything_new_task` skips the rest of the run.

``RunInterval.as_of`` (the last day processed) is what ``transform_dbt``'s quality gates
and the ``marts`` Asset event are stamped with.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

log = logging.getLogger(__name__)

INTERVAL_TASK_ID = "run_interval"
_ONE_DAY = timedelta(days=1)


class IntervalError(ValueError):
    """The run carries nothing to derive its interval from; the message says what to do."""


@dataclass(frozen=True)
class RunInterval:
    """The UTC days ``[start, end)`` a run processes, and how they were chosen."""

    start: date
    end: date
    basis: str
    waiting_for: tuple[str, ...] = ()  # Assets that have not landed any day yet

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise IntervalError(f"empty interval [{self.start}, {self.end}) ({self.basis})")

    @property
    def as_of(self) -> date:
        """The last day processed."""
        return self.end - _ONE_DAY

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end, time(), UTC)

    def describe(self) -> str:
        days = f"{self.start}" if self.end - self.start == _ONE_DAY else f"{self.start} .. {self.as_of}"
        return f"processes {days} (UTC days [{self.start}, {self.end})): {self.basis}"

    def to_xcom(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "as_of": self.as_of.isoformat(),
                "basis": self.basis, "waiting_for": list(self.waiting_for)}

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> RunInterval:
        return cls(date.fromisoformat(value["start"]), date.fromisoformat(value["end"]), value["basis"],
                   tuple(value.get("waiting_for", ())))

    def asset_extra(self) -> dict[str, str]:
        """What an Asset event published by this run says it landed."""
        return {"interval_start": self.start.isoformat(), "interval_end": self.end.isoformat()}


def day_of(moment: datetime, basis: str) -> RunInterval:
    """The UTC day ``moment`` falls in."""
    start = moment.astimezone(UTC).date()
    return RunInterval(start, start + _ONE_DAY, basis)


def day_ended_at(moment: datetime, basis: str) -> RunInterval:
    """The last UTC day complete at ``moment``: the day before the one it falls in."""
    end = moment.astimezone(UTC).date()
    return RunInterval(end - _ONE_DAY, end, basis)


RECENT_EVENTS = 20  # events per Asset read to find the latest landed day (a re-run may publish an older day)


def _extra_interval(extra: Mapping[str, Any] | None) -> tuple[date, date] | None:
    try:
        return date.fromisoformat(str(extra["interval_start"])), date.fromisoformat(str(extra["interval_end"]))
    except (KeyError, TypeError, ValueError):
        return None


def landed_ends(events: Mapping[str, Iterable[Mapping[str, Any] | None]]) -> dict[str, date | None]:
    """Per Asset name, the latest ``interval_end`` among the ``extra`` of its events (None:
    no event says what it landed; events without an interval, e.g. created by hand
    through the API, are ignored with a warning)."""
    ends: dict[str, date | None] = {}
    for asset, extras in events.items():
        found = []
        for extra in extras:
            interval = _extra_interval(extra)
            if interval is None:
                log.warning("an asset event of %s carries no interval_start/interval_end; ignored", asset)
            else:
                found.append(interval[1])
        ends[asset] = max(found, default=None)
    return ends


def landed_interval(
    ends: Mapping[str, date | None], starts: Iterable[date], basis: str, *, require_all: bool
) -> RunInterval:
    """The interval that has landed for every Asset of ``ends`` (see the module docstring):
    up to the smallest latest end; from the earliest of ``starts``, at most a day before.
    Assets that never landed are listed in ``waiting_for`` (an error if ``require_all``)."""
    missing = tuple(sorted(name for name, end in ends.items() if end is None))
    if missing and require_all or len(missing) == len(ends):
        raise IntervalError(
            f"nothing has landed yet for {list(missing)} ({basis}): run the ingestion DAGs first, "
            "or trigger with a logical date or the day param"
        )
    end = min(end for end in ends.values() if end is not None)
    start = min([*starts, end - _ONE_DAY])
    return RunInterval(start, end, basis, waiting_for=missing)


def run_interval(context: Mapping[str, Any], assets: Sequence[Any] = ()) -> RunInterval:
    """The interval the run of ``context`` processes (see the module docstring).

    ``assets``: the Assets an Asset-scheduled DAG waits for (the calling task must declare
    them as inlets: their latest events are read through ``context["inlet_events"]``).
    """
    dag_run = context["dag_run"]
    run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
    day = (context.get("params") or {}).get("day")
    if day:
        start = date.fromisoformat(str(day))
        return RunInterval(start, start + _ONE_DAY, f"{run_type} run with param day={start}")
    logical = context.get("logical_date") or dag_run.logical_date
    if run_type == "asset_triggered" or (assets and logical is None):
        if not assets:
            raise IntervalError(f"{run_type} run: the DAG must pass its schedule's Assets to interval_task()")
        inlet_events = context["inlet_events"]
        ends = landed_ends({a.name: [e.extra for e in _recent(inlet_events[a])] for a in assets})
        if run_type == "asset_triggered":
            triggering = context["triggering_asset_events"]
            starts = [i[0] for a in triggering for e in triggering[a] if (i := _extra_interval(e.extra))]
            basis = f"asset-triggered run {dag_run.run_id}: what every source has landed"
            return landed_interval(ends, starts, basis, require_all=False)
        return landed_interval(ends, [], f"{run_type} run without a date: what every source has landed",
                               require_all=True)
    if logical is not None:
        return day_of(logical, f"{run_type} run dated {logical.isoformat()}")
    triggered = dag_run.run_after
    return day_ended_at(triggered, f"{run_type} run without a date, triggered at {triggered.isoformat()}")


def _recent(events: Any) -> list[Any]:
    """The newest :data:`RECENT_EVENTS` of an inlet's events (``InletEventsAccessor``)."""
    return list(events.ascending(False).limit(RECENT_EVENTS))


def is_new(interval: RunInterval, built_end: date | None) -> bool:
    """Whether ``interval`` brings a complete day not built yet (``built_end``: the end of
    the last interval published downstream)."""
    if interval.waiting_for:
        log.info("nothing to do: waiting for %s to land %s", list(interval.waiting_for), interval.as_of)
        return False
    if built_end is not None and interval.end <= built_end:
        log.info("nothing to do: every source has landed up to %s, already built", interval.as_of)
        return False
    return True


def day_param():
    """The ``day`` DAG param every pipeline DAG declares (see the module docstring)."""
    from airflow.sdk import Param

    return Param(None, type=["null", "string"], format="date",
                 description="the UTC day to process (YYYY-MM-DD); empty: from the run (docs/scheduling.md)")


def processed_interval(context: Mapping[str, Any]) -> RunInterval:
    """The interval decided by this run's ``run_interval`` task (for tasks after it)."""
    value = context["ti"].xcom_pull(task_ids=INTERVAL_TASK_ID)
    if not value:
        raise IntervalError(f"task {INTERVAL_TASK_ID!r} has not run in this DAG run; put interval_task() first")
    return RunInterval.from_xcom(value)


def checked_as_of(context: Mapping[str, Any]) -> date:
    """The day a run's quality gates judge the data as of, and its ``marts`` publication
    is stamped with: the ``gate_as_of`` param if set, else the last day processed."""
    override = (context.get("params") or {}).get("gate_as_of")
    return date.fromisoformat(str(override)) if override else processed_interval(context).as_of


def interval_task(assets: Sequence[Any] = ()):
    """The first task of a pipeline DAG: decides what the run processes, logs it, returns
    it (:meth:`RunInterval.to_xcom`) for the tasks after it."""
    from airflow.sdk import get_current_context, task

    @task(task_id=INTERVAL_TASK_ID, inlets=list(assets), multiple_outputs=False)
    def run_interval_task() -> dict[str, str]:
        interval = run_interval(get_current_context(), assets)
        log.info("this run %s", interval.describe())
        return interval.to_xcom()

    return run_interval_task()


def anything_new_task(interval: Any, output: Any):
    """A short-circuit task: in an Asset-triggered run, skips the rest of the run unless
    ``interval`` brings a complete day not yet published to ``output`` (the DAG's own
    Asset, whose latest event says what was built). Other runs always go on."""
    from airflow.sdk import get_current_context, task

    @task.short_circuit(task_id="anything_new", inlets=[output])
    def anything_new(interval: dict[str, Any]) -> bool:
        ctx = get_current_context()
        if str(getattr(ctx["dag_run"].run_type, "value", ctx["dag_run"].run_type)) != "asset_triggered":
            return True
        built = landed_ends({output.name: [e.extra for e in _recent(ctx["inlet_events"][output])]})[output.name]
        return is_new(RunInterval.from_xcom(interval), built)

    return anything_new(interval)


def publish_task(assets: Sequence[Any], interval: Any, task_id: str = "publish"):
    """The last task of a pipeline DAG: one event per Asset in ``assets``, saying which
    interval the run landed (what Asset-scheduled DAGs downstream process)."""
    from airflow.sdk import get_current_context, task

    @task(task_id=task_id, outlets=list(assets), multiple_outputs=False)
    def publish(interval: dict[str, str]) -> dict[str, str]:
        landed = RunInterval.from_xcom(interval)
        outlet_events = get_current_context()["outlet_events"]
        for asset in assets:
            outlet_events[asset].extra = landed.asset_extra()
        log.info("published %d asset(s): %s", len(assets), landed.describe())
        return landed.to_xcom()

    return publish(interval)


@contextmanager
def sole_writer(lock_conn: Any, tables: Iterable[str]) -> Iterator[None]:
    """Hold a session-level advisory lock per table in ``tables`` (sorted, so two callers
    never deadlock) while the block writes them, so that two runs of a DAG (a backfill
    starts up to its ``max_active_runs``, 10 by default, at once) or a run and a CLI load
    never write the same raw table at the same time.

    ``lock_conn``: a psycopg connection in autocommit mode used only for the locks (they
    are released on exit, or when it closes)."""
    keys = [f"retention.writer:{table}" for table in sorted(set(tables))]
    for key in keys:
        log.info("taking the sole-writer lock %s", key)
        lock_conn.execute("select pg_advisory_lock(hashtextextended(%s, 0))", (key,))
    try:
        yield
    finally:
        for key in reversed(keys):
            lock_conn.execute("select pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
