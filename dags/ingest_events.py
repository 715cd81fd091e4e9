"""
### ingest_events: landed product events, NPS responses and support tickets -> raw.*

Reads the files landed under the **landing location** and loads them into
`raw.events` (+ `raw.identifies`, `raw.groups`), `raw.nps_responses` and
`raw.support_tickets`, exactly once per file (`raw.load_manifest`), with every rejected
record in `raw.quarantine`. See `docs/ingestion.md`.

**Landing location** (first set wins): the `landing_uri` param; the Airflow Variable
`retention_events_uri`; the env var `RETENTION_EVENTS_URI`; the single simulated
company folder under `RETENTION_DATA_DIR`. A local path or an object-storage URL
(`s3://aws_default@bucket/prefix`: the Airflow connection in the user part).

**Which files:** the day partitions of the day the run processes plus `lookback_days`
before it (late files); monthly NPS/support exports overlapping those days. The first
task, `run_interval`, decides that day once for every kind of run
(`retention.schedule`, docs/scheduling.md): a run dated D (scheduled, backfill or manual
with that date; the scheduled one starts at D+1 00:00) processes day D; the `day` param,
that day; a manual run without a date, the last complete day before it was triggered. With
`full=true` every landed file not yet in the manifest is loaded. Files already loaded
are skipped; a file that changed after it was loaded is loaded again in place; a file
that lands late in an older day folder is picked up by the next run.

**Workers:** files are loaded `workers` at a time (param, else env
`RETENTION_LOAD_WORKERS`, else 2; the CLI's `--workers` is the same setting), each
file still in a transaction of its own; the rows kept do not depend on it.

**Order:** `raw_schema` creates the raw tables once, before any load task (a load
creating tables while another copies deadlocked); the three loads then run side by side;
`publish` updates the raw Assets once, when all three are in, with the interval landed
in the event's `extra` (what `transform_dbt` processes). A load task runs one run at a
time (`max_active_tis_per_dag=1`) and holds a sole-writer lock on its source while it
loads (`retention.schedule.sole_writer`), so backfill runs (several at once) never load
the same tables concurrently.

**Which sources** follows `RETENTION_EVENTS_SOURCE` (`retention.sources`,
docs/sources.md): `files` (default) loads events, NPS and support; `warehouse` (events
already in the warehouse, read in place by dbt) NPS and support only; `none` (billing
only) nothing.

Each load task returns its counts (files, rows, duplicates, quarantine per reason) as XCom.
A landing error (the location does not exist, a file already loaded as another source)
fails the task at once, without retries, with a message that says what to set. A file
that cannot be loaded (unreadable, or refused) does not stop the others: it is recorded
in `raw.load_manifest` as `failed`, and the task fails at the end with one line per
failed file (retried by the next run).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from retention.airflow_defaults import DEFAULT_ARGS, RAW_ASSETS
from retention.schedule import day_param, interval_task, publish_task
from retention.sources import FILE_SOURCE_TABLES, mode

FILE_SOURCES = mode().file_sources
EVENT_ASSETS = [RAW_ASSETS[t] for source in FILE_SOURCES for t in FILE_SOURCE_TABLES[source]]


def load_task(source: str, landing_uri, interval):
    """The task that loads one source (``retention.load.plan.ingest``) for the day(s) of
    ``interval`` (the run's ``run_interval``). A landing error (missing location, a file
    of another source) or files that could not be loaded fail the task at once, with a
    message that says what to do: retrying cannot fix them (the next run retries failed files)."""

    @task(task_id=f"load_{source}", max_active_tis_per_dag=1)
    def load(landing_uri: str, interval: dict, params: dict | None = None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from retention.hooks.warehouse import WarehouseHook
        from retention.load.landing import LandingError
        from retention.load.loader import LoadFailed
        from retention.load.plan import LoadPlan, ingest
        from retention.schedule import RunInterval, sole_writer

        plan = LoadPlan(landing_uri, full=params["full"], lookback_days=params["lookback_days"], workers=params["workers"])
        days = RunInterval.from_xcom(interval)
        hook = WarehouseHook()
        with hook.get_conn(autocommit=True) as lock_conn, sole_writer(lock_conn, [f"{source} files"]):
            with hook.get_conn(autocommit=True) as conn:
                try:
                    return ingest(conn, source, plan, days.start_at, days.end_at)
                except (LandingError, LoadFailed) as exc:
                    raise AirflowFailException(str(exc)) from None

    return load(landing_uri, interval)


@dag(
    dag_id="ingest_events",
    schedule=CronTriggerTimetable("@daily", timezone="UTC", interval=timedelta(days=1)),
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ingestion", "events"],
    doc_md=__doc__,
    params={
        "day": day_param(),
        "landing_uri": Param(None, type=["null", "string"], description="landing root; empty: Variable / env / data dir"),
        "full": Param(False, type="boolean", description="load every landed file not yet in the manifest"),
        "lookback_days": Param(2, type="integer", minimum=0, description="extra day partitions before the interval"),
        "workers": Param(
            None, type=["null", "integer"], minimum=1,
            description="files loaded at a time; empty: env RETENTION_LOAD_WORKERS, else 2",
        ),
    },
)
def ingest_events():
    @task
    def landing_location(params: dict | None = None) -> str:
        from airflow.sdk import Variable

        from retention.config import settings
        from retention.load.landing import LANDING_VARIABLE, landing_uri

        return landing_uri(params["landing_uri"], settings(), variable=Variable.get(LANDING_VARIABLE, default=None))

    @task
    def raw_schema() -> None:
        from retention.hooks.warehouse import WarehouseHook
        from retention.load.schema import ensure_schema

        with WarehouseHook().get_conn(autocommit=True) as conn:
            ensure_schema(conn)

    interval = interval_task()
    root = landing_location()
    loads = [load_task(source, root, interval) for source in FILE_SOURCES]
    schema, published = raw_schema(), publish_task(EVENT_ASSETS, interval)
    schema >> (loads or published)
    loads >> published


ingest_events_dag = ingest_events()
