"""Simulated companies shared by the simulator tests (tiny preset: about a second each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from retention.simulate.config import SimulationConfig
from retention.simulate.engine import simulate


@pytest.fixture(scope="session")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean company large enough to show every billing shape (120 accounts, 12 months)."""
    out = tmp_path_factory.mktemp("company") / "tiny-seed5"
    simulate(SimulationConfig(preset="tiny", seed=5, out=out, scale=4, months=12))
    return out
