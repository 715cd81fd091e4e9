"""The segment sync end to end: requests, wall time, reruns, throughput, planning at scale.

    python -m benchmarks.bench_sync [--members 100000] [--limit 10] [--batch 500]
                                    [--plan-members 100000,1000000]

**Delivery** (one database of the project warehouse, ``marts.segment_members`` built with
``--members`` accounts in one segment and published as ``transform_dbt`` does): the engine
syncs them to the local webhook receiver (own process) enforcing ``--limit`` requests/s,
with the connection's ``rate_limit_per_s`` set to the same value:

* first sync: requests, wall time, requests/s from the first request to the last (the
  receiver's log) as a share of the limit, and lost /
  duplicate records counted by the receiver (lost: changes confirmed but not held;
  duplicate: a key held under more delivery ids than it had changes);
* unchanged rerun: requests (target 0);
* rerun after 1% of the members changed: requests as a share of the first sync's (target
  at most 1.1%).

**Planning** (a dry run: the set-based diff in the warehouse, no state yet, so every member
is an add), in a child process per size so its peak RSS is its own: time and peak memory
at each ``--plan-members`` size (targets: 1M at most 12x the time of 100k, memory flat
within 1.5x).

Results print as Markdown tables; docs/destinations.md records a run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import date

from retention import warehouse
from retention.hooks.webhook import connection_json
from retention.local_servers import serve

AS_OF = date(2026, 11, 30)
SECRET = "bench-sync-secret"
CONN_ID = "bench_sync_webhook"
SPEC = {
    "name": "bench_accounts",
    "source": {"segments": ["health_dropped"]},
    "destination": {"kind": "webhook", "conn_id": CONN_ID},
    "identity": {"column": "account_id", "kind": "account_id"},
    "mapping": {"account_id": "account_id", "plan": "plan", "mrr": "mrr", "tier": "tier"},
    "mode": "membership",
    "remove_exits": True,
}
BUILD = """
create schema if not exists marts;
drop table if exists marts.segment_members;
create table marts.segment_members as
select 'health_dropped:acct_' || lpad(i::text, 7, '0') || ':' as member_key, 'health_dropped'::text as segment_key,
       'acct_' || lpad(i::text, 7, '0') as account_id, null::text as user_id, 'bench'::text as reason,
       'owner' || i || '@example.com' as email, 'Owner ' || i as name, 'Account ' || i as account_name,
       (array['starter', 'pro', 'enterprise'])[1 + i %% 3] as plan, (100 + i %% 900)::numeric(14, 2) as mrr,
       (i %% 100)::numeric(5, 1) as health_score, 'red'::text as tier, %(as_of)s::date as as_of_date
from generate_series(1, %(n)s) as i;
alter table marts.segment_members add primary key (member_key);
"""
CHILD_PLAN = """
import json, resource, sys, time
from retention.sync import engine
from retention.sync.config import SyncSpec
spec = SyncSpec.model_validate(json.loads(sys.argv[2]))
started = time.perf_counter()
outcome = engine.plan_sync(sys.argv[1], spec)
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "adds": outcome.counts.adds,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def build_members(url: str, n: int) -> None:
    from retention.sync import publication

    with warehouse.connect(url, autocommit=True) as conn:
        with conn.transaction():
            for statement in BUILD.split(";"):
                if statement.strip():
                    conn.execute(statement, {"n": n, "as_of": AS_OF} if "%(" in statement else None)
        conn.execute("analyze marts.segment_members")
        publication.record(conn, AS_OF, "bench")


def spec_for(batch: int):
    from retention.sync.config import SyncSpec

    return SyncSpec.model_validate({**SPEC, "limits": {"batch_size": batch}})


def bench_delivery(server_url: str, members: int, limit: int, batch: int) -> list[str]:
    from retention.sync import engine

    db = warehouse.create_database(server_url, f"bench_sync_{uuid.uuid4().hex[:8]}")
    rows = []
    try:
        build_members(db, members)
        with serve("webhook", secret=SECRET, rate_limit_per_s=limit, log_bodies=False) as receiver:
            os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = connection_json(
                f"{receiver.base_url}/hook", SECRET, rate_limit_per_s=limit
            )
            spec = spec_for(batch)

            def run(label: str) -> tuple[int, float]:
                before = len(receiver.control.requests(bodies=False))
                started = time.perf_counter()
                outcome = engine.run_sync(db, spec)
                elapsed = time.perf_counter() - started
                times = [r["t"] for r in receiver.control.requests(bodies=False)[before:]]
                sent = len(times)
                # the send phase: from the first request to the last (planning excluded)
                rate = (sent - 1) / (times[-1] - times[0]) if sent > 2 else float("nan")
                rows.append(f"| {label} | {outcome.sent} | {outcome.confirmed} | {outcome.failed} | {sent} | "
                            f"{elapsed:.2f} | {rate:.2f} ({rate / limit:.0%} of {limit}) |")
                return sent, elapsed

            first, _ = run(f"first sync, {members} members")
            rerun, _ = run("unchanged rerun")
            with warehouse.connect(db, autocommit=True) as conn:
                conn.execute("update marts.segment_members set mrr = mrr + 1 where right(account_id, 2) = '00'")
                from retention.sync import publication

                publication.record(conn, AS_OF, "bench-1pct")
            changed, _ = run("rerun after 1% changed")
            summary = receiver.control.log(requests=False)["views"]
            records = summary["records"]
            changes_per_key = Counter(r["key"] for r in records.values())
        expected = members + members // 100
        lost = expected - len(records)
        duplicates = sum(n - (2 if int(key[-2:]) == 0 else 1) for key, n in changes_per_key.items())
        rows.append(f"| **checks** | unchanged rerun: {rerun} requests | 1% change: {changed} requests = "
                    f"{changed / first:.2%} of the first sync's {first} | lost {lost} | duplicate {duplicates} | | |")
    finally:
        warehouse.drop_database(db)
    return rows


def bench_planning(server_url: str, sizes: list[int], batch: int) -> list[str]:
    rows = []
    results = {}
    for n in sizes:
        db = warehouse.create_database(server_url, f"bench_plan_{uuid.uuid4().hex[:8]}")
        try:
            build_members(db, n)
            done = subprocess.run(
                [sys.executable, "-c", CHILD_PLAN, db, spec_for(batch).model_dump_json()],
                capture_output=True, text=True, check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-3000:])
            results[n] = json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            warehouse.drop_database(db)
        r = results[n]
        rows.append(f"| {n} | {r['adds']} | {r['seconds']:.2f} | {r['rss_mb']:.0f} |")
    if len(sizes) > 1:
        small, large = results[sizes[0]], results[sizes[-1]]
        rows.append(f"| **{sizes[-1]} / {sizes[0]}** | | **{large['seconds'] / small['seconds']:.1f}x** | "
                    f"**{large['rss_mb'] / small['rss_mb']:.2f}x** |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=10, help="requests/s the receiver enforces")
    parser.add_argument("--batch", type=int, default=500, help="the sync's limits.batch_size")
    parser.add_argument("--plan-members", default="100000,1000000")
    parser.add_argument("--skip-delivery", action="store_true")
    args = parser.parse_args(argv)
    server_url = warehouse.resolve_url()
    if not args.skip_delivery:
        print("| run | sent | confirmed | failed | requests | wall s | requests/s while sending |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for row in bench_delivery(server_url, args.members, args.limit, args.batch):
            print(row, flush=True)
    sizes = [int(n) for n in args.plan_members.split(",") if n]
    if sizes:
        print("\n| members | adds planned | planning s | peak RSS MB |")
        print("|---:|---:|---:|---:|")
        for row in bench_planning(server_url, sizes, args.batch):
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
