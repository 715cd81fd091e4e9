"""What the ``sync_segments`` DAG and ``retention sync`` both call.

* :func:`plan`: the syncs to run (enabled ones, or the names asked for), grouped by
  destination kind, so each runs in its destination's Airflow pool
  (:func:`retention.sync.destinations.registry.pool_name`).
* :func:`run_one`: load the configuration and run (or dry-run) one sync by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from retention.progress import SILENT, Progress
from retention.sync import config, engine
from retention.sync.destinations import registry

def plan(names: Sequence[str] | None = None, path: Path | str | None = None) -> dict[str, list[str]]:
    """kind -> names of the syncs to run, for every registered kind (empty lists included)."""
    selected = config.select(config.load(path).syncs, names)
    by_kind: dict[str, list[str]] = {kind: [] for kind in sorted(registry.kinds())}
    for spec in selected:
        by_kind[spec.destination.kind].append(spec.name)
    return by_kind


def run_one(url: str, name: str, *, dry_run: bool = False, force: bool = False,
            path: Path | str | None = None, progress: Progress = SILENT) -> engine.SyncOutcome:
    sync_file = config.load(path)
    spec, = config.select(sync_file.syncs, [name])
    return engine.run_sync(url, spec, dry_run=dry_run, force=force,
                           log_retention_days=sync_file.log_retention_days, progress=progress)
