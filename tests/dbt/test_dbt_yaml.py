"""The dbt properties files say what they mean: every column entry has only keys dbt knows.

An unquoted description with a comma in a YAML flow mapping (``- {name: plan, description:
Plan (billing), else ..., data_type: text}``) ends at the comma: the rest becomes a key of
its own, and the description persisted into Postgres comments (``persist_docs``) is cut short.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from retention import dbt as retention_dbt

COLUMN_KEYS = {"name", "description", "data_type", "constraints", "data_tests", "tests", "meta", "tags",
               "quote", "config", "granularity"}


def odd_column_entries(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for kind in ("models", "seeds", "snapshots", "sources"):
            nodes = doc.get(kind) if isinstance(doc, dict) else None
            for node in nodes if isinstance(nodes, list) else []:  # dbt_project.yml's configs are mappings
                for table in node.get("tables") or [node]:
                    for column in table.get("columns") or []:
                        extra = set(column) - COLUMN_KEYS
                        if extra or not isinstance(column.get("description", ""), str):
                            found.append(f"{path.name}: {table.get('name')}.{column.get('name')} has keys {sorted(map(str, extra))}")
    return found


def test_every_column_entry_has_only_dbt_keys():
    assert odd_column_entries(retention_dbt.project_dir()) == []


def test_the_check_finds_a_description_cut_at_a_comma(tmp_path: Path):
    (tmp_path / "m.yml").write_text("models:\n  - name: m\n    columns:\n"
                                    "      - {name: plan, description: Plan (billing), else the group's., data_type: text}\n")
    assert odd_column_entries(tmp_path) == ["m.yml: m.plan has keys [\"else the group's.\"]"]
