"""Errors the sync reports as one line (the CLI prints them, the DAG fails the task with them)."""

from __future__ import annotations


class SyncError(RuntimeError):
    """A sync could not run or finish. The message is one line without values or secrets."""


class SyncLocked(SyncError):
    """Another run of the same sync holds its advisory lock."""


class DestinationError(SyncError):
    """A destination refused a run or kept failing (e.g. :class:`retention.hooks.http.HttpHookError`).

    Its message names the connection, the call, the status and the tool's error code, never a
    value or a secret, so the engine and the CLI show it as it is.
    """
