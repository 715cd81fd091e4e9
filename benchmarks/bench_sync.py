"""The segment sync end to end: 100k members to a receiver that enforces N requests/s.

    python -m benchmarks.bench_sync [--members 100000] [--limit 20] [--batch 1000]
                                    [--plan-sizes 100000,1000000]

On a fresh database of the warehouse (``WAREHOUSE_URL`` or the embedded one) it builds a
``marts.segment_members``-shaped table with ``generate_series`` and publishes it, then,
with the signed webhook to the local receiver (its own process, ``rate_limit_per_s`` =
N, the hook paced at N):

1. **first sync**: requests and wall time; throughput as a share of N; records lost
   (sent minus what the receiver holds, once each by delivery id) and repeats;
2. **unchanged rerun**: requests (target 0);
3. **1 % changed** (the plan of 1 % of the members): requests as a share of the first
   sync's (target <= 1.1 %).

Then **planning** (the diff: source table, normalising, hashing, the join with the state,
the counts and streaming every change, sending nothing) at each of ``--plan-sizes``, each
in a fresh process so its peak RSS is its own; the state holds every member, 1 % of them
with another hash, as after a day of changes. Targets: time at the largest size at most 12x
(for 10x the members) and peak RSS within 1.5x of the smallest. Prints a Markdown table;
docs/sync.md records a run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date

from tests.support.databases import create_database, drop_database

SECRET = "bench-sync-secret"
CONN_ID = "bench_sync_webhook"
AS_OF = date(2026, 1, 1)


def _spec(kind: str, batch: int):
    from retention.sync.config import SyncSpec

    destination = {"kind": "webhook", "conn_id": CONN_ID, "options": {}} if kind == "webhook" else {"kind": "files"}
    return SyncSpec.model_validate({
        "name": "bench", "destination": destination,
        "source": {"segments": ["health_dropped", "inactive"]},
        "identity": {"column": "account_id", "kind": "account_id"},
        "mapping": {"account_id": "account_id", "account_name": "account_name", "plan": "plan", "mrr": "mrr",
                    "health_score": "health_score", "tier": "tier", "email": "email"},
        "mode": "membership", "remove_exits": True,
        "limits": {"batch_size": batch, "min_change_count": 10**9},
    })


def build(url: str, members: int) -> None:
    """A published segment of ``members`` accounts (a fifth of them in two segments)."""
    from retention import warehouse
    from retention.sync import publication

    with warehouse.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists marts")
        conn.execute("drop table if exists marts.segment_members")
        conn.execute("""
            create table marts.segment_members as
            select s.segment_key || ':acct_' || lpad(i::text, 8, '0') || ':' as member_key, s.segment_key,
                   'acct_' || lpad(i::text, 8, '0') as account_id, null::text as user_id, 'bench'::text as reason,
                   'owner' || i || '@example.com' as email, 'Owner ' || i as name, 'Account ' || i as account_name,
                   (array['free', 'team', 'pro', 'enterprise'])[1 + i %% 4] as plan, (100 + i %% 900)::numeric(14, 2) as mrr,
                   (i %% 1000 / 10.0)::numeric(5, 1) as health_score, (array['red', 'yellow'])[1 + i %% 2] as tier,
                   date '2026-01-01' as as_of_date
            from generate_series(1, %s) as i
            cross join lateral (select 'health_dropped' as segment_key union all
                                select 'inactive' where i %% 5 = 0) as s
        """, (members,))
        conn.execute("analyze marts.segment_members")
        publication.record(conn, AS_OF, "bench")


def change_share(url: str, share: float) -> int:
    """Change the plan of every 1/share-th member in place; the number changed."""
    from retention import warehouse

    step = round(1 / share)
    with warehouse.connect(url, autocommit=True) as conn:
        changed = conn.execute(
            "with u as (update marts.segment_members set plan = plan || '_changed'"
            " where right(account_id, 8)::int %% %s = 0 returning account_id)"
            " select count(distinct account_id) from u", (step,)).fetchone()[0]
        conn.execute("analyze marts.segment_members")
        return changed


def sync_phase(url: str, members: int, limit: int, batch: int) -> list[dict]:
    from retention.hooks.webhook import connection_json
    from retention.local_servers import serve
    from retention.sync import engine

    spec = _spec("webhook", batch)
    rows = []
    with serve("webhook", secret=SECRET, rate_limit_per_s=limit, log_bodies=False) as receiver:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = connection_json(
            f"{receiver.base_url}/in", SECRET, rate_limit_per_s=limit, timeout=30)

        def run(label: str) -> dict:
            seen = len(receiver.control.requests(bodies=False))
            started = time.perf_counter()
            outcome = engine.run_sync(url, spec)
            wall = time.perf_counter() - started
            sent = receiver.control.requests(bodies=False)[seen:]
            limited = sum(1 for r in sent if r.get("status") == 429)
            # Throughput while sending: requests after the first over the time from the first to the last.
            span = sent[-1]["t"] - sent[0]["t"] if len(sent) > 1 else 0.0
            return {"run": label, "changes": outcome.sent, "confirmed": outcome.confirmed, "requests": len(sent),
                    "wall_s": round(wall, 2), "send_req_per_s": round((len(sent) - 1) / span, 2) if span else 0.0,
                    "limited_429": limited}

        first = run("first sync")
        summary = receiver.control.view("summary")
        first["lost"] = members - summary["unique_records"]
        first["repeats"] = summary["duplicates"]
        first["share_of_N"] = round(first["send_req_per_s"] / limit, 3)
        rows.append(first)
        rows.append(run("unchanged rerun"))
        changed = change_share(url, 0.01)
        one = run(f"1% changed ({changed} rows)")
        one["share_of_first_requests"] = round(one["requests"] / first["requests"], 4)
        rows.append(one)
    return rows


def plan_once(url: str, members: int) -> dict:
    """In this process: build, fill the state (1 % stale), then time the diff; peak RSS."""
    from retention import warehouse
    from retention.sync import diff, state

    spec = _spec("files", 1000)
    build(url, members)
    with warehouse.connect(url, autocommit=True) as conn:
        state.ensure_schema(conn)
    with warehouse.connect(url) as conn:  # the state a synced day leaves, 1 % of it stale
        diff.prepare(conn, spec)
        conn.execute("""
            insert into activation.sync_state (sync_name, key, payload_hash, segments, is_member, generation, last_status)
            select 'bench', key, case when right(key, 8)::int % 100 = 0 then 'stale' else payload_hash end,
                   segments, true, 1, 'ok' from sync_desired""")
        conn.commit()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with warehouse.connect(url) as conn:
        conn.execute("set transaction isolation level repeatable read")
        diff.prepare(conn, spec)
        counts = diff.count(conn, spec)
        streamed = sum(len(batch) for batch in diff.changes(conn, spec, 1000))
        conn.rollback()
    elapsed = time.perf_counter() - started
    return {"members": members, "plan_s": round(elapsed, 2), "changes": streamed, "updates": counts.updates,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_before_plan_mb": round(rss_before / 1024, 1)}


def _fresh_db(tag: str) -> str:
    from retention import warehouse

    return create_database(warehouse.resolve_url(), f"bench_sync_{tag}_{os.getpid()}")


def _table(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sync")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=20, help="receiver limit N, requests/s")
    parser.add_argument("--batch", type=int, default=1000, help="records per request (the sync's batch_size)")
    parser.add_argument("--plan-sizes", default="100000,1000000")
    parser.add_argument("--plan-once", type=int, help=argparse.SUPPRESS)  # child process: one planning run
    args = parser.parse_args(argv)
    from retention import warehouse

    if args.plan_once:
        url = _fresh_db("plan")
        try:
            print(json.dumps(plan_once(url, args.plan_once)))
        finally:
            drop_database(url)
        return 0

    url = _fresh_db("send")
    try:
        build(url, args.members)
        rows = sync_phase(url, args.members, args.limit, args.batch)
    finally:
        drop_database(url)
    print(f"\nsync of {args.members} members, receiver limit N = {args.limit} requests/s, batch {args.batch}\n")
    print(_table(rows))

    plans = []
    for size in [int(s) for s in args.plan_sizes.split(",") if s]:
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_sync", "--plan-once", str(size)],
                             check=True, capture_output=True, text=True).stdout
        plans.append(json.loads(out.strip().splitlines()[-1]))
    for p in plans:
        p["time_x"] = round(p["plan_s"] / plans[0]["plan_s"], 2)
        p["rss_x"] = round(p["peak_rss_mb"] / plans[0]["peak_rss_mb"], 2)
    if plans:
        print("\nplanning (diff + counts + streaming every change, nothing sent)\n")
        print(_table(plans))
    first, unchanged, changed = rows
    ok = (unchanged["requests"] == 0 and changed["share_of_first_requests"] <= 0.011
          and first["share_of_N"] >= 0.9 and first["lost"] == 0 and first["repeats"] == 0
          and all(p["time_x"] <= 12 and p["rss_x"] <= 1.5 for p in plans))
    print(f"\ntargets met: {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
