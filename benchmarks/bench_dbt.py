"""Full dbt build vs the daily run, on a simulated company landed in raw the production way.

    nice python -m benchmarks.bench_dbt [--preset large] [--seed 0] [--data DIR] [--keep PGDATA]

1. `retention simulate` (skipped when --data already holds the company);
2. raw: Stripe through the local Stripe server and `retention stripe-ingest`, events /
   NPS / support through `retention load`, all but the last day of events;
3. full build: `dbt build --full-refresh` (seeds, every model, every test);
4. the last day of events lands (`retention load --since`), `vacuum (analyze)` does what
   autovacuum does by the next day, then the daily run: `dbt build`
   --exclude-resource-type unit_test, without --full-refresh (incremental models process
   what is new, tests on raw-sized staging look at the new window: docs/dbt.md), with the full
   build's target folder, so dbt parses partially as a warm worker does. Stripe does not
   change between the two builds (the local Stripe server serves all invoices at once).

Wall times of the dbt processes (start-up included), the summed node times from
run_results.json and every model's time in both runs. Target: daily <= 10% of full.
docs/dbt.md records a run.

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
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import psycopg

from retention import warehouse
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
    """One timed `dbt build`: process wall time and each node's execution time."""

    wall: float
    nodes: dict[str, float]  # "model.mrr_monthly", "test.unique_...", "seed.product_..."

    @property
    def in_nodes(self) -> float:
        return sum(self.nodes.values())

    def summary(self) -> str:
        return f"{self.wall:.1f}s wall, {self.in_nodes:.1f}s in nodes ({len(self.nodes)} nodes)"


def dbt_build(env: dict[str, str], target: Path, *extra: str) -> Build:
    wall = _run([str(BIN / "dbt"), "build", *extra, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
                 "--target-path", str(target), "--log-path", str(target / "logs")], env)
    results = json.loads((target / "run_results.json").read_text())["results"]
    nodes = {}
    for r in results:
        kind, _project, *name = r["unique_id"].split(".")
        nodes[f"{kind}.{name[0] if kind == 'test' else '.'.join(name)}"] = r["execution_time"]
    return Build(wall, nodes)


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
    and every run builds in a fresh copy of it."""
    if reuse and _landed_company(server_url) == str(company):
        return _copy_landed(server_url), "reused the landed raw"
    url = create_database(server_url, LANDED_DB if reuse else BENCH_DB)
    stripe_s = land_stripe(company, {**env, "WAREHOUSE_URL": url})
    files_s = _run([str(BIN / "retention"), "load", "--path", str(company), "--source", "events", "--source", "nps",
                    "--source", "support", "--until", last_day.isoformat()], {**env, "WAREHOUSE_URL": url})
    landed = f"landed in {stripe_s:.0f}s (stripe) + {files_s:.0f}s (files)"
    if not reuse:
        return url, landed
    with warehouse.connect(url) as conn:
        conn.execute("create table public.bench_landed as select %s::text as company", (str(company),))
    return _copy_landed(server_url), landed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="large")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, help="simulated company folder (simulated there if missing)")
    parser.add_argument("--exclude", nargs="+", default=[], help="dbt --exclude for both builds, e.g. slow_model+")
    parser.add_argument("--keep", type=Path, help="embedded Postgres folder to keep the landed raw in and reuse")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_dbt_") as tmp:
        tmp_path = Path(tmp)
        company = simulated_company(args.preset, args.seed, args.data, tmp_path)
        env = {**os.environ}
        meta = json.loads((company / "simulation.json").read_text())
        last_day = date.fromisoformat(meta["end_date"])

        pgdata = args.keep or tmp_path / "pg"
        server_url = warehouse.start_embedded(pgdata)
        try:
            url, landed = land(company, last_day, server_url, env, reuse=args.keep is not None)
            env.update({"WAREHOUSE_URL": url, **warehouse.dbt_env(url)})
            with warehouse.connect(url) as conn:
                counts = {t: conn.execute(f"select count(*) from raw.{t}").fetchone()[0]
                          for t in ("events", "stripe_invoices", "stripe_subscriptions")}
            print(f"{landed}: {counts}", flush=True)
            load = [str(BIN / "retention"), "load", "--path", str(company)]

            excluded = ["--exclude", *args.exclude] if args.exclude else []
            # one target folder: the daily run starts from the full build's saved manifest
            # (partial parsing), as transform_dbt's workers keep theirs
            full = dbt_build(env, tmp_path / "target", "--full-refresh", *excluded)
            print(f"full build: {full.summary()}", flush=True)
            _run([*load, "--source", "events", "--since", last_day.isoformat(),
                  "--until", (last_day + timedelta(days=1)).isoformat()], env)
            # A day passes between a build and the next daily run: autovacuum has analyzed
            # and vacuumed what the build wrote. Do that now, so the daily run is not timed
            # while autovacuum works through the tables the full build just wrote.
            started = time.perf_counter()
            with warehouse.connect(url, autocommit=True) as conn:
                conn.execute("vacuum (analyze)")
            print(f"vacuum (analyze) before the daily run: {time.perf_counter() - started:.0f}s", flush=True)
            # unit tests check logic on fixed inputs: CI runs them, a production run need not
            daily = dbt_build(env, tmp_path / "target", "--exclude-resource-type", "unit_test", *excluded)
            print(f"daily run:  {daily.summary()}", flush=True)
            with warehouse.connect(url) as conn:
                marts = {t: conn.execute(f"select count(*) from marts.{t}").fetchone()[0]
                         for t in ("mrr_monthly", "mrr_movements", "cohort_retention", "account_usage_daily")}
            if args.keep:
                drop_database(url)
        finally:
            warehouse.stop_embedded(pgdata)

    print("\n" + per_model_table(full, daily))
    print("\nslowest tests, full build: " + slowest(full, "test."))
    print("slowest tests, daily run:  " + slowest(daily, "test."))
    ratio = daily.wall / full.wall
    print(f"\n| preset | events | full build (wall) | daily run (wall) | daily / full |\n|---|---|---|---|---|\n"
          f"| {meta['preset']} seed {meta['seed']} | {counts['events']:,} | {full.wall:.1f}s | {daily.wall:.1f}s | {ratio:.1%} |")
    print(f"mart rows: {marts}" + (f"; excluded: {' '.join(args.exclude)}" if args.exclude else ""))
    print(f"target daily/full <= {TARGET_RATIO:.0%}: {'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
