"""Where a quality-gate stage's time goes: ``run_gates`` under cProfile, on the configured warehouse.

    python -m benchmarks.profile_gates --as-of 2025-12-31 [--since 2025-12-31] [--stage raw] [--history 200]

Runs the stage's gates (``retention.quality.suites.stage_gates``) as ``transform_dbt``'s
stage task does, with a file context: a copy of the project's ``expectations/`` (without
``uncommitted/``) in a temporary folder, so the project's results are untouched. With
``--history N``, that many earlier results (copies of the first run's, dated before the
retention window, their Data Docs pages built) are stored first and the stage runs again:
once keeping every result (``keep_days`` 0: what the index costs with N stored), then twice
with the configured retention (``RETENTION_GX_RESULTS_KEEP_DAYS``): the run that removes the
old results and their pages, and the next one. Prints, for each run, the
wall time and its parts: opening the file context, setting up the checkpoints, the
validations (of which waiting on Postgres), the Data Docs build (of which the index) and
pruning; and GX's import time in this process. docs/performance.md ("Gates") records runs.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

PARTS = {
    "file context": "gate.py:{}(file_context)",
    "checkpoint set-up": "gate.py:{}(configure_checkpoint)",
    "validations": "checkpoint.py:{}(run)",
    "  waiting on Postgres": "connection.py:{}(wait)",
    "Data Docs": "abstract_data_context.py:{}(build_data_docs)",
    "  the index": "site_builder.py:{index}(build)",
    "pruning": "gate.py:{}(prune_results)",
}


def _parts(profile: cProfile.Profile) -> dict[str, float]:
    from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder

    index = DefaultSiteIndexBuilder.build.__code__.co_firstlineno
    stats = pstats.Stats(profile).stats  # (file, line, function) -> (cc, nc, tt, ct, callers)
    found = dict.fromkeys(PARTS, 0.0)
    for (path, line, func), (_cc, _nc, tottime, cumtime, _callers) in stats.items():
        where = f"{Path(path).name}:{{}}({func})" if line != index else f"{Path(path).name}:{{index}}({func})"
        for part, pattern in PARTS.items():
            if where == pattern:
                # psycopg's wait is a leaf: its own time; the others: time including callees
                found[part] += tottime if "wait" in pattern else cumtime
    return found


def _profiled(label: str, url: str, names, settings, root: Path, keep_days: int) -> None:
    from retention.quality.gate import file_context, run_gates

    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    outcomes = run_gates(url, names, settings, context=file_context(root), raise_on_failure=False,
                         keep_days=keep_days)
    profile.disable()
    seconds = time.perf_counter() - started
    stored = len(list((root / "uncommitted" / "validations").rglob("*.json")))
    print(f"{label}: {seconds:.2f}s, {sum(o.evaluated for o in outcomes)} expectations,"
          f" {'passed' if all(o.success for o in outcomes) else 'FAILED'}; {stored} results stored after")
    for part, part_seconds in _parts(profile).items():
        print(f"  {part:<24} {part_seconds:6.2f}s")


def _old_results(root: Path, count: int) -> None:
    """``count`` copies of the stored results, each dated a year and more back, their pages built."""
    from retention.quality.gate import file_context

    base = root / "uncommitted" / "validations"
    firsts = sorted(base.rglob("*.json"))
    start = datetime.now(timezone.utc) - timedelta(days=400)
    for i in range(count):
        source = firsts[i % len(firsts)]
        suite, run_name, _, batch = source.relative_to(base).parts
        run_time = (start + timedelta(hours=i)).strftime("%Y%m%dT%H%M%S.%fZ")
        target = base / suite / run_name / run_time / batch
        target.parent.mkdir(parents=True)
        shutil.copy(source, target)
    file_context(root).build_data_docs()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--as-of", required=True, type=date.fromisoformat)
    parser.add_argument("--since", type=date.fromisoformat, help="a daily run's first day (default: every row)")
    parser.add_argument("--stage", default="raw", choices=("raw", "marts"))
    parser.add_argument("--history", type=int, default=0, help="results stored before the second run")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    import great_expectations  # noqa: F401

    print(f"GX import: {time.perf_counter() - started:.2f}s")
    from retention import warehouse
    from retention.config import settings
    from retention.quality.suites import GateSettings, stage_gates

    cfg = settings()
    url = warehouse.resolve_url(cfg)
    names, checks = stage_gates(args.stage), GateSettings(as_of=args.as_of, since=args.since)
    with tempfile.TemporaryDirectory(prefix="profile-gates-") as tmp:
        root = Path(tmp) / "expectations"
        shutil.copytree(cfg.expectations_dir, root, ignore=shutil.ignore_patterns("uncommitted"))
        _profiled(f"{args.stage} stage, first run (nothing stored)", url, names, checks, root, 0)
        if args.history:
            _old_results(root, args.history)
            _profiled(f"again, {args.history} older results stored, every result kept", url, names, checks, root, 0)
            for label in ("removing the older ones", "the next run"):
                _profiled(f"again, keeping {cfg.gx_results_keep_days} days: {label}", url, names, checks, root,
                          cfg.gx_results_keep_days)


if __name__ == "__main__":
    main()
