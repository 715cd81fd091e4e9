"""Progress of long steps, reported through a small protocol the package functions accept.

A function that takes ``progress: Progress = SILENT`` calls ``progress.start(...)`` when it
knows what it is about to do, then ``progress.advance(...)`` as it goes. The DAGs pass
nothing (:data:`SILENT` does nothing, so task logs are unchanged); the command line
passes :func:`retention.cli_progress.bars`, which draws rich progress bars on a terminal
and prints each step's final line once when the output is a file or a pipe.
Implementations must accept calls from several threads (the loader's workers).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, label: str, total: int | None = None, unit: str = "") -> None:
        """Begin a step: ``total`` units of work (None when unknown, e.g. API pages)."""

    def advance(self, steps: int = 1, rows: int = 0) -> None:
        """``steps`` units of the current step are done, carrying ``rows`` rows."""


class _Silent:
    def start(self, label: str, total: int | None = None, unit: str = "") -> None:
        pass

    def advance(self, steps: int = 1, rows: int = 0) -> None:
        pass


SILENT: Progress = _Silent()
