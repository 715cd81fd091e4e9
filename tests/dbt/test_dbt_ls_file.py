"""The committed dbt listing that transform_dbt renders from must match the project."""

from __future__ import annotations

import json
from pathlib import Path

from retention import dbt as retention_dbt


def test_committed_dbt_ls_file_is_current(tmp_path: Path):
    committed = retention_dbt.ls_file().read_text()
    current = retention_dbt.list_resources(tmp_path)
    ids = lambda text: {json.loads(line)["unique_id"] for line in text.splitlines()}  # noqa: E731
    assert ids(committed) == ids(current), (
        f"{retention_dbt.ls_file()} is stale (missing: {sorted(ids(current) - ids(committed))[:5]}, "
        f"gone: {sorted(ids(committed) - ids(current))[:5]}). Run `python -m retention.dbt` and commit it."
    )
    assert committed == current, f"{retention_dbt.ls_file()} is stale: run `python -m retention.dbt` and commit it."
