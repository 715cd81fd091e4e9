"""Presets and parameters are validated with one clear message each."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from retention.cli import main
from retention.simulate.config import PRESETS, SimulationConfig, SimulationConfigError
from retention.simulate.engine import simulate


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preset": "huge"}, "unknown preset 'huge': choose one of demo, large, tiny"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"scale": 0}, "scale must be a number in (0, 100]"),
        ({"scale": float("nan")}, "scale must be a number"),
        ({"months": 1}, "months must be an integer from 2 to 120"),
        ({"bad_input_rate": 0.9}, "bad-input-rate must be a share from 0 to 0.5"),
        ({"end_date": date(1999, 1, 1)}, "out of range"),
        ({"scale": 0.01}, "raise --scale"),
    ],
)
def test_invalid_parameters_are_rejected(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"preset": "tiny", "seed": 1, "out": tmp_path / "x", **kwargs}
    with pytest.raises(SimulationConfigError) as err:
        SimulationConfig(**args)
    assert message in str(err.value)


def test_presets_scale_and_months() -> None:
    cfg = SimulationConfig(preset="demo", seed=1, out=Path("x"), scale=2.0, months=3, end_date=date(2024, 2, 10))
    assert cfg.n_accounts == 2 * PRESETS["demo"].accounts
    assert cfg.start_date == date(2023, 12, 1)  # three calendar months ending with February 2024
    assert PRESETS["tiny"].accounts < PRESETS["demo"].accounts < PRESETS["large"].accounts


def test_refuses_to_overwrite_a_folder_that_is_not_a_simulation(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(SimulationConfigError, match="is not a simulated company"):
        simulate(SimulationConfig(preset="tiny", seed=1, out=tmp_path))
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_cli_reports_bad_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--preset", "tiny", "--seed", "1", "--out", str(tmp_path / "o"), "--end-date", "2025-13-01"])
    assert code == 2
    assert "end date must be YYYY-MM-DD, got '2025-13-01'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_writes_the_company(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "co"
    code = main(["simulate", "--preset", "tiny", "--seed", "3", "--out", str(out), "--months", "2",
                 "--end-date", "2024-03-31", "--scale", "0.5"])
    assert code == 0
    manifest = (out / "simulation.json").read_text()
    assert '"start_date": "2024-02-01"' in manifest and '"accounts": 15' in manifest
    assert f"-> {out}" in capsys.readouterr().out
