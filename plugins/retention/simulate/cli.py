"""``retention simulate``: write a simulated SaaS company's source files (see docs/simulator.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from retention.config import settings
from retention.simulate.config import (
    DEFAULT_END_DATE,
    PRESETS,
    SimulationConfig,
    SimulationConfigError,
    parse_end_date,
)
from retention.simulate.engine import simulate



def config_from_args(args: argparse.Namespace) -> SimulationConfig:
    out = Path(args.out) if args.out else settings().data_dir / f"{args.preset}-seed{args.seed}"
    return SimulationConfig(
        preset=args.preset,
        seed=args.seed,
        out=out,
        scale=args.scale,
        months=args.months,
        bad_input_rate=args.bad_input_rate,
        end_date=parse_end_date(args.end_date) if args.end_date else DEFAULT_END_DATE,
    )


def _run(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
        result = simulate(cfg)
    except SimulationConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    c = result.counts
    print(
        f"simulated {c['accounts']} accounts, {c['users']} users, {c['events']['records']} events in "
        f"{c['events']['files']} files, {c['stripe']['invoices']} invoices "
        f"({result.start_date}..{result.end_date}) -> {result.out}"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="write a simulated SaaS company's source files (events, Stripe, NPS, support, ground truth)",
        description="Deterministic: the same preset, seed and parameters give byte-identical files.",
    )
    p.add_argument("--preset", required=True, choices=sorted(PRESETS), help="size of the company")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", help="output folder (default: $RETENTION_DATA_DIR/<preset>-seed<seed>)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply the preset's number of accounts")
    p.add_argument("--months", type=int, help="months of history (default: the preset's)")
    p.add_argument("--bad-input-rate", type=float, default=0.0,
                   help="share of event lines to corrupt, e.g. 0.02; writes faults_report.json")
    p.add_argument("--end-date", help="last simulated day, YYYY-MM-DD (default 2025-12-31)")
    p.set_defaults(func=_run)
