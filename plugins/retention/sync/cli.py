"""``retention sync``: run the segment syncs from the command line (same functions as the DAG).

``retention sync [--sync NAME ...] [--dry-run] [--force]`` runs the enabled syncs (or the
named ones) and prints each one's counts; ``--dry-run`` prints what would be sent and
whether the change threshold would halt, and sends and writes nothing.
``retention sync status`` prints the last run of each sync. ``retention sync exposures``
rewrites the dbt exposures generated from the configuration; ``retention sync pools``
creates one Airflow pool per destination kind (``make demo`` and ``retention airflow`` do
it on their own; the compose stack's init job calls it).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from retention import warehouse
from retention.cli import choice
from retention.cli_progress import bars
from retention.config import settings
from retention.sync import config, runs
from retention.sync.errors import SyncError

SyncAction = choice("SyncAction", ["run", "status", "exposures", "pools"])


def _cmd_sync(action: str, syncs: list[str] | None, dry_run: bool, force: bool, path: str | None) -> int:
    if action == "pools":
        import os

        from retention import runtime

        runtime.ensure_pools({**os.environ, "AIRFLOW_HOME": str(settings().airflow_home)})
        print("Airflow pools: " + ", ".join(runtime_pools()))
        return 0
    if action == "exposures":
        from retention.sync import exposures

        path = exposures.write(config.load(path).syncs)
        print(f"wrote {path}")
        return 0
    try:
        if action == "status":
            return _status(warehouse.resolve_url(settings()))
        by_kind = runs.plan(syncs, path)
    except SyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = [n for names in by_kind.values() for n in names]
    if not names:
        print("no enabled syncs")
        return 0
    url = warehouse.resolve_url(settings())
    code = 0
    for name in names:
        try:
            with bars() as progress:
                outcome = runs.run_one(url, name, dry_run=dry_run, force=force, path=path, progress=progress)
        except SyncError as exc:
            print(f"{name}: error: {exc}", file=sys.stderr)
            code = 1
            continue
        print(format_outcome(outcome))
        if outcome.status in ("halted", "failed") or (outcome.status == "dry_run" and outcome.halted_reason):
            code = code or 1
    return code


def runtime_pools() -> list[str]:
    from retention.sync.destinations.registry import pools

    return sorted(pools())


def format_outcome(o) -> str:
    c = o.counts
    head = f"{o.sync} (as of {o.as_of}):"
    if o.status == "dry_run":
        line = (f"{head} dry run: {c.adds} adds, {c.updates} updates, {c.removes} removes, "
                f"{c.unchanged} unchanged, {c.invalid} invalid rows, {c.retries} retries")
        return line + (f"; would halt: {o.halted_reason}" if o.halted_reason else "; would not halt")
    if o.status == "halted":
        return f"{head} halted, nothing sent: {o.halted_reason}"
    line = (f"{head} {o.status}: sent {o.sent} ({o.added} added, {o.updated} updated, {o.removed} removed, "
            f"{o.failed} failed), {c.unchanged} unchanged, {c.invalid} invalid rows skipped")
    if o.exports:
        line += f"; exports: {', '.join(o.exports)}"
    return line


def _status(url: str) -> int:
    from retention.sync import engine

    rows = engine.status(url)
    if not rows:
        print("no sync has run yet")
        return 0
    for r in rows:
        ended = r["ended_at"].isoformat(timespec="seconds") if r["ended_at"] else "-"
        line = (f"{r['sync_name']:<24} run {r['run_id']:<5} {r['status']:<11} as of {r['as_of']}  ended {ended}  "
                f"added {r['added']} updated {r['updated']} removed {r['removed']} unchanged {r['unchanged']} "
                f"failed {r['failed']} invalid {r['invalid']}")
        reason = r["halted_reason"] or r["error"]
        print(line + (f"  ({reason})" if reason else ""))
    return 0


def register(app: typer.Typer) -> None:
    @app.command("sync")
    def sync(
        action: Annotated[SyncAction, typer.Argument(
            help="run (default), status: the last run of each sync, exposures: regenerate dbt exposures, "
                 "pools: create the destinations' Airflow pools (the compose init job runs it)")] = SyncAction.run,
        sync: Annotated[list[str] | None, typer.Option(
            "--sync", metavar="NAME", help="run only this sync (repeatable)")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="print what would be sent; send and write nothing")
                           ] = False,
        force: Annotated[bool, typer.Option("--force", help="send even above the change threshold")] = False,
        config_file: Annotated[str | None, typer.Option(
            "--config", help=f"configuration file (default: ${config.CONFIG_ENV} or {config.DEFAULT_CONFIG})")
        ] = None,
    ) -> int:
        """Push the segments to their destinations (syncs.yml)."""
        return _cmd_sync(action.value, sync, dry_run, force, config_file)
