"""Errors the sync reports as one line (the CLI prints them, the DAG fails the task with them)."""

from __future__ import annotations


class SyncError(RuntimeError):
    """A sync could not run or finish. The message is one line without values or secrets."""


class SyncLocked(SyncError):
    """Another run of the same sync holds its advisory lock."""
