"""``retention load --source events|nps|support --path URI``: load landed files into raw.*.

The same function the ``ingest_events`` DAG calls (:func:`retention.load.loader.load_source`);
it prints the run's counts as JSON and exits 1 if a file could not be loaded (one line
per failed file, on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from retention import warehouse
from retention.config import settings
from retention.load.landing import SOURCE_FOLDERS, LandingError, landing_uri
from retention.load.loader import WORKERS_ENV, LoadFailed, load_source, load_workers


def _cmd_load(args: argparse.Namespace) -> int:
    cfg = settings()
    try:
        root = landing_uri(args.path, cfg)
        workers = load_workers(args.workers)
    except (LandingError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    url = warehouse.resolve_url(cfg)
    exit_code = 0
    with warehouse.connect(url, autocommit=True) as conn:
        for source in args.source:
            try:
                counts = load_source(conn, source, root, since=args.since, until=args.until, workers=workers).counts()
            except LandingError as exc:
                print(f"error: {exc}")
                return 2
            except LoadFailed as failed:
                print(json.dumps(failed.run.counts(), indent=2))
                print(f"error: {failed}", file=sys.stderr)
                exit_code = 1
                continue
            print(json.dumps(counts, indent=2))
    return exit_code


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("load", help="load landed event / NPS / support files into raw.*")
    p.add_argument(
        "--source", action="append", choices=sorted(SOURCE_FOLDERS), required=True,
        help="what to load (repeatable)",
    )
    p.add_argument("--path", help="landing root, folder or file: local path or URL (default: RETENTION_EVENTS_URI or RETENTION_DATA_DIR)")
    p.add_argument("--since", type=date.fromisoformat, help="first day partition to read (YYYY-MM-DD)")
    p.add_argument("--until", type=date.fromisoformat, help="day partition to stop before (YYYY-MM-DD)")
    p.add_argument(
        "--workers", type=int,
        help=f"files loaded at a time, one connection each (default: {WORKERS_ENV} or 2)",
    )
    p.set_defaults(func=_cmd_load)
