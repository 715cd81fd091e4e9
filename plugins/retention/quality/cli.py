"""``retention gate``: run the GX quality gates from the command line."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from retention import warehouse
from retention.cli import choice, iso_date
from retention.config import settings
from retention.quality.gate import file_context, run_gates
from retention.quality.suites import GATES, STAGES, GateSettings, stage_gates

Stage = choice("Stage", sorted(STAGES))
Gate = choice("Gate", sorted(GATES))


def _run(stage: str = "raw", gate: list[str] | None = None, as_of: date | None = None,
         since: date | None = None) -> int:
    cfg = settings()
    url = warehouse.resolve_url(cfg)
    names = gate or stage_gates(stage)  # the configured mode's (retention.sources)
    gate_settings = GateSettings(as_of=as_of or date.today(), since=since)
    outcomes = run_gates(
        url, names, gate_settings, context=file_context(cfg.expectations_dir), raise_on_failure=False,
        keep_days=cfg.gx_results_keep_days,
    )
    for o in outcomes:
        status = "passed" if o.success else "FAILED: " + ", ".join(o.failed)
        print(f"{o.gate:<28} {o.evaluated:>3} expectations  {status}")
    print(f"data docs: {cfg.expectations_dir / 'uncommitted' / 'data_docs' / 'local_site' / 'index.html'}")
    return 0 if all(o.success for o in outcomes) else 1


def register(app: typer.Typer) -> None:
    @app.command("gate")
    def gate(
        stage: Annotated[Stage, typer.Option(help="the raw gates, or those of the marts")] = Stage.raw,
        gate: Annotated[list[Gate] | None, typer.Option(help="run only these gates (repeatable)")] = None,
        as_of: Annotated[str | None, typer.Option(help="date freshness is measured against, YYYY-MM-DD")] = None,
        since: Annotated[str | None, typer.Option(
            help="read raw.events only from this day on, YYYY-MM-DD, as a daily run's gates do (default: every row)",
        )] = None,
    ) -> int:
        """Run the Great Expectations quality gates."""
        return _run(stage.value, [g.value for g in gate or []], iso_date(as_of, "--as-of"), iso_date(since, "--since"))

