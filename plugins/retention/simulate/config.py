"""What to simulate: presets and the validated :class:`SimulationConfig`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

DEFAULT_END_DATE = date(2025, 12, 31)  # fixed, so output never depends on the wall clock


class SimulationConfigError(ValueError):
    """A preset or parameter is invalid; the message says which and what is allowed."""


@dataclass(frozen=True)
class Preset:
    accounts: int
    months: int
    events_per_active_seat_day: float  # mean track events per active seat per weekday
    max_lines_per_file: int  # a day is split into several files beyond this (bounds memory)


PRESETS: dict[str, Preset] = {
    "tiny": Preset(accounts=30, months=6, events_per_active_seat_day=1.2, max_lines_per_file=2_000),
    "demo": Preset(accounts=500, months=12, events_per_active_seat_day=6.5, max_lines_per_file=10_000),
    "large": Preset(accounts=10_000, months=24, events_per_active_seat_day=2.2, max_lines_per_file=10_000),
}


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of one simulated company. Same config => byte-identical files."""

    preset: str
    seed: int
    out: Path
    scale: float = 1.0
    months: int | None = None  # None: the preset's
    bad_input_rate: float = 0.0
    end_date: date = DEFAULT_END_DATE
    growth_per_month: float = 0.08  # signups grow this much month over month
    trial_days: int = 14
    report_milestone_n: int = 3  # "key feature used N times": Report Created N times
    gzip_level: int = 3

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise SimulationConfigError(
                f"unknown preset {self.preset!r}: choose one of {', '.join(sorted(PRESETS))}"
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise SimulationConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and 0 < self.scale <= 100):
            raise SimulationConfigError(f"scale must be a number in (0, 100], got {self.scale!r}")
        if self.months is not None and not (isinstance(self.months, int) and 2 <= self.months <= 120):
            raise SimulationConfigError(f"months must be an integer from 2 to 120, got {self.months!r}")
        if not (isinstance(self.bad_input_rate, (int, float)) and 0 <= self.bad_input_rate <= 0.5):
            raise SimulationConfigError(
                f"bad-input-rate must be a share from 0 to 0.5 (e.g. 0.01 = 1% of event lines), "
                f"got {self.bad_input_rate!r}"
            )
        if not isinstance(self.end_date, date):
            raise SimulationConfigError(f"end_date must be a date (YYYY-MM-DD), got {self.end_date!r}")
        if self.end_date.year < 2015 or self.end_date.year > 2100:
            raise SimulationConfigError(f"end_date {self.end_date} is out of range 2015..2100")
        if not 0 <= self.growth_per_month <= 1:
            raise SimulationConfigError(f"growth_per_month must be in [0, 1], got {self.growth_per_month!r}")
        if self.n_accounts < 3:
            raise SimulationConfigError(
                f"preset {self.preset!r} at scale {self.scale} gives {self.n_accounts} accounts; "
                "raise --scale so there are at least 3"
            )

    @property
    def spec(self) -> Preset:
        return PRESETS[self.preset]

    @property
    def n_accounts(self) -> int:
        return int(round(PRESETS[self.preset].accounts * self.scale))

    @property
    def n_months(self) -> int:
        return self.months if self.months is not None else PRESETS[self.preset].months

    @property
    def start_date(self) -> date:
        """First day of the first simulated month (the end date's month counts as one)."""
        index = self.end_date.year * 12 + self.end_date.month - 1 - (self.n_months - 1)
        return date(index // 12, index % 12 + 1, 1)

    def parameters(self) -> dict[str, Any]:
        """The parameters as written to simulation.json (no output path: it is not content)."""
        values = asdict(self)
        values.pop("out")
        values["end_date"] = self.end_date.isoformat()
        values["start_date"] = self.start_date.isoformat()
        values["months"] = self.n_months
        values["accounts"] = self.n_accounts
        return values


def parse_end_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SimulationConfigError(f"end date must be YYYY-MM-DD, got {text!r}") from None
