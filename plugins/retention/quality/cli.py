"""``retention gate``: run the GX quality gates from the command line."""

from __future__ import annotations

import argparse
from datetime import date

from retention import warehouse
from retention.config import settings
from retention.quality.gate import file_context, run_gates
from retention.quality.suites import GATES, MARTS_GATES, RAW_GATES, GateSettings

STAGES = {"raw": RAW_GATES, "marts": MARTS_GATES}


def _run(args: argparse.Namespace) -> int:
    cfg = settings()
    url = warehouse.resolve_url(cfg)
    names = args.gate or STAGES[args.stage]
    gate_settings = GateSettings(as_of=args.as_of or date.today())
    outcomes = run_gates(
        url, names, gate_settings, context=file_context(cfg.expectations_dir), raise_on_failure=False
    )
    for o in outcomes:
        status = "passed" if o.success else "FAILED: " + ", ".join(o.failed)
        print(f"{o.gate:<28} {o.evaluated:>3} expectations  {status}")
    print(f"data docs: {cfg.expectations_dir / 'uncommitted' / 'data_docs' / 'local_site' / 'index.html'}")
    return 0 if all(o.success for o in outcomes) else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gate", help="run the Great Expectations quality gates")
    p.add_argument("--stage", choices=sorted(STAGES), default="raw")
    p.add_argument("--gate", action="append", choices=sorted(GATES), help="run only these gates")
    p.add_argument("--as-of", type=date.fromisoformat, help="date freshness is measured against")
    p.set_defaults(func=_run)
