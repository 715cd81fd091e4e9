"""Start a burst early in a rate-limit window, so a slow machine cannot split it.

The local vendor servers count requests in fixed windows aligned to the clock (as the
vendors do). A test that sends N requests and expects the last to be refused fails when a
window boundary falls inside the burst; starting right after a boundary leaves it the whole
window.
"""

from __future__ import annotations

import time


def start_early_in_window(window_s: float, budget_s: float) -> None:
    """Sleep to the next window boundary unless ``budget_s`` is still left in this window."""
    left = window_s - time.time() % window_s
    if left < budget_s:
        time.sleep(left + 0.01)
