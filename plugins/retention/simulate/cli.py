"""``retention simulate``: write a simulated SaaS company's source files (see docs/simulator.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from retention.cli import choice
from retention.cli_progress import bars
from retention.config import settings
from retention.simulate.config import (
    DEFAULT_END_DATE,
    PRESETS,
    SimulationConfig,
    SimulationConfigError,
    parse_end_date,
)
from retention.simulate.engine import simulate


Preset = choice("Preset", sorted(PRESETS))


def make_config(preset: str, seed: int = 0, out: str | None = None, scale: float = 1.0, months: int | None = None,
                bad_input_rate: float = 0.0, end_date: str | None = None) -> SimulationConfig:
    folder = Path(out) if out else settings().data_dir / f"{preset}-seed{seed}"
    return SimulationConfig(
        preset=preset,
        seed=seed,
        out=folder,
        scale=scale,
        months=months,
        bad_input_rate=bad_input_rate,
        end_date=parse_end_date(end_date) if end_date else DEFAULT_END_DATE,
    )


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate_command(
        preset: Annotated[Preset, typer.Option(help="size of the company")],
        seed: Annotated[int, typer.Option(help="random seed")] = 0,
        out: Annotated[str | None, typer.Option(
            help="output folder (default: $RETENTION_DATA_DIR/<preset>-seed<seed>)")] = None,
        scale: Annotated[float, typer.Option(help="multiply the preset's number of accounts")] = 1.0,
        months: Annotated[int | None, typer.Option(help="months of history (default: the preset's)")] = None,
        bad_input_rate: Annotated[float, typer.Option(
            help="share of event lines to corrupt, e.g. 0.02; writes faults_report.json")] = 0.0,
        end_date: Annotated[str | None, typer.Option(help="last simulated day, YYYY-MM-DD (default 2025-12-31)")] = None,
    ) -> int:
        """Write a simulated SaaS company's source files (events, Stripe, NPS, support, ground truth).

        Deterministic: the same preset, seed and parameters give byte-identical files."""
        try:
            cfg = make_config(preset.value, seed, out, scale, months, bad_input_rate, end_date)
            with bars() as progress:
                result = simulate(cfg, progress)
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
