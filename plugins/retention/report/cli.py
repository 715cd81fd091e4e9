"""``retention report``: build the static HTML retention report from the marts."""

from __future__ import annotations

import argparse
import webbrowser
from pathlib import Path

from retention import warehouse
from retention.config import settings


def _cmd_report(args: argparse.Namespace) -> int:
    from retention.report import build_report, default_path

    url = warehouse.resolve_url(settings())
    result = build_report(url, args.out or default_path())
    print(f"report: {result.path} ({len(result.rendered)} charts)")
    for chart_id, why in result.missing.items():
        print(f"  not drawn: {chart_id}: {why}")
    if args.open:
        webbrowser.open(result.path.resolve().as_uri())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="build the HTML retention report from the marts")
    p.add_argument("--out", type=Path, default=None, help="output file (default: reports/retention_report.html)")
    p.add_argument("--open", action="store_true", help="open it in a browser afterwards")
    p.set_defaults(func=_cmd_report)
