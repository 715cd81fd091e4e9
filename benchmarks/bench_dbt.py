"""Full dbt build vs the daily run, on a simulated company landed in raw the production way.

    nice python -m benchmarks.bench_dbt [--preset large] [--seed 0] [--data DIR]

1. `retention simulate` (skipped when --data already holds the company);
2. raw: Stripe through the local Stripe server and `retention stripe-ingest`, events /
   NPS / support through `retention load`, all but the last day of events;
3. full build: `dbt build --full-refresh` (seeds, every model, every test);
4. the last day of events lands (`retention load --since`), then the daily run: `dbt build`
   (what transform_dbt runs: incremental account_usage_daily, table marts rebuilt).

Wall times of the dbt processes (start-up included) and the summed node times from
run_results.json. Target: daily <= 10% of full. docs/dbt.md records a run.
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
from datetime import date, timedelta
from pathlib import Path

from retention import warehouse
from retention.hooks.stripe import connection_json

REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "dbt_project"
BIN = Path(sys.executable).parent
TARGET_RATIO = 0.10


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


def dbt_build(env: dict[str, str], target: Path, *extra: str) -> tuple[float, float, int]:
    """(wall seconds, summed node seconds, nodes) of one `dbt build`."""
    wall = _run([str(BIN / "dbt"), "build", *extra, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
                 "--target-path", str(target), "--log-path", str(target / "logs")], env)
    times = _node_times(target)
    return wall, sum(times.values()), len(times)


def _node_times(target: Path) -> dict[str, float]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {".".join(r["unique_id"].split(".")[2:]): r["execution_time"] for r in results}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="large")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, help="simulated company folder (simulated there if missing)")
    parser.add_argument("--exclude", nargs="+", default=[], help="dbt --exclude for both builds, e.g. slow_model+")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_dbt_") as tmp:
        tmp_path = Path(tmp)
        company = args.data or tmp_path / f"{args.preset}-seed{args.seed}"
        env = {**os.environ}
        if not (company / "simulation.json").exists():
            secs = _run([str(BIN / "retention"), "simulate", "--preset", args.preset, "--seed", str(args.seed),
                         "--out", str(company)], env)
            print(f"simulate {args.preset}: {secs:.0f}s", flush=True)
        meta = json.loads((company / "simulation.json").read_text())
        last_day = date.fromisoformat(meta["end_date"])

        pgdata = tmp_path / "pg"
        server_url = warehouse.start_embedded(pgdata)
        try:
            url = warehouse.create_database(server_url, "bench_dbt")
            env.update({"WAREHOUSE_URL": url, **warehouse.dbt_env(url)})
            stripe_s = land_stripe(company, env)
            load = [str(BIN / "retention"), "load", "--path", str(company)]
            files_s = _run([*load, "--source", "events", "--source", "nps", "--source", "support",
                            "--until", last_day.isoformat()], env)
            with warehouse.connect(url) as conn:
                counts = {t: conn.execute(f"select count(*) from raw.{t}").fetchone()[0]
                          for t in ("events", "stripe_invoices", "stripe_subscriptions")}
            print(f"landed in {stripe_s:.0f}s (stripe) + {files_s:.0f}s (files): {counts}", flush=True)

            excluded = ["--exclude", *args.exclude] if args.exclude else []
            full = dbt_build(env, tmp_path / "full", "--full-refresh", *excluded)
            print(f"full build: {full[0]:.1f}s wall, {full[1]:.1f}s in nodes ({full[2]} nodes)", flush=True)
            _run([*load, "--source", "events", "--since", last_day.isoformat(),
                  "--until", (last_day + timedelta(days=1)).isoformat()], env)
            daily = dbt_build(env, tmp_path / "daily", *excluded)
            print(f"daily run:  {daily[0]:.1f}s wall, {daily[1]:.1f}s in nodes ({daily[2]} nodes)", flush=True)
            with warehouse.connect(url) as conn:
                marts = {t: conn.execute(f"select count(*) from marts.{t}").fetchone()[0]
                         for t in ("mrr_monthly", "mrr_movements", "cohort_retention", "account_usage_daily")}
            slowest = sorted(_node_times(tmp_path / "full").items(), key=lambda kv: -kv[1])[:6]
            print("slowest nodes in the full build: " + ", ".join(f"{n} {t:.1f}s" for n, t in slowest))
        finally:
            warehouse.stop_embedded(pgdata)

    ratio = daily[0] / full[0]
    print(f"\n| preset | events | full build (wall) | daily run (wall) | daily / full |\n|---|---|---|---|---|\n"
          f"| {meta['preset']} seed {meta['seed']} | {counts['events']:,} | {full[0]:.1f}s | {daily[0]:.1f}s | {ratio:.1%} |")
    print(f"mart rows: {marts}" + (f"; excluded: {' '.join(args.exclude)}" if args.exclude else ""))
    print(f"target daily/full <= {TARGET_RATIO:.0%}: {'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
