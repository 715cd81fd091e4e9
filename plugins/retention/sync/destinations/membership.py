"""Which of a sync's segments a record joins and leaves at the destination (membership mode).

Shared by the adapters that keep one list, segment, tag or array value per segment. The
engine hands each record the segments it is in now (``segments``) and those confirmed at
the destination before this change (``previous_segments``); a record only ever leaves
segments this sync put it in, so a member someone else added is never touched.
"""

from __future__ import annotations

from collections.abc import Sequence

from retention.sync.destinations.base import Record


def joins_and_leaves(record: Record, managed: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(segments to add the record to, segments to remove it from), both within ``managed``."""
    previous = set(record.previous_segments)
    current = set() if record.action == "remove" else set(record.segments)
    return (
        tuple(s for s in managed if s in current and s not in previous),
        tuple(s for s in managed if s in previous and s not in current),
    )
