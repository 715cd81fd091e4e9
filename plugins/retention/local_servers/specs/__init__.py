"""Vendors' own API descriptions, for local servers that accept exactly what the vendor accepts.

The full files are committed as published (see ``README.md`` beside them for source,
commit and licence). Loading Intercom's 880 KB YAML takes seconds, so each local server
loads a **subset**: the operations it serves and every component they reference,
derived from the full file by :func:`derive_subset` and committed as JSON
(``*.subset.json``). ``python -m retention.local_servers.specs`` regenerates them;
``tests/plugins/local_servers/test_intercom_server.py`` checks they still match the full files.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SPECS_DIR = Path(__file__).parent

# The operations each local server serves: (path, method).
INTERCOM_FULL = SPECS_DIR / "intercom-api-2.14.yaml"
INTERCOM_SUBSET = SPECS_DIR / "intercom-api-2.14.subset.json"
INTERCOM_OPERATIONS = (
    ("/contacts", "post"),
    ("/contacts/search", "post"),
    ("/contacts/{contact_id}", "put"),
    ("/contacts/{contact_id}", "get"),
    ("/contacts/{contact_id}/tags", "post"),
    ("/contacts/{contact_id}/tags/{tag_id}", "delete"),
    ("/contacts/{contact_id}/companies", "post"),
    ("/companies", "post"),
    ("/tags", "get"),
    ("/tags", "post"),
    ("/data_attributes", "get"),
    ("/data_attributes", "post"),
)

SLACK_FULL = SPECS_DIR / "slack-web-api-openapi-v2.json"
SLACK_SUBSET = SPECS_DIR / "slack-web-api-chat.postMessage.subset.json"
SLACK_OPERATIONS = (("/chat.postMessage", "post"),)


def derive_subset(spec: dict[str, Any], operations: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """``spec`` cut down to ``operations`` and the components (or definitions) they reference."""
    paths: dict[str, dict[str, Any]] = {}
    for path, method in operations:
        item = spec["paths"][path]
        shared = {k: v for k, v in item.items() if k in ("parameters", "summary", "description")}
        paths.setdefault(path, dict(shared))[method] = item[method]
    subset = {k: v for k, v in spec.items() if k not in ("paths", "components", "definitions", "tags")}
    subset["paths"] = paths
    wanted: set[tuple[str, ...]] = set()
    pending = [paths]
    if "components" in spec:
        pending.append(spec["components"].get("securitySchemes", {}))
    while pending:
        for ref in _refs(pending.pop()):
            parts = tuple(ref.removeprefix("#/").split("/"))
            if parts not in wanted:
                wanted.add(parts)
                pending.append(_lookup(spec, parts))
    for parts in sorted(wanted):
        node = subset
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _lookup(spec, parts)
    if "components" in spec and "securitySchemes" in spec["components"]:
        subset.setdefault("components", {})["securitySchemes"] = spec["components"]["securitySchemes"]
    return subset


def _refs(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/"):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _lookup(spec: dict[str, Any], parts: tuple[str, ...]) -> Any:
    node: Any = spec
    for part in parts:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def load_full(path: Path) -> dict[str, Any]:
    if path.suffix == ".json":
        return json.loads(path.read_text())
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(), Loader=loader)  # noqa: S506 - a safe loader


@cache
def load_subset(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def write_subsets() -> None:
    for full, subset, operations in (
        (INTERCOM_FULL, INTERCOM_SUBSET, INTERCOM_OPERATIONS),
        (SLACK_FULL, SLACK_SUBSET, SLACK_OPERATIONS),
    ):
        derived = derive_subset(load_full(full), operations)
        subset.write_text(json.dumps(derived, indent=1, sort_keys=True) + "\n")
        print(f"{subset.name}: {len(derived['paths'])} paths from {full.name}")


if __name__ == "__main__":
    write_subsets()
