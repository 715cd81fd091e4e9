"""Daily incremental account_usage_daily vs a full build, on the same data in one run.

    python -m benchmarks.bench_product_usage [--events 3000000] [--accounts 2000] [--months 24]

A fresh database gets ``--events`` track events spread evenly over ``--months`` monthly
partitions of raw.events (ingestion DDL, generated server-side), then:

1. full build of account_usage_daily (``dbt run --full-refresh``);
2. one more day of events plus late events inside the look-back window are appended;
3. incremental run (what the daily DAG does).

Times are the model's own execution time from dbt's run_results.json (dbt's start-up is
excluded and printed separately). docs/product_marts.md records a run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from retention import warehouse
from retention.load import schema
from tests.support.databases import create_database

REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "dbt_project"
EVENTS = ["Project Created", "Report Created", "Campaign Sent", "Dashboard Viewed", "Signed In", "Comment Added"]


def _months(start: date, n: int) -> list[date]:
    return [date(start.year + (start.month - 1 + i) // 12, (start.month - 1 + i) % 12 + 1, 1) for i in range(n)]


def generate(url: str, events: int, accounts: int, months: int) -> date:
    """Insert the events; return the last day with events."""
    start = date(2023, 1, 1)
    month_list = _months(start, months + 1)
    days = (month_list[-1] - start).days
    with warehouse.connect(url) as conn:
        schema.ensure_schema(conn)
        schema.ensure_month_partitions(conn, set(month_list))
        conn.execute(
            """
            insert into raw.events
            select 'm' || g, 'track', (%(names)s::text[])[1 + g %% 6],
                   'usr_' || lpad((g %% %(accounts)s)::text, 6, '0') || '_0' || (g %% 5),
                   null, 'acc_' || lpad((g %% %(accounts)s)::text, 6, '0'),
                   ts, ts, case when g %% 6 = 2 then jsonb_build_object('recipients', g %% 300) else '{}' end,
                   '{}', 1, g
            from generate_series(1, %(events)s) as g
            cross join lateral (select timestamptz '2023-01-01 00:00+00'
                                 + make_interval(secs => (g::float8 / %(events)s) * %(days)s * 86400)) as t(ts)
            """,
            {"names": EVENTS, "accounts": accounts, "events": events, "days": days},
        )
        conn.execute("analyze raw.events")
        last = conn.execute("select max(timestamp)::date from raw.events").fetchone()[0]
    return last


def append_daily(url: str, last: date, per_day: int, accounts: int) -> None:
    """One new day of events plus 10% late ones spread over the previous 3 days."""
    with warehouse.connect(url) as conn:
        conn.execute(
            """
            insert into raw.events
            select 'n' || g, 'track', 'Report Created', 'usr_' || lpad((g %% %(a)s)::text, 6, '0') || '_01', null,
                   'acc_' || lpad((g %% %(a)s)::text, 6, '0'),
                   case when g %% 10 = 0 then %(last)s::date - (g %% 3) else %(last)s::date + 1 end
                       + time '12:00' at time zone 'UTC',
                   now(), '{}', '{}', 2, g
            from generate_series(1, %(n)s) as g
            """,
            {"a": accounts, "last": last, "n": per_day},
        )


def dbt_run(url: str, target: Path, *extra: str) -> tuple[float, float]:
    """(model execution seconds, wall seconds) of one dbt run of account_usage_daily."""
    env = dict(os.environ, DBT_TARGET_PATH=str(target), DBT_LOG_PATH=str(target), **warehouse.dbt_env(url))
    cmd = [str(Path(sys.executable).parent / "dbt"), "run", "--select", "account_usage_daily", *extra,
           "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    results = json.loads((target / "run_results.json").read_text())["results"]
    return sum(r["execution_time"] for r in results), wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--months", type=int, default=24)
    args = parser.parse_args(argv)

    server = warehouse.resolve_url()
    url = create_database(server, f"bench_product_usage_{uuid.uuid4().hex[:6]}")
    dbname = warehouse.parse_url(url).dbname
    try:
        with tempfile.TemporaryDirectory(prefix="bench_product_usage_") as tmp:
            target = Path(tmp)
            t0 = time.perf_counter()
            last = generate(url, args.events, args.accounts, args.months)
            print(f"generated {args.events:,} events over {args.months} months in {time.perf_counter() - t0:.1f}s")
            env = dict(os.environ, DBT_TARGET_PATH=str(target), DBT_LOG_PATH=str(target), **warehouse.dbt_env(url))
            subprocess.run([str(Path(sys.executable).parent / "dbt"), "seed", "--select", "product_event_catalogue",
                            "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)],
                           env=env, check=True, capture_output=True)
            subprocess.run([str(Path(sys.executable).parent / "dbt"), "run", "--select", "stg_segment__events",
                            "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)],
                           env=env, check=True, capture_output=True)
            full, full_wall = dbt_run(url, target, "--full-refresh")
            per_day = args.events // max(1, (args.months * 30))
            append_daily(url, last, per_day, args.accounts)
            incr, incr_wall = dbt_run(url, target)
            print("| run | model time (s) | dbt wall (s) |\n|---|---|---|")
            print(f"| full build | {full:.2f} | {full_wall:.2f} |")
            print(f"| daily incremental (look-back 3 days) | {incr:.2f} | {incr_wall:.2f} |")
            print(f"| ratio incremental / full | {incr / full:.1%} | {incr_wall / full_wall:.1%} |")
            return 0 if incr <= 0.10 * full else 1
    finally:
        with warehouse.connect(server, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{dbname}" with (force)')


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
