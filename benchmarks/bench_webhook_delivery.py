"""Webhook delivery under a receiver's enforced rate: the hook's pacing and 429 handling.

    python -m benchmarks.bench_webhook_delivery [--limits 20,50] [--seconds 5] [--batch 10]

For each receiver limit N (requests/s, enforced by the local receiver in its own process
in 1-second windows), ``WebhookDestination`` sends ``N * seconds`` batches one after
another, twice: with the connection's ``rate_limit_per_s`` = N (the hook paces itself) and
with 1000 (no pacing: the receiver's 429s and ``Retry-After`` do the limiting). It reports
requests/s as a share of N, the 429s met, the records lost (sent minus those the receiver
holds, once each by delivery id) and the repeats it dropped (records that arrived again,
e.g. after a retry). Results print as a Markdown table; docs/destinations.md records a run.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date

from retention.hooks.webhook import connection_json
from retention.local_servers import serve
from retention.sync.destinations.base import Record, SyncContext
from retention.sync.destinations.webhook import WebhookDestination

SECRET = "bench-secret"
CONN_ID = "bench_webhook"


def run_case(limit: int, hook_rate: float, seconds: float, batch: int) -> dict:
    with serve("webhook", secret=SECRET, rate_limit_per_s=limit, log_bodies=False) as receiver:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = connection_json(
            f"{receiver.base_url}/in", SECRET, rate_limit_per_s=hook_rate
        )
        destination = WebhookDestination(CONN_ID, {})
        destination.open(SyncContext("bench", 1, date(2026, 1, 1), "upsert", ()))
        requests = int(limit * seconds)
        started = time.perf_counter()
        confirmed = 0
        for i in range(requests):
            records = [Record(f"k{i}_{j}", "add", {"n": j}, "h", f"d{i}_{j}") for j in range(batch)]
            confirmed += sum(r.ok for r in destination.send(records))
        elapsed = time.perf_counter() - started
        destination.close(destination._ctx, succeeded=True)  # noqa: SLF001 - the context it opened with
        log = receiver.control.log(requests=False)
    summary = log["views"]["summary"]
    return {
        "limit": limit, "hook_rate": hook_rate, "requests": requests, "elapsed": elapsed,
        "per_s": requests / elapsed, "limited": log["counts"].get("429", 0),
        "lost": requests * batch - summary["unique_records"], "confirmed": confirmed,
        "repeats": summary["duplicates"],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_webhook_delivery")
    parser.add_argument("--limits", default="20,50", help="receiver limits N, requests/s (comma-separated)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=10, help="records per request")
    args = parser.parse_args(argv)
    print("| receiver limit N | hook rate_limit_per_s | requests | s | requests/s (share of N) | 429s | lost | repeats dropped |")
    print("|---|---|---|---|---|---|---|---|")
    failed = False
    for limit in (int(x) for x in args.limits.split(",")):
        for hook_rate in (float(limit), 1000.0):
            r = run_case(limit, hook_rate, args.seconds, args.batch)
            print(f"| {limit} | {hook_rate:g} | {r['requests']} | {r['elapsed']:.2f} | {r['per_s']:.1f} "
                  f"({r['per_s'] / limit:.0%}) | {r['limited']} | {r['lost']} | {r['repeats']} |", flush=True)
            failed |= bool(r["lost"] or r["confirmed"] != r["requests"] * args.batch)
    return 1 if failed else 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
