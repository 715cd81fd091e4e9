"""The committed dbt listings that transform_dbt renders from (one per events source,
retention.sources) must match the project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retention import dbt as retention_dbt


@pytest.mark.parametrize("source", sorted(retention_dbt.LS_FILE_NAMES))
def test_committed_dbt_ls_file_is_current(tmp_path: Path, source: str):
    listing = retention_dbt.ls_file(source)
    committed = listing.read_text()
    current = retention_dbt.list_resources(tmp_path, source)
    ids = lambda text: {json.loads(line)["unique_id"] for line in text.splitlines()}  # noqa: E731
    assert ids(committed) == ids(current), (
        f"{listing} is stale (missing: {sorted(ids(current) - ids(committed))[:5]}, "
        f"gone: {sorted(ids(committed) - ids(current))[:5]}). Run `python -m retention.dbt` and commit it."
    )
    assert committed == current, f"{listing} is stale: run `python -m retention.dbt` and commit it."
