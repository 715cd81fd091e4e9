"""Rich progress bars for the command line (:class:`retention.progress.Progress`).

On a terminal the bars redraw in place on stderr; when stderr is a file or a pipe rich
does not redraw, and each step's final line is printed once when the command ends, so a
log of ``retention load ... 2> load.log`` stays readable.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text


class _Rows(ProgressColumn):
    """Rows carried so far and rows per second."""

    def render(self, task) -> Text:
        rows = task.fields.get("rows", 0)
        if not rows:
            return Text("")
        elapsed = task.finished_time if task.finished else task.elapsed
        rate = rows / elapsed if elapsed else 0.0
        return Text(f"{rows:,} rows, {rate:,.0f} rows/s")


class _Count(ProgressColumn):
    """``N/M unit`` when the total is known, ``N unit`` otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self._known = MofNCompleteColumn()

    def render(self, task) -> Text:
        unit = task.fields.get("unit", "")
        if task.total is None:
            return Text(f"{int(task.completed)} {unit}".rstrip())
        text = self._known.render(task)
        text.append(f" {unit}".rstrip())
        return text


class RichBars:
    """One rich task per :meth:`start`; the previous one is marked done. Nothing is drawn
    (not even an empty line) until the first step starts."""

    def __init__(self) -> None:
        self._progress: RichProgress | None = None
        self._task: TaskID | None = None
        self._lock = threading.Lock()

    def start(self, label: str, total: int | None = None, unit: str = "") -> None:
        with self._lock:
            if self._progress is None:
                self._progress = RichProgress(
                    TextColumn("{task.description}"), BarColumn(bar_width=30), _Count(), _Rows(),
                    TimeElapsedColumn(), console=console(), transient=False,
                )
                self._progress.start()
            self._finish()
            self._task = self._progress.add_task(label, total=total, unit=unit, rows=0)

    def advance(self, steps: int = 1, rows: int = 0) -> None:
        with self._lock:
            if self._task is None:
                return
            task = self._progress.tasks[self._task]
            self._progress.update(self._task, advance=steps, rows=task.fields.get("rows", 0) + rows)

    def _finish(self) -> None:
        if self._task is not None:
            task = self._progress.tasks[self._task]
            if task.total is None:  # unknown length: it is as long as what was done
                self._progress.update(self._task, total=task.completed)
            self._progress.stop_task(self._task)

    def close(self) -> None:
        with self._lock:
            self._finish()
            self._task = None
            if self._progress is not None:
                self._progress.stop()
                self._progress = None


def console() -> Console:
    """Where progress goes: stderr, so stdout keeps the commands' results. Not a
    terminal: wide enough that a final line is not wrapped."""
    out = Console(stderr=True)
    return out if out.is_terminal else Console(stderr=True, width=max(out.width, 132))


@contextmanager
def bars() -> Iterator[RichBars]:
    """Progress bars for the steps run inside the block (stopped, and their last state
    shown, when it ends)."""
    reporter = RichBars()
    try:
        yield reporter
    finally:
        reporter.close()
