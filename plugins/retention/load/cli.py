"""``retention load --source events|nps|support --path URI``: load landed files into raw.*.

The same function the ``ingest_events`` DAG calls (:func:`retention.load.loader.load_source`);
it prints the run's counts as JSON and exits 1 if a file could not be loaded (one line
per failed file, on stderr). A progress bar per source shows files done of those
selected and rows per second (:mod:`retention.cli_progress`).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from retention import warehouse
from retention.cli import choice, iso_date
from retention.cli_progress import bars
from retention.config import settings
from retention.load.landing import SOURCE_FOLDERS, LandingError, landing_uri
from retention.load.loader import WORKERS_ENV, LoadFailed, load_source, load_workers

Source = choice("Source", sorted(SOURCE_FOLDERS))


def _cmd_load(sources: list[str], path: str | None, since: str | None, until: str | None,
              workers: int | None) -> int:
    cfg = settings()
    since_day, until_day = iso_date(since, "--since"), iso_date(until, "--until")
    try:
        root = landing_uri(path, cfg)
        workers = load_workers(workers)
    except (LandingError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = warehouse.resolve_url(cfg)
    exit_code = 0
    with warehouse.connect(url, autocommit=True) as conn:
        for source in sources:
            try:
                with bars() as progress:
                    counts = load_source(conn, source, root, since=since_day, until=until_day, workers=workers,
                                         progress=progress).counts()
            except LandingError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            except LoadFailed as failed:
                print(json.dumps(failed.run.counts(), indent=2))
                print(f"error: {failed}", file=sys.stderr)
                exit_code = 1
                continue
            print(json.dumps(counts, indent=2))
    return exit_code


def register(app: typer.Typer) -> None:
    @app.command("load")
    def load(
        source: Annotated[list[Source], typer.Option(help="what to load (repeatable)")],
        path: Annotated[str | None, typer.Option(
            help="landing root, folder or file: local path or URL (default: RETENTION_EVENTS_URI or RETENTION_DATA_DIR)",
        )] = None,
        since: Annotated[str | None, typer.Option(help="first day partition to read (YYYY-MM-DD)")] = None,
        until: Annotated[str | None, typer.Option(help="day partition to stop before (YYYY-MM-DD)")] = None,
        workers: Annotated[int | None, typer.Option(
            help=f"files loaded at a time, one connection each (default: {WORKERS_ENV} or 2)")] = None,
    ) -> int:
        """Load landed event / NPS / support files into raw.*."""
        return _cmd_load([s.value for s in source], path, since, until, workers)
