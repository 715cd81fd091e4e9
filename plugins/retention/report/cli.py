"""``retention report``: build the static HTML retention report from the marts."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from retention import warehouse
from retention.config import settings


def _cmd_report(out: Path | None, open_it: bool) -> int:
    from retention.report import build_report, default_path

    url = warehouse.resolve_url(settings())
    result = build_report(url, out or default_path())
    print(f"report: {result.path} ({len(result.rendered)} charts)")
    for chart_id, why in result.missing.items():
        print(f"  not drawn: {chart_id}: {why}")
    if open_it:
        webbrowser.open(result.path.resolve().as_uri())
    return 0


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        out: Annotated[Path | None, typer.Option(help="output file (default: reports/retention_report.html)")] = None,
        open_: Annotated[bool, typer.Option("--open", help="open it in a browser afterwards")] = False,
    ) -> int:
        """Build the HTML retention report from the marts."""
        return _cmd_report(out, open_)
