"""Full dbt build vs the daily run, on a simulated company landed in raw the production way.

    nice python -m benchmarks.bench_dbt [--preset large] [--seed 0] [--data DIR] [--keep PGDATA] [--runs N]

1. `retention simulate` (skipped when --data already holds the company);
2. raw: Stripe through the local Stripe server and `retention stripe-ingest`, events /
   NPS / support through `retention load`, all but the last day of events;
3. full build: `dbt build --full-refresh` (seeds, every model, every test);
4. the last day of events lands (`retention load --since`), `vacuum (analyze)` does what
   autovacuum does by the next day, then the daily run: `dbt build --selector daily`
   (no unit tests, no tests tagged full_build_only), without --full-refresh (incremental
   models process what is new, tests on raw-sized staging look at the new window:
   docs/dbt.md), with the full build's target folder, so dbt parses partially as a warm
   worker does. Stripe does not change between the two builds (the local Stripe server
   serves all invoices at once). Both builds run with transform_dbt's producer flags
   (`retention.dbt.BUILD_FLAGS`: no debug log file);
5. the segments' turnover between the two builds: members added and removed per segment
   and per membership sync of syncs.yml (what its change guard, `max_change_pct`, counts).

--runs N repeats 3-4 N times, each in a fresh copy of the landed raw, back to back, and
prints every run's ratio (the target must hold in each). Wall times of the dbt processes
(start-up included), the summed node times from run_results.json, the load average at
each build's start and end, and every model's time in both builds of the last run.
Target: daily <= 10% of full. docs/dbt.md records runs.

--keep PGDATA keeps the embedded Postgres in PGDATA and the landed raw (step 2) in a
database `bench_landed` there; later runs with the same --keep and --data copy it
(`create database ... template`) instead of landing again, so a run costs the two builds.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import yaml

from retention import warehouse
from retention.dbt import BUILD_FLAGS
from retention.hooks.stripe import connection_json
from tests.support.databases import create_database, drop_database

REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "dbt_project"
BIN = Path(sys.executable).parent
TARGET_RATIO = 0.10
LANDED_DB = "bench_landed"
BENCH_DB = "bench_dbt"


def _run(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def simulated_company(preset: str, seed: int, data: Path | None, tmp_path: Path) -> Path:
    """The company folder ``data``, else one in ``tmp_path``; simulated there if missing."""
    company = data or tmp_path / f"{preset}-seed{seed}"
    if not (company / "simulation.json").exists():
        secs = _run([str(BIN / "retention"), "simulate", "--preset", preset, "--seed", str(seed),
                     "--out", str(company)], {**os.environ})
        print(f"simulate {preset}: {secs:.0f}s", flush=True)
    return company


def land_stripe(company: Path, env: dict[str, str]) -> float:
    key = "sk_test_bench_" + uuid.uuid4().hex[:8]
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "retention"), "stripe-server", "--data", str(company), "--port", str(port)],
        env={**env, "STRIPE_API_KEY": key},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        conn_env = {**env, "AIRFLOW_CONN_STRIPE_DEFAULT": connection_json(f"http://127.0.0.1:{port}", key)}
        return _run([str(BIN / "retention"), "stripe-ingest"], conn_env)
    finally:
        server.terminate()
        server.wait(timeout=30)


@dataclass(frozen=True)
class Build:
    """One timed `dbt build`: process wall time, each node's execution time, its longest chain."""

    wall: float
    nodes: dict[str, float]  # "model.mrr_monthly", "test.unique_...", "seed.product_..."
    chain: str = ""

    @property
    def in_nodes(self) -> float:
        return sum(self.nodes.values())

    def summary(self) -> str:
        return f"{self.wall:.1f}s wall, {self.in_nodes:.1f}s in nodes ({len(self.nodes)} nodes)"


def dbt_build(env: dict[str, str], target: Path, *extra: str) -> Build:
    """A timed ``dbt build`` with transform_dbt's producer flags (``retention.dbt.BUILD_FLAGS``)."""
    wall = _run([str(BIN / "dbt"), "build", *BUILD_FLAGS, *extra, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
                 "--target-path", str(target), "--log-path", str(target / "logs")], env)
    results = json.loads((target / "run_results.json").read_text())["results"]
    return Build(wall, node_seconds(results), critical_chain(results, json.loads((target / "manifest.json").read_text())))


def node_seconds(results: list[dict]) -> dict[str, float]:
    """Each node's execution time from dbt's ``run_results.json`` results, by "kind.name"."""
    nodes = {}
    for r in results:
        kind, _project, *name = r["unique_id"].split(".")
        nodes[f"{kind}.{name[0] if kind == 'test' else '.'.join(name)}"] = r["execution_time"]
    return nodes


def critical_chain(results: list[dict], manifest: dict) -> str:
    """The chain the build waited on, back from the model that finished last: each node's
    blocker is whichever of its parents, or of its parents' tests (`dbt build` starts a node
    once those passed), finished last. Per node: seconds from the first node's start to its
    own, the wait for a free thread after its blocker finished, and its execution time. A
    long wait means dbt's scheduler (shallower nodes first) gave the threads to other nodes."""
    def at(stamp: str) -> float:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    span: dict[str, tuple[float, float, float]] = {}  # unique_id -> (start, end, execution time)
    for r in results:
        timing = {t["name"]: t for t in r["timing"]}
        start = (timing.get("compile") or timing.get("execute") or {}).get("started_at")
        end = (timing.get("execute") or {}).get("completed_at")
        if start and end:
            span[r["unique_id"]] = (at(start), at(end), r["execution_time"])
    models = [u for u in span if u.startswith("model.")]
    if not models:
        return ""
    tests_of: dict[str, list[str]] = defaultdict(list)
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] == "test":
            for parent in node["depends_on"]["nodes"]:
                tests_of[parent].append(uid)

    def blocker(uid: str) -> str | None:
        parents = manifest["nodes"][uid]["depends_on"].get("nodes", [])
        with_tests = not uid.startswith("test.")  # a test waits for its parents, not for their other tests
        candidates = [b for p in parents for b in (p, *(tests_of[p] if with_tests else ()))
                      if b in span and span[b][1] <= span[uid][0]]  # finished before it started
        return max(candidates, key=lambda b: span[b][1], default=None)

    t0 = min(start for start, _, _ in span.values())
    chain, uid = [], max(models, key=lambda u: span[u][1])
    while uid:
        previous = blocker(uid)
        start, _, seconds = span[uid]
        ready = span[previous][1] if previous else t0
        chain.append(f"{uid.split('.')[2]} at {start - t0:.1f}s (waited {max(start - ready, 0):.1f}s, ran {seconds:.1f}s)")
        uid = previous
    return " -> ".join(reversed(chain))


def per_model_table(full: Build, daily: Build) -> str:
    """Markdown: every model and seed, slowest in the full build first, then tests summed."""
    rows = ["| node | full build | daily run | daily / full |", "|---|---|---|---|"]
    names = sorted((n for n in full.nodes if not n.startswith(("test.", "unit_test."))), key=lambda n: -full.nodes[n])
    groups = [(n, [n]) for n in names] + [
        (f"{kind} ({sum(n.startswith(kind + '.') for n in full.nodes)})",
         [n for n in full.nodes if n.startswith(kind + ".")])
        for kind in ("test", "unit_test")
    ]
    for label, members in groups:
        f = sum(full.nodes[n] for n in members)
        d = sum(daily.nodes.get(n, 0.0) for n in members)
        rows.append(f"| {label} | {f:.2f}s | {d:.2f}s | {d / f:.0%} |" if f else f"| {label} | 0s | {d:.2f}s | - |")
    return "\n".join(rows)


def slowest(build: Build, prefix: str, n: int = 8) -> str:
    top = sorted(((k, v) for k, v in build.nodes.items() if k.startswith(prefix)), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k.removeprefix(prefix)} {v:.1f}s" for k, v in top)


def _database_url(server_url: str, dbname: str) -> str:
    return warehouse.url_from_params(replace(warehouse.parse_url(server_url), dbname=dbname))


def _landed_company(server_url: str) -> str | None:
    """The company folder whose raw `bench_landed` holds, if any."""
    try:
        with warehouse.connect(_database_url(server_url, LANDED_DB)) as conn:
            return conn.execute("select company from public.bench_landed").fetchone()[0]
    except psycopg.Error:
        return None


def _copy_landed(server_url: str) -> str:
    with warehouse.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{BENCH_DB}" with (force)')
        conn.execute(f'create database "{BENCH_DB}" template "{LANDED_DB}"')
    return _database_url(server_url, BENCH_DB)


def land(company: Path, last_day: date, server_url: str, env: dict[str, str], *, reuse: bool) -> tuple[str, str]:
    """A database holding raw with all but the last day of events: (its URL, what was done).

    With reuse, the landed raw is kept in `bench_landed` (with a table naming the company)
    and every run builds in a fresh copy of it. The files are loaded again first: every
    file is skipped as loaded, but the raw tables are brought up to this version of the
    loader (its schema, `raw.landed_intervals`), as a deployment's next ingest does after
    an upgrade; a landing kept from an older version otherwise builds differently (a raw
    table the models look for missing in the full build, there in the daily run)."""
    load_files = [str(BIN / "retention"), "load", "--path", str(company), "--source", "events", "--source", "nps",
                  "--source", "support", "--until", last_day.isoformat()]
    if reuse and _landed_company(server_url) == str(company):
        secs = _run(load_files, {**env, "WAREHOUSE_URL": _database_url(server_url, LANDED_DB)})
        return _copy_landed(server_url), f"reused the landed raw (files checked in {secs:.0f}s)"
    url = create_database(server_url, LANDED_DB if reuse else BENCH_DB)
    stripe_s = land_stripe(company, {**env, "WAREHOUSE_URL": url})
    files_s = _run(load_files, {**env, "WAREHOUSE_URL": url})
    landed = f"landed in {stripe_s:.0f}s (stripe) + {files_s:.0f}s (files)"
    if not reuse:
        return url, landed
    with warehouse.connect(url) as conn:
        conn.execute("create table public.bench_landed as select %s::text as company", (str(company),))
    return _copy_landed(server_url), landed


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def segment_members(url: str) -> dict[str, set[tuple[str, str]]]:
    """segment_key -> {(member_key, account_id)} in marts.segment_members."""
    members: dict[str, set[tuple[str, str]]] = defaultdict(set)
    with warehouse.connect(url) as conn:
        for key, member, account in conn.execute("select segment_key, member_key, account_id from marts.segment_members"):
            members[key].add((member, account))
    return members


def membership_syncs() -> dict[str, list[str]]:
    """name -> segments of each membership sync in syncs.yml reading marts.segment_members
    (enabled or not: the disabled ones are examples a team turns on)."""
    spec = yaml.safe_load((REPO / "syncs.yml").read_text())
    return {s["name"]: list(s["source"].get("segments") or []) for s in spec.get("syncs", [])
            if s.get("mode") == "membership" and s["source"].get("segments")
            and s["source"].get("model", "marts.segment_members") == "marts.segment_members"}


def turnover(before: dict[str, set[tuple[str, str]]], after: dict[str, set[tuple[str, str]]]) -> str:
    """Markdown: per segment, and per membership sync by account (its identity), members
    added / removed between two builds and that as a share of the earlier members."""
    rows = ["| segment or sync | members before | added | removed | (added + removed) / before |",
            "|---|---|---|---|---|"]

    def row(label: str, b: set, a: set) -> str:
        added, removed = len(a - b), len(b - a)
        share = f"{(added + removed) / len(b):.1%}" if b else "-"
        return f"| {label} | {len(b)} | +{added} | -{removed} | {share} |"

    for key in sorted(set(before) | set(after)):
        rows.append(row(key, {m for m, _ in before.get(key, set())}, {m for m, _ in after.get(key, set())}))
    for name, keys in membership_syncs().items():
        accounts = [{acc for k in keys for _, acc in side.get(k, set())} for side in (before, after)]
        rows.append(row(f"sync `{name}` ({', '.join(keys)}; accounts)", *accounts))
    return "\n".join(rows)


@dataclass(frozen=True)
class Run:
    full: Build
    daily: Build
    loads: tuple[str, str, str, str]  # load average: full build start, end; daily start, end
    turnover: str

    @property
    def ratio(self) -> float:
        return self.daily.wall / self.full.wall


def one_run(company: Path, last_day: date, server_url: str, env: dict[str, str], target: Path,
            excluded: list[str], *, reuse: bool) -> tuple[Run, dict[str, int], dict[str, int], str]:
    """Land (or copy the landed raw), full build, the last day lands, the daily run."""
    url, landed = land(company, last_day, server_url, env, reuse=reuse)
    env = {**env, "WAREHOUSE_URL": url, **warehouse.dbt_env(url)}
    with warehouse.connect(url) as conn:
        counts = {t: conn.execute(f"select count(*) from raw.{t}").fetchone()[0]
                  for t in ("events", "stripe_invoices", "stripe_subscriptions")}
    print(f"{landed}: {counts}", flush=True)
    load = [str(BIN / "retention"), "load", "--path", str(company)]
    # one target folder: the daily run starts from the full build's saved manifest
    # (partial parsing), as transform_dbt's workers keep theirs
    full_load = _load()
    full = dbt_build(env, target, "--full-refresh", *(["--exclude", *excluded] if excluded else []))
    full_loads = (full_load, _load())
    print(f"full build: {full.summary()}; load average {full_loads[0]} -> {full_loads[1]}", flush=True)
    before = segment_members(url)
    _run([*load, "--source", "events", "--since", last_day.isoformat(),
          "--until", (last_day + timedelta(days=1)).isoformat()], env)
    # A day passes between a build and the next daily run: autovacuum has analyzed
    # and vacuumed what the build wrote, and the writes are on disk. Do that now, so the
    # daily run is not timed while autovacuum works through the tables the full build
    # just wrote, nor while the kernel writes back the gigabytes the build and the copy of
    # the landed raw left dirty (seen: I/O pressure 40-80 % for a minute after them).
    started = time.perf_counter()
    with warehouse.connect(url, autocommit=True) as conn:
        conn.execute("vacuum (analyze)")
        conn.execute("checkpoint")
    os.sync()
    print(f"vacuum (analyze), checkpoint and sync before the daily run: {time.perf_counter() - started:.0f}s",
          flush=True)
    # selector `daily` (selectors.yml): no unit tests (fixed inputs, CI runs them), no tests
    # that only a full build can fail (tag full_build_only)
    daily_args = (["--selector", "daily"] if not excluded else
                  ["--exclude-resource-type", "unit_test", "--exclude", "tag:full_build_only", *excluded])
    daily_load = _load()
    daily = dbt_build(env, target, *daily_args)
    loads = (*full_loads, daily_load, _load())
    print(f"daily run:  {daily.summary()}; load average {loads[2]} -> {loads[3]}", flush=True)
    after = segment_members(url)
    with warehouse.connect(url) as conn:
        marts = {t: conn.execute(f"select count(*) from marts.{t}").fetchone()[0]
                 for t in ("mrr_monthly", "mrr_movements", "cohort_retention", "account_usage_daily")}
    if reuse:
        drop_database(url)
    return Run(full, daily, loads, turnover(before, after)), counts, marts, landed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="large")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, help="simulated company folder (simulated there if missing)")
    parser.add_argument("--exclude", nargs="+", default=[], help="dbt --exclude for both builds, e.g. slow_model+")
    parser.add_argument("--keep", type=Path, help="embedded Postgres folder to keep the landed raw in and reuse")
    parser.add_argument("--runs", type=int, default=1,
                        help="full build + daily run pairs, back to back (more than 1 needs --keep)")
    args = parser.parse_args(argv)
    if args.runs > 1 and not args.keep:
        parser.error("--runs above 1 reuses the landed raw: give --keep PGDATA")

    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench_dbt_") as tmp:
        tmp_path = Path(tmp)
        company = simulated_company(args.preset, args.seed, args.data, tmp_path)
        meta = json.loads((company / "simulation.json").read_text())
        last_day = date.fromisoformat(meta["end_date"])

        pgdata = args.keep or tmp_path / "pg"
        server_url = warehouse.start_embedded(pgdata)
        try:
            for n in range(1, args.runs + 1):
                print(f"\n## run {n} of {args.runs}", flush=True)
                run, counts, marts, _ = one_run(company, last_day, server_url, {**os.environ},
                                                tmp_path / f"target{n}", args.exclude, reuse=args.keep is not None)
                runs.append(run)
                print(f"run {n}: daily / full {run.ratio:.1%}", flush=True)
        finally:
            warehouse.stop_embedded(pgdata)

    last = runs[-1]
    print("\n" + per_model_table(last.full, last.daily))
    print("\nlongest chain, daily run: " + last.daily.chain)
    print("\nslowest tests, full build: " + slowest(last.full, "test."))
    print("slowest tests, daily run:  " + slowest(last.daily, "test."))
    print("\nsegment turnover, full build (all but the last day) -> daily run (the last day):\n" + last.turnover)
    print("\n| run | preset | events | full build (wall) | daily run (wall) | daily / full | load average (full: start -> end; daily) |"
          "\n|---|---|---|---|---|---|---|")
    for n, run in enumerate(runs, 1):
        print(f"| {n} | {meta['preset']} seed {meta['seed']} | {counts['events']:,} | {run.full.wall:.1f}s | "
              f"{run.daily.wall:.1f}s | {run.ratio:.1%} | {run.loads[0]} -> {run.loads[1]}; {run.loads[2]} -> {run.loads[3]} |")
    print(f"mart rows: {marts}" + (f"; excluded: {' '.join(args.exclude)}" if args.exclude else ""))
    met = sum(run.ratio <= TARGET_RATIO for run in runs)
    print(f"target daily/full <= {TARGET_RATIO:.0%} in every run: {met} of {len(runs)} "
          f"({'met' if met == len(runs) else 'NOT met'})")
    return 0 if met == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
