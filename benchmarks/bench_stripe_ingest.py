"""Stripe ingestion speed and memory: ours vs the SDK's typed auto-paging with row upserts.

    python -m benchmarks.bench_stripe_ingest [--customers 2000,6000]

For each size, a dataset (``tests/fakes/stripe_dataset.py``: per customer one subscription
and two invoices, every third discounted) is served by ``retention.simulate.stripe_server``
in this process, and loaded into a fresh database of the project warehouse in a child
process (peak RSS = the child's ``ru_maxrss``), two ways in the same run:

* **ours**: ``retention.extract.stripe.ingest`` for every object type (full refresh):
  ``StripeHook`` (``raw_request`` pages of 100, orjson), COPY into temp tables, one
  set-based upsert + history insert per type; then a **rerun** of the same (nothing
  changes, nothing written);
* **baseline**: what the SDK docs suggest: ``client.v1.<objects>.list(...).auto_paging_iter()``,
  ``to_dict()``, then one ``insert ... on conflict do update`` per object (``executemany``)
  into the same tables, in one transaction per type.

Results print as a Markdown table; docs/stripe_ingestion.md records a run.
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
from pathlib import Path


from retention import warehouse
from retention.hooks.stripe import connection_json
from retention.simulate.stripe_server import serve
from tests.support.databases import create_database, drop_database

REPO = Path(__file__).resolve().parent.parent
KEY = "sk_test_benchmark"
CHILD_OURS = """
import json, sys, time
from retention import warehouse
from retention.extract.stripe import STRIPE_OBJECTS, ExtractPlan, ingest
from retention.hooks.stripe import StripeHook
plan = ExtractPlan(full_refresh=True)
out = {}
with warehouse.connect(sys.argv[1], autocommit=True) as conn:
    hook = StripeHook()
    for run in ("first", "rerun"):
        started = time.perf_counter()
        results = [ingest(hook, conn, name, plan, None, None) for name in STRIPE_OBJECTS]
        out[run] = time.perf_counter() - started
        out[run + "_written"] = sum(c["inserted"] + c["updated"] + c["history_added"]
                                    for r in results for c in r["tables"].values())
    out["objects"] = sum(c["distinct"] for r in results for c in r["tables"].values())
out["rss_mb"] = peak_rss_mb()
print(json.dumps(out))
"""
CHILD_BASELINE = """
import hashlib, json, sys, time
from datetime import datetime, timezone
import stripe
from retention import warehouse
from retention.extract.stripe import STRIPE_OBJECTS
from retention.hooks.stripe import StripeHook
from retention.load.stripe import ensure_tables
client = StripeHook().client
upsert = '''insert into raw.{t} as t (id, created, data, _extracted_at, _content_hash) values (%s, %s, %s, now(), %s)
on conflict (id) do update set data = excluded.data, _content_hash = excluded._content_hash
where t._content_hash <> excluded._content_hash'''
started = time.perf_counter()
objects = 0
with warehouse.connect(sys.argv[1], autocommit=True) as conn:
    for name, spec in STRIPE_OBJECTS.items():
        ensure_tables(conn, [spec.tables[0]])
        service = getattr(client.v1, name)
        rows = []
        for obj in service.list(params={**spec.list_params, "limit": 100}).auto_paging_iter():
            text = json.dumps(obj.to_dict(for_json=True), sort_keys=True)
            created = datetime.fromtimestamp(obj["created"], tz=timezone.utc)
            rows.append((obj["id"], created, text, hashlib.sha256(text.encode()).hexdigest()))
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(upsert.format(t=spec.tables[0]), rows)
        objects += len(rows)
print(json.dumps({"first": time.perf_counter() - started, "objects": objects, "rss_mb": peak_rss_mb()}))
"""


# VmHWM, not ru_maxrss: ru_maxrss survives exec, so it would report the forking parent
# (which holds the served dataset) instead of the child.
PEAK_RSS = """
def peak_rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""


def run_child(code: str, url: str, base_url: str) -> dict:
    code = PEAK_RSS + code
    env = {**os.environ, "AIRFLOW_CONN_STRIPE_DEFAULT": connection_json(base_url, KEY)}
    done = subprocess.run([sys.executable, "-c", code, url], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="2000,6000", help="comma-separated dataset sizes")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests"))
    from fakes.stripe_dataset import build_dataset

    server_url = warehouse.resolve_url()
    print("| customers | objects | way | first load s | objects/s | rerun s | rerun writes | peak RSS MB |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for customers in (int(n) for n in args.customers.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench_stripe_") as tmp:
            dataset = build_dataset(Path(tmp), customers=customers)
            with serve(dataset.root, api_key=KEY) as server:
                ours_db = create_database(server_url, f"bench_stripe_{uuid.uuid4().hex[:8]}")
                base_db = create_database(server_url, f"bench_stripe_{uuid.uuid4().hex[:8]}")
                try:
                    ours = run_child(CHILD_OURS, ours_db, server.base_url)
                    base = run_child(CHILD_BASELINE, base_db, server.base_url)
                finally:
                    drop_database(ours_db)
                    drop_database(base_db)
        print(f"| {customers} | {ours['objects']} | ours | {ours['first']:.2f} | {ours['objects'] / ours['first']:.0f} "
              f"| {ours['rerun']:.2f} | {ours['rerun_written']} | {ours['rss_mb']:.0f} |")
        print(f"| {customers} | {base['objects']} | baseline | {base['first']:.2f} | "
              f"{base['objects'] / base['first']:.0f} | | | {base['rss_mb']:.0f} |")
        print(f"| {customers} | | **ratio baseline/ours** | **{base['first'] / ours['first']:.1f}x** | | | | |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
