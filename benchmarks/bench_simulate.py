"""Simulator wall time and peak memory per preset, and how memory grows with ``--scale``.

    python -m benchmarks.bench_simulate [--runs tiny,demo@0.5,demo,demo@2] [--keep DIR]
    nice python -m benchmarks.bench_simulate --runs large      # minutes; run once

Each run is a fresh child process (``preset@scale``) that calls ``simulate()`` and
reports its own peak RSS; a child that only imports the simulator is the baseline, so
the table shows what generation adds on top of the interpreter and numpy. Output is a
markdown table for docs/simulator.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from retention.simulate.config import SimulationConfig
from retention.simulate.engine import simulate
preset, scale, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
started = time.perf_counter()
counts = {}
if preset != "import":
    counts = simulate(SimulationConfig(preset=preset, seed=1, out=Path(out), scale=scale)).counts
print(json.dumps({
    "seconds": time.perf_counter() - started,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "accounts": counts.get("accounts", 0),
    "events": counts.get("events", {}).get("records", 0),
    "invoices": counts.get("stripe", {}).get("invoices", 0),
    "gzip_mb": counts.get("events", {}).get("gzip_bytes", 0) / 2**20,
}))
"""


def run_child(preset: str, scale: float, out: Path) -> dict:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, preset, str(scale), str(out)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{preset}@{scale} failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    return result


def parse_runs(text: str) -> list[tuple[str, float]]:
    runs = []
    for item in text.split(","):
        preset, _, scale = item.strip().partition("@")
        runs.append((preset, float(scale or 1.0)))
    return runs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="tiny,demo@0.5,demo,demo@2", help="comma list of preset[@scale]")
    parser.add_argument("--keep", type=Path, help="write the companies here instead of a temp dir")
    args = parser.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_simulate_"))
    try:
        baseline = run_child("import", 1.0, root / "none")
        print(f"baseline (interpreter + numpy + simulator imported): peak RSS {baseline['peak_rss_mb']:.0f} MB")
        print("\n| run | accounts | events | invoices | events .gz MB | wall s | events/s | peak RSS MB | RSS over baseline MB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for preset, scale in parse_runs(args.runs):
            out = root / f"{preset}@{scale}"
            r = run_child(preset, scale, out)
            rate = r["events"] / r["seconds"] if r["seconds"] else 0
            print(
                f"| {preset}@{scale:g} | {r['accounts']:,} | {r['events']:,} | {r['invoices']:,} | {r['gzip_mb']:.1f} | "
                f"{r['seconds']:.1f} | {rate:,.0f} | {r['peak_rss_mb']:.0f} | "
                f"{r['peak_rss_mb'] - baseline['peak_rss_mb']:.0f} |",
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\n(bench driver peak RSS {own:.0f} MB; each run measured in its own process)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
