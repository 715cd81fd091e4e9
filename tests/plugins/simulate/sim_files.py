"""Readers for a simulated company's files, shared by the simulator tests."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def event_files(root: Path) -> list[Path]:
    return sorted((root / "events").rglob("*.gz"))


def clean_events(root: Path) -> Iterator[dict[str, Any]]:
    """Every record of a company written without bad input (each file one complete member)."""
    for path in event_files(root):
        for line in gzip.decompress(path.read_bytes()).splitlines():
            yield orjson.loads(line)
