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

Then **the daily run** (``--daily-share``, default 0.02): after ours' full extract, a day of
changes is made to the same account (that share of customers, subscriptions and invoices:
subscriptions cancelled, invoices paid, customers renamed, a price changed; half that many
customers deleted and new customers, each with a subscription and an invoice), the local
server turns them into events, and in one child process, on the same database, the daily
run (``ingest`` per type through the Events API, what ``ingest_stripe`` does on a weekday)
is timed against a full refresh of the same account right after it (what the weekly
safety net, or a pipeline without events, does every day).

Results print as Markdown tables; docs/stripe_ingestion.md records a run.
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
CHILD_DAILY = """
import json, sys, time
from retention import warehouse
from retention.extract.stripe import STRIPE_OBJECTS, ExtractPlan, ingest
from retention.hooks.stripe import StripeHook
out = {}
with warehouse.connect(sys.argv[1], autocommit=True) as conn:
    hook = StripeHook()
    for run, plan in (("daily", ExtractPlan(full_refresh_weekday=None)), ("full", ExtractPlan(full_refresh=True))):
        started = time.perf_counter()
        results = [ingest(hook, conn, name, plan, None, None) for name in STRIPE_OBJECTS]
        out[run] = time.perf_counter() - started
        out[run + "_modes"] = sorted({r["mode"] for r in results})
        out[run + "_written"] = sum(c["inserted"] + c["updated"] for r in results for c in r["tables"].values())
        if run == "daily":
            out["events_read"] = sum(r["events"]["events_read"] for r in results)
            out["objects_changed"] = sum(r["events"]["objects_changed"] for r in results)
        else:
            out["listed"] = sum(r["listed"] for r in results)
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


def day_of_changes(dataset, share: float, now: int) -> dict[str, int]:
    """Change ``share`` of the account's objects as one day in Stripe would (deterministic):
    subscriptions cancelled, open invoices paid, customers renamed, one price changed; half
    as many customers deleted and new ones signed up (a subscription and an invoice each).
    Returns how many objects of each kind changed."""
    import copy

    objs = dataset.objects
    n = max(1, round(share * len(objs["customers"])))
    for sub in objs["subscriptions"][:n]:
        sub.update(status="canceled", canceled_at=now, ended_at=now)
    for inv in objs["invoices"][:n]:
        inv.update(status="paid", amount_paid=inv.get("amount_due", 0), amount_remaining=0)
    for cus in objs["customers"][n:2 * n]:
        cus["name"] = f"{cus['name']} (renamed)"
    objs["prices"][0]["nickname"] = "repriced"
    gone = {c["id"] for c in objs["customers"][2 * n:2 * n + n // 2]}
    objs["customers"] = [c for c in objs["customers"] if c["id"] not in gone]
    new = n // 2
    for i in range(new):
        cus = dict(copy.deepcopy(objs["customers"][-1]), id=f"cus_new{i:05d}", created=now + i,
                   metadata={"account_id": f"acc_new{i:05d}"})
        sub = dict(copy.deepcopy(objs["subscriptions"][-1]), id=f"sub_new{i:05d}", customer=cus["id"], created=now + i,
                   discounts=[])
        inv = dict(copy.deepcopy(objs["invoices"][-1]), id=f"in_new{i:05d}", customer=cus["id"],
                   subscription=sub["id"], created=now + i, discounts=[])
        objs["customers"].append(cus)
        objs["subscriptions"].append(sub)
        objs["invoices"].append(inv)
    dataset.write()
    return {"subscriptions": n + new, "invoices": n + new, "customers": n + len(gone) + new, "prices": 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="2000,6000", help="comma-separated dataset sizes")
    parser.add_argument("--daily-share", type=float, default=0.02,
                        help="share of customers, subscriptions and invoices changed in the day of the daily run")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests"))
    from fakes.stripe_dataset import build_dataset

    server_url = warehouse.resolve_url()
    print("| customers | objects | way | first load s | objects/s | rerun s | rerun writes | peak RSS MB |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    daily_rows = []
    for customers in (int(n) for n in args.customers.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench_stripe_") as tmp:
            dataset = build_dataset(Path(tmp), customers=customers)
            with serve(dataset.root, api_key=KEY) as server:
                ours_db = create_database(server_url, f"bench_stripe_{uuid.uuid4().hex[:8]}")
                base_db = create_database(server_url, f"bench_stripe_{uuid.uuid4().hex[:8]}")
                try:
                    ours = run_child(CHILD_OURS, ours_db, server.base_url)
                    base = run_child(CHILD_BASELINE, base_db, server.base_url)
                    changed = day_of_changes(dataset, args.daily_share, int(time.time()))
                    time.sleep(1.1)  # the server notices changed files by their modification time
                    server_sees(server.base_url)
                    daily = run_child(CHILD_DAILY, ours_db, server.base_url)
                    daily_rows.append((customers, ours["objects"], sum(changed.values()), daily))
                finally:
                    drop_database(ours_db)
                    drop_database(base_db)
        print(f"| {customers} | {ours['objects']} | ours | {ours['first']:.2f} | {ours['objects'] / ours['first']:.0f} "
              f"| {ours['rerun']:.2f} | {ours['rerun_written']} | {ours['rss_mb']:.0f} |")
        print(f"| {customers} | {base['objects']} | baseline | {base['first']:.2f} | "
              f"{base['objects'] / base['first']:.0f} | | | {base['rss_mb']:.0f} |")
        print(f"| {customers} | | **ratio baseline/ours** | **{base['first'] / ours['first']:.1f}x** | | | | |",
              flush=True)
    print()
    print("| customers | objects | objects changed in the day | events read | daily run s | rows written |"
          " full refresh s | listed | **full / daily** | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for customers, objects, changed, d in daily_rows:
        assert d["daily_modes"] == ["events"] and d["full_modes"] == ["full_refresh"], d
        print(f"| {customers} | {objects} | {d['objects_changed']} ({changed} made) | {d['events_read']} | "
              f"{d['daily']:.2f} | {d['daily_written']} | {d['full']:.2f} | {d['listed']} | "
              f"**{d['full'] / d['daily']:.1f}x** | {d['rss_mb']:.0f} |", flush=True)
    return 0


def server_sees(base_url: str) -> None:
    """One request: the local server re-reads changed files (and makes their events) on the next request."""
    import httpx

    httpx.get(f"{base_url}/v1/customers", headers={"Authorization": f"Bearer {KEY}"}, timeout=60).raise_for_status()


if __name__ == "__main__":
    sys.exit(main())
