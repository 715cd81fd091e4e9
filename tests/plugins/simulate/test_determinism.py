"""Same seed and parameters => byte-identical files; anything else => different files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from retention.simulate.config import SimulationConfig
from retention.simulate.engine import simulate


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    base = tmp_path_factory.mktemp("det")
    out = {}
    for name, seed, rate in (("a", 7, 0.0), ("b", 7, 0.0), ("other_seed", 8, 0.0), ("faulty", 7, 0.03)):
        simulate(SimulationConfig(preset="tiny", seed=seed, out=base / name, bad_input_rate=rate))
        out[name] = _digest(base / name)
    return out


def test_same_seed_is_byte_identical(runs: dict[str, dict[str, str]]) -> None:
    assert len(runs["a"]) > 50  # events, stripe, nps, support, ground truth, manifest
    assert runs["a"] == runs["b"]


def test_different_seed_differs_everywhere(runs: dict[str, dict[str, str]]) -> None:
    a, other = runs["a"], runs["other_seed"]
    for name in ("stripe/customers.jsonl", "stripe/invoices.jsonl", "ground_truth/accounts.csv"):
        assert a[name] != other[name], name
    assert {k for k in a if k.startswith("events/")} != {k for k in other if k.startswith("events/")}


def test_bad_input_mode_only_touches_event_files(runs: dict[str, dict[str, str]]) -> None:
    clean, faulty = runs["a"], runs["faulty"]
    for name, digest in clean.items():
        if name.startswith(("stripe/", "nps/", "support/", "ground_truth/")):
            assert faulty[name] == digest, name
    assert "faults_report.json" in faulty and "faults_report.json" not in clean
    # The same event files (names hash the clean content), some now carrying faults.
    events = {k for k in clean if k.startswith("events/")}
    assert events == {k for k in faulty if k.startswith("events/")}
    assert any(clean[k] != faulty[k] for k in events)


def test_rerun_replaces_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "company"
    simulate(SimulationConfig(preset="tiny", seed=1, out=out, months=3))
    stale = out / "events" / "stale.gz"
    stale.write_bytes(b"left over")
    simulate(SimulationConfig(preset="tiny", seed=1, out=out, months=3))
    assert not stale.exists()
    assert not (tmp_path / "company.partial").exists()
