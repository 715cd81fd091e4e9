"""dbt exposures for the syncs, so ``dbt docs`` shows which marts feed which tool.

Generated from the sync configuration into
``dbt_project/models/exposures/_syncs__exposures.yml`` (``retention sync exposures``); a
test keeps the committed file equal to what the committed ``syncs.yml`` generates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from retention.airflow_defaults import OWNER
from retention.config import settings
from retention.sync.config import SyncSpec

HEADER = "# Generated from syncs.yml by `retention sync exposures`; do not edit by hand.\n"


def exposures_path() -> Path:
    return settings().dbt_project_dir / "models" / "exposures" / "_syncs__exposures.yml"


def render(syncs: Sequence[SyncSpec]) -> str:
    exposures = []
    for s in syncs:
        segments = ", ".join(s.source.segments) or "every segment"
        exposures.append({
            "name": f"sync_{s.name}",
            "label": f"Sync {s.name} ({s.destination.kind})",
            "type": "application",
            "maturity": "medium" if s.enabled else "low",
            "description": (
                f"Segment sync `{s.name}` ({'enabled' if s.enabled else 'disabled'}): {segments} from "
                f"{s.source.model} to a {s.destination.kind} destination, {s.mode} mode keyed by "
                f"{s.identity.kind} ({s.identity.column}); fields sent: {', '.join(sorted(s.mapping))}."
            ),
            "depends_on": [f"ref('{s.source.model.split('.')[1]}')"],
            "owner": {"name": OWNER},
            "meta": {"destination_kind": s.destination.kind, "mode": s.mode,
                     "remove_exits": s.remove_exits, "mapping_version": s.mapping_version},
        })
    return HEADER + yaml.safe_dump({"version": 2, "exposures": exposures}, sort_keys=False, width=100)


def write(syncs: Sequence[SyncSpec]) -> Path:
    path = exposures_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(syncs))
    return path
