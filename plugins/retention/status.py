"""``retention status`` and ``retention segments``: what the pipeline holds, by hand.

``retention status`` prints the warehouse URL (password masked), the last run of each
pipeline DAG (from the Airflow metadata database of this Airflow home,
:mod:`retention.airflow_runs`), the freshness of
each source (the check the ``monitor_freshness`` DAG runs) and the last run of each sync
(as ``retention sync status``). ``retention segments`` lists the segments with their
member counts; ``retention segments KEY`` lists a segment's members.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from retention import runtime, warehouse
from retention.airflow_runs import last_dag_runs
from retention.config import settings

PIPELINE_DAGS = ("ingest_stripe", "ingest_events", "transform_dbt", "sync_segments", "monitor_freshness")
MEMBER_COLUMNS = ("account_id", "user_id", "account_name", "email", "plan", "mrr", "tier", "reason")


def _when(value: Any) -> str:
    if value is None:
        return "-"
    return value.isoformat(sep=" ", timespec="seconds") if hasattr(value, "isoformat") else str(value)[:19]


def print_status() -> int:
    from retention import sources
    from retention.quality import freshness
    from retention.sync import engine

    cfg = settings()
    url = warehouse.resolve_url(cfg)
    print(f"warehouse   : {warehouse.redact(url)}")
    print(f"airflow home: {cfg.airflow_home}")
    runs = last_dag_runs(runtime.child_env(url, cfg))
    print("last DAG runs:")
    for dag_id in [*PIPELINE_DAGS, *sorted(set(runs) - set(PIPELINE_DAGS))]:
        r = runs.get(dag_id)
        print(f"  {dag_id:<18} " + (f"{r['state'] or '-':<8} {r['run_type']:<15} started {_when(r['start_date'])}"
                                    f"  ended {_when(r['end_date'])}" if r else "no run yet"))
    max_age = timedelta(hours=freshness.DEFAULT_MAX_AGE_HOURS)
    source_mode = sources.mode()
    print(f"sources ({source_mode.describe()}):")
    with warehouse.connect(url, autocommit=True) as conn:
        for source in source_mode.freshness_sources:
            print("  " + freshness.check(conn, source, max_age).message())
    print("syncs:")
    rows = engine.status(url)
    for r in rows:
        print(f"  {r['sync_name']:<18} {r['status']:<11} as of {r['as_of']}  ended {_when(r['ended_at'])}  "
              f"added {r['added']} updated {r['updated']} removed {r['removed']} failed {r['failed']}")
    if not rows:
        print("  no sync has run yet")
    return 0


def segment_counts(url: str) -> list[tuple[str, int]]:
    with warehouse.connect(url, autocommit=True) as conn:
        _require_marts(conn)
        return [tuple(r) for r in conn.execute(
            "select segment_key, count(*) from marts.segment_members group by 1 order by 1")]


def segment_members(url: str, segment_key: str, limit: int | None) -> tuple[list[tuple], int]:
    """Up to ``limit`` members of a segment (largest MRR first) and how many it has."""
    with warehouse.connect(url, autocommit=True) as conn:
        _require_marts(conn)
        total = conn.execute("select count(*) from marts.segment_members where segment_key = %s",
                             (segment_key,)).fetchone()[0]
        if total == 0:
            known = [r[0] for r in conn.execute("select distinct segment_key from marts.segment_members order by 1")]
            raise SegmentError(f"segment {segment_key!r} has no members; segments with members: "
                               f"{', '.join(known) or 'none'}")
        rows = conn.execute(
            f"select {', '.join(MEMBER_COLUMNS)} from marts.segment_members where segment_key = %s"
            " order by mrr desc nulls last, account_id, user_id limit %s", (segment_key, limit),
        ).fetchall()
    return rows, total


class SegmentError(Exception):
    """A segment that cannot be listed (one line, safe to print)."""


def _require_marts(conn) -> None:
    if conn.execute("select to_regclass('marts.segment_members')").fetchone()[0] is None:
        raise SegmentError("marts.segment_members does not exist yet: run the pipeline first "
                           "(`retention demo`, `retention run` or `retention dbt build`)")


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status() -> int:
        """Show the warehouse URL (masked), the last DAG runs, the sources' freshness and the last syncs."""
        return print_status()

    @app.command("segments")
    def segments(
        segment: Annotated[str | None, typer.Argument(help="a segment key: list its members")] = None,
        limit: Annotated[int, typer.Option(help="members shown (0: all)")] = 50,
        csv: Annotated[bool, typer.Option("--csv", help="members as CSV on stdout, for a file or a pipe")] = False,
    ) -> int:
        """List the segments and their sizes, or one segment's members (from marts.segment_members)."""
        url = warehouse.resolve_url(settings())
        if segment is None:
            table = Table("segment", "members")
            for key, n in segment_counts(url):
                table.add_row(key, f"{n:,}")
            Console().print(table)
            return 0
        rows, total = segment_members(url, segment, limit or None)
        if csv:
            import csv as csv_module
            import sys

            writer = csv_module.writer(sys.stdout)
            writer.writerow(MEMBER_COLUMNS)
            writer.writerows(rows)
            return 0
        table = Table(*MEMBER_COLUMNS, title=f"{segment}: {len(rows)} of {total:,} members")
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        Console().print(table)
        return 0
