"""dbt layers flow one way: staging -> intermediate -> marts.

Read from the committed listing transform_dbt renders from (dbt_project/dbt_ls.json;
tests/dbt/test_dbt_ls_file.py keeps it equal to the project), so this needs no dbt process.
"""

from __future__ import annotations

import json

from retention import dbt as retention_dbt

# a model in the first layer may not read a model in any of the layers after it
ORDER = ("staging", "intermediate", "marts")


def layer(path: str) -> str | None:
    parts = path.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "models" and parts[1] in ORDER else None


def backward_refs(listing: list[dict]) -> list[str]:
    """'<model> (<layer>) reads <parent> (<later layer>)' for every ref against the flow."""
    layers = {n["unique_id"]: layer(n["original_file_path"]) for n in listing if n["resource_type"] == "model"}
    found = []
    for node in listing:
        own = layers.get(node["unique_id"])
        if own is None:
            continue
        for parent in node["depends_on"]["nodes"]:
            theirs = layers.get(parent)
            if theirs is not None and ORDER.index(theirs) > ORDER.index(own):
                found.append(f"{node['name']} ({own}) reads {parent.split('.')[-1]} ({theirs})")
    return sorted(found)


def test_no_model_reads_a_later_layer():
    listing = [json.loads(line) for line in retention_dbt.ls_file().read_text().splitlines()]
    assert sum(layer(n["original_file_path"]) == "intermediate" for n in listing) > 10  # the listing is the project
    assert backward_refs(listing) == []


def test_the_check_names_an_intermediate_model_reading_a_mart():
    def model(name: str, path: str, *parents: str) -> dict:
        return {"unique_id": f"model.retention.{name}", "name": name, "resource_type": "model",
                "original_file_path": path, "depends_on": {"nodes": [f"model.retention.{p}" for p in parents]}}

    listing = [
        model("stg_a", "models/staging/x/stg_a.sql"),
        model("mart_a", "models/marts/x/mart_a.sql", "int_a"),
        model("int_a", "models/intermediate/x/int_a.sql", "stg_a"),
        model("int_b", "models/intermediate/segments/int_b.sql", "int_a", "mart_a"),
    ]
    assert backward_refs(listing) == ["int_b (intermediate) reads mart_a (marts)"]
