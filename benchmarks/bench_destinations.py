"""Vendor destinations under their rate limits: requests, wall time and throughput of a first sync.

    python -m benchmarks.bench_destinations [--members 10000] [--vendors intercom,slack_digest]

For each vendor of :data:`VENDORS`: a fresh database of the project warehouse gets a
``marts.segment_members`` of ``--members`` accounts in two segments (published as
``transform_dbt`` publishes it); the vendor's local server runs in its own process and
enforces the vendor's documented limit (scaled down where the real one would make the run
long; the table says which); the connection's token bucket is set just under that limit;
then one first sync runs through the real engine (``retention.sync.engine.run_sync``).

Reported per vendor: requests the server received (and how many it answered 429), wall
time, requests/s as a share of the enforced limit (target: at least 90%), members/s,
requests per member, and the ceiling the vendor's *real* limit implies for 100k members
(requests per member x 100,000 / real limit). Each vendor's server also confirms that
nothing was lost or duplicated. docs/destinations.md records a run.

Adding a vendor: one :class:`VendorBench` entry in :data:`VENDORS` (server name and
options, limit and window, the connection, the sync's destination and mapping, and a
``check`` that reads the server's view and returns the number of members it holds once).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from retention import warehouse
from retention.local_servers.base import serve
from tests.support.databases import create_database, drop_database

AS_OF = date(2024, 6, 30)
CONN_ID = "bench_destination"
SEGMENTS = ("health_dropped", "inactive")


@dataclass(frozen=True)
class VendorBench:
    kind: str                      # the destination kind (and the key of VENDORS)
    server: str                    # the local server's vendor name
    real_limit_per_s: float        # the vendor's documented limit, requests per second
    limit_per_s: float             # what the local server enforces here
    window_s: float                # the vendor's rate window
    connection: Callable[[str, float], dict[str, Any]]  # (base_url, client rate) -> Airflow connection
    destination_options: dict[str, Any]
    mapping: dict[str, str]
    check: Callable[[Any, int], str]  # (server, members) -> "" when all delivered once, else what is wrong
    server_options: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    rate_bound: bool = True        # False: the vendor's requests do not grow with members (a digest)
    identity: dict[str, str] = field(default_factory=lambda: {"column": "account_id", "kind": "account_id"})


def _intercom_check(server: Any, members: int) -> str:
    view = server.control.view("intercom")
    problems = []
    if view["duplicate_external_ids"] or view["duplicate_emails"]:
        problems.append("duplicate contacts")
    if view["events"].get("contacts_created") != members:
        problems.append(f"{view['events'].get('contacts_created')} contacts created for {members} members")
    if view["tag_applications"] != members:
        problems.append(f"{view['tag_applications']} tag applications for {members} members")
    return "; ".join(problems)


def _slack_check(server: Any, members: int) -> str:
    messages = server.control.view("slack")["messages"]
    return "" if len(messages) == 1 else f"{len(messages)} digest messages"


def _hubspot_check(server: Any, members: int) -> str:
    contacts = server.control.view("contacts")
    listed = sum(len(lst["members"]) for lst in server.control.view("lists").values())
    problems = [f"{len(contacts)} contacts for {members} members"] if len(contacts) != members else []
    return "; ".join(problems + ([f"{listed} list memberships for {members} members"] if listed != members else []))


def _customerio_check(server: Any, members: int) -> str:
    people = server.control.view("people")
    in_segments = sum(len(ids) for ids in server.control.view("segments").values())
    problems = [f"{len(people)} people for {members} members"] if len(people) != members else []
    return "; ".join(problems + ([f"{in_segments} segment members for {members}"] if in_segments != members else []))


def _braze_check(server: Any, members: int) -> str:
    users = server.control.view("users")
    tagged = sum(len(u["attributes"].get("retention_segments") or ()) for u in users.values())
    problems = [f"{len(users)} users for {members} members"] if len(users) != members else []
    return "; ".join(problems + ([f"{tagged} segment values for {members} members"] if tagged != members else []))


INTERCOM_TOKEN = "bench-intercom-token"
VENDOR_KEY = "bench-vendor-key"
SLACK_SECRET = "benchwebhooksecret"

VENDORS: dict[str, VendorBench] = {
    "intercom": VendorBench(
        kind="intercom", server="intercom",
        real_limit_per_s=10_000 / 60, limit_per_s=10_000 / 60 / 3, window_s=10,
        server_options={"token": INTERCOM_TOKEN, "search_lag_s": 60, "validate": False, "log_bodies": False},
        connection=lambda url, rate: {"conn_type": "retention_intercom", "host": url, "password": INTERCOM_TOKEN,
                                      "extra": {"rate_limit_per_s": rate, "burst": 1}},
        destination_options={},
        mapping={"email": "email", "name": "name", "mrr": "mrr", "plan": "plan"},
        check=_intercom_check,
        note="10,000/min per app in 10 s windows, scaled to a third (the local server, on 2 shared cores, "
             "serves about 80 requests/s); no bulk upsert: one create per new contact, one bulk tag per segment "
             "per 50; spec validation off in the server (4 ms a request)",
    ),
    "slack_digest": VendorBench(
        kind="slack_digest", server="slack",
        real_limit_per_s=1.0, limit_per_s=1.0, window_s=1,
        server_options={"webhook_secret": SLACK_SECRET, "log_bodies": False},
        connection=lambda url, rate: {"conn_type": "retention_slack",
                                      "password": f"{url}/services/TLOCAL/BLOCAL/{SLACK_SECRET}"},
        destination_options={},
        mapping={"account_id": "account_id", "account_name": "account_name", "mrr": "mrr", "reason": "reason"},
        check=_slack_check, rate_bound=False,
        note="one message per run whatever the membership",
    ),
    "hubspot": VendorBench(
        kind="hubspot", server="hubspot",
        real_limit_per_s=10.0, limit_per_s=10.0, window_s=10,
        server_options={"token": VENDOR_KEY, "max_per_interval": 100, "interval_ms": 10_000, "log_bodies": False},
        # A rolling window: 95% of the rate plus a burst of 5 never puts more than 100 requests in
        # any 10 s, and lets the calls lost while the engine writes state between batches catch up.
        connection=lambda url, rate: {"conn_type": "retention_hubspot", "host": url, "password": VENDOR_KEY,
                                      "extra": {"rate_limit_per_s": rate * 0.95, "burst": 5}},
        destination_options={}, identity={"column": "email", "kind": "email"},
        mapping={"account_id": "account_id", "plan": "plan", "mrr": "mrr"},
        check=_hubspot_check,
        note="Free/Starter's 100 per rolling 10 s, unscaled (the local HubSpot enforces the rolling window and "
             "the daily cap itself; Professional's 190 halves the time); 100 contacts per upsert, then one "
             "add-and-remove per list the batch touches",
    ),
    "customerio": VendorBench(
        kind="customerio", server="customerio",
        real_limit_per_s=100.0, limit_per_s=50.0, window_s=1,
        server_options={"site_id": "bench_site", "api_key": VENDOR_KEY, "log_bodies": False},
        connection=lambda url, rate: {"conn_type": "retention_customerio", "host": url, "login": "bench_site",
                                      "password": VENDOR_KEY, "extra": {"rate_limit_per_s": rate, "burst": 1}},
        destination_options={"segments": {"health_dropped": "1", "inactive": "2"}},
        mapping={"account_id": "account_id", "plan": "plan", "mrr": "mrr"},
        check=_customerio_check,
        note="about 100 requests/s fair use, scaled to half (one PUT per person: the 2 shared cores serve about "
             "that many); 1,000 ids per segment call",
    ),
    "braze": VendorBench(
        kind="braze", server="braze",
        real_limit_per_s=1000.0, limit_per_s=5.0, window_s=3,
        server_options={"api_key": VENDOR_KEY, "log_bodies": False},
        connection=lambda url, rate: {"conn_type": "retention_braze", "host": url, "password": VENDOR_KEY,
                                      "extra": {"rate_limit_per_s": rate, "burst": 1}},
        destination_options={},
        mapping={"account_id": "account_id", "plan": "plan", "mrr": "mrr"},
        check=_braze_check,
        note="3,000 per 3 s scaled to 15 per 3 s (at the real limit the 134 requests take 0.1 s); "
             "75 objects per request",
    ),
}


def build_members(url: str, members: int) -> None:
    """``marts.segment_members`` with ``members`` accounts (a fifth of them inactive), published."""
    from retention.sync import publication

    with warehouse.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists marts")
        conn.execute("drop table if exists marts.segment_members")
        conn.execute("""
            create table marts.segment_members as
            select segment_key || ':' || account_id || ':' as member_key, segment_key, account_id,
                   null::text as user_id, 'health fell by ' || (i %% 30) || ' points' as reason,
                   'owner' || i || '@example.com' as email, 'Owner ' || i as name, 'Account ' || i as account_name,
                   (array['starter', 'pro', 'enterprise'])[1 + i %% 3] as plan, (50 + i %% 950)::numeric(14, 2) as mrr,
                   40.5::numeric(5, 1) as health_score, 'red' as tier, %s::date as as_of_date
            from (select i, 'acct_' || lpad(i::text, 7, '0') as account_id,
                         case when i %% 5 = 0 then 'inactive' else 'health_dropped' end as segment_key
                  from generate_series(1, %s) as i) as g""", (AS_OF, members))
        publication.record(conn, AS_OF, "bench")


def spec(bench: VendorBench) -> Any:
    from retention.sync.config import SyncSpec

    return SyncSpec.model_validate({
        "name": f"bench_{bench.kind}",
        "source": {"segments": list(SEGMENTS)},
        "destination": {"kind": bench.kind, "conn_id": CONN_ID, "options": bench.destination_options},
        "identity": bench.identity,
        "mapping": bench.mapping,
        "mode": "membership",
        "limits": {"batch_size": 10_000},
    })


def run_vendor(bench: VendorBench, members: int, server_url: str) -> dict[str, Any]:
    from retention.sync import engine

    url = create_database(server_url, f"bench_dest_{bench.kind}_{uuid.uuid4().hex[:6]}")
    try:
        build_members(url, members)
        with serve(bench.server, rate_limit_per_s=bench.limit_per_s, rate_limit_window_s=bench.window_s,
                   **bench.server_options) as server:
            client_rate = bench.limit_per_s * 0.99  # just under: a window never sees one request too many
            os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(bench.connection(server.base_url, client_rate))
            os.environ["AIRFLOW_CONN_WAREHOUSE"] = warehouse.airflow_connection_json(url)
            started = time.perf_counter()
            outcome = engine.run_sync(url, spec(bench))
            wall = time.perf_counter() - started
            log = server.control.log(bodies=False)
            counts = log["counts"]
            times = [e["t"] for e in log["requests"]]
            span = (max(times) - min(times)) if len(times) > 1 else wall
            problem = bench.check(server, members)
    finally:
        drop_database(url)
    requests = sum(counts.values())
    per_member = requests / members
    return {
        "vendor": bench.kind, "members": members, "confirmed": outcome.added, "failed": outcome.failed,
        "requests": requests, "429s": counts.get("429", 0), "wall_s": wall,
        "req_per_s": requests / wall, "share_of_limit": requests / wall / bench.limit_per_s if bench.rate_bound else None,
        "send_span_s": span, "span_share": requests / span / bench.limit_per_s if bench.rate_bound and span else None,
        "members_per_s": members / wall, "requests_per_member": per_member,
        "ceiling_100k_s": per_member * 100_000 / bench.real_limit_per_s if bench.rate_bound else None,
        "enforced": f"{bench.limit_per_s:g}/s in {bench.window_s:g} s windows", "problem": problem, "note": bench.note,
    }


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| vendor | members | enforced limit | requests (429s) | wall | req/s | share of limit (while sending) "
        "| members/s | requests/member | 100k members at the real limit | delivered once |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        share = (f"{r['share_of_limit']:.0%} ({r['span_share']:.0%})" if r["share_of_limit"] is not None
                 else "n/a")
        ceiling = f"{r['ceiling_100k_s'] / 60:.1f} min" if r["ceiling_100k_s"] is not None else "1 request"
        lines.append(
            f"| {r['vendor']} | {r['members']:,} | {r['enforced']} | {r['requests']:,} ({r['429s']}) "
            f"| {r['wall_s']:.1f} s | {r['req_per_s']:.1f} | {share} | {r['members_per_s']:.1f} "
            f"| {r['requests_per_member']:.3f} | {ceiling} | {'yes' if not r['problem'] else r['problem']} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_destinations")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--vendors", default=",".join(VENDORS), help=f"comma-separated, of {', '.join(VENDORS)}")
    args = parser.parse_args(argv)
    names = [n for n in args.vendors.split(",") if n]
    unknown = [n for n in names if n not in VENDORS]
    if unknown:
        parser.error(f"unknown vendors {unknown}; known: {', '.join(VENDORS)}")
    server_url = warehouse.resolve_url()
    import airflow.sdk  # noqa: F401 - loaded once here, so the first vendor's wall time does not carry it

    results = []
    for name in names:
        result = run_vendor(VENDORS[name], args.members, server_url)
        print(json.dumps(result), flush=True)
        results.append(result)
    print()
    print(markdown(results))
    # The limit bounds the span the requests went out in; the diff before the first request is
    # the engine's, not the vendor's (it is most of a run of 124 HubSpot requests).
    bad = [r for r in results if r["problem"] or r["failed"]
           or (r["span_share"] is not None and r["span_share"] < 0.9)]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
