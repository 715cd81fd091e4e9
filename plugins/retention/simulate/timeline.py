"""Simulation calendar: unix-second clock, month arithmetic as Stripe bills, ISO strings."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

DAY = 86_400


def epoch(d: date) -> int:
    return calendar.timegm(d.timetuple())


def iso(ts: int | float) -> str:
    """ISO-8601 UTC with milliseconds, as Segment and our CSV exports write it."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def add_months(ts: int, months: int) -> int:
    """``ts`` plus calendar months, clamping the day like Stripe's billing anchor does."""
    dt = datetime.fromtimestamp(ts, UTC)
    index = dt.year * 12 + dt.month - 1 + months
    year, month = divmod(index, 12)
    day = min(dt.day, calendar.monthrange(year, month + 1)[1])
    return int(dt.replace(year=year, month=month + 1, day=day).timestamp())


@dataclass(frozen=True)
class Clock:
    start: date  # first simulated day
    end: date  # last simulated day (inclusive)

    @property
    def start_ts(self) -> int:
        return epoch(self.start)

    @property
    def end_ts(self) -> int:
        """Exclusive end: midnight after the last day. Nothing is observed at or after it."""
        return epoch(self.end + timedelta(days=1))

    @property
    def n_days(self) -> int:
        return (self.end - self.start).days + 1

    def day_ts(self, day: int) -> int:
        return self.start_ts + day * DAY

    def month_starts(self) -> list[int]:
        out, ts = [], self.start_ts
        while ts < self.end_ts:
            out.append(ts)
            ts = add_months(ts, 1)
        return out

    def months(self) -> list[str]:
        return [datetime.fromtimestamp(ts, UTC).strftime("%Y-%m") for ts in self.month_starts()]
