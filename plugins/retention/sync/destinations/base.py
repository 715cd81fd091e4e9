"""The contract between the sync engine and a destination adapter.

The engine (``retention.sync.engine``) owns everything that is the same for every tool:
reading the diff from the warehouse, batching, the per-row state, the audit log, the
safety limits and locking. An adapter owns what differs: how a batch of changes becomes
calls to one tool, and how that tool's answer becomes one :class:`RowResult` per record.
The HTTP details (auth, rate budget, retries, ``Retry-After``) live one level lower, in the
destination's hook (``retention.hooks.*``), which the adapter builds from a connection id.

Rules every adapter follows:

* **One result per record, in order.** ``send`` returns exactly one :class:`RowResult`
  for each :class:`Record` it was given, with the same ``key``. A batch that failed as a
  whole yields a failed result for each of its records; a partial answer (HubSpot 207,
  Braze ``errors[]``) fails only the rows it names.
* **Confirmed means confirmed.** ``ok=True`` only when the tool accepted that row. The
  engine advances the row's state only for those.
* **No personal data and no secrets in ``error``.** Name the key, the field names, the
  HTTP status and the vendor's error code; never a value from the payload, never a token.
* **Idempotency is declared.** ``idempotent = True`` when repeating a call cannot create
  a duplicate (upserts, tagging, adding list members). A non-idempotent adapter must send
  each record's ``delivery_id`` so the receiver can drop repeats, or check the engine's
  send log (``SyncContext.already_sent``) before sending.
* **Optional: the full membership.** An adapter that also publishes the whole current
  membership (the files destination) defines ``write_members(ctx, rows)``; ``rows()``
  streams one :class:`Record` per valid source member.
* **Destination ids are cached.** When the tool assigns its own id (Intercom contact id,
  HubSpot record id), return it in ``RowResult.destination_id``; the engine stores it in
  ``activation.sync_state`` and hands it back on the next run as ``Record.destination_id``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

Action = Literal["add", "update", "remove"]


@dataclass(frozen=True)
class Record:
    """One change for one identity key."""

    key: str                      # the normalised identity key (account id, user id or email)
    action: Action                # add: new member / first upsert; update: payload changed; remove: exited
    payload: Mapping[str, Any]    # mapped fields only (destination field -> value); empty for remove
    payload_hash: str             # canonical hash of payload + mapping version
    delivery_id: str              # stable across retries and reruns of this same change
    destination_id: str | None = None  # the tool's own id, cached from an earlier confirmed send
    segments: tuple[str, ...] = ()     # segments the key is a member of (membership mode)
    previous_segments: tuple[str, ...] = ()  # segments confirmed at the destination before this change


@dataclass(frozen=True)
class RowResult:
    """The tool's answer for one record."""

    key: str
    ok: bool
    http_status: int | None = None
    error: str | None = None          # no personal data, no secrets
    destination_id: str | None = None
    retryable: bool = True            # False: a permanent rejection (still retried next run, not in this one)


@dataclass(frozen=True)
class SyncContext:
    """What an adapter may know about the run it is part of."""

    sync_name: str
    run_id: int
    as_of: date
    mode: Literal["upsert", "membership"]
    segments: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)  # the sync's destination options from the YAML
    # The engine's send log, for non-idempotent adapters: True when an earlier attempt of
    # this delivery id may have reached the tool (do not send it again; report it ok).
    already_sent: Callable[[str], bool] = field(default=lambda delivery_id: False, compare=False)


@runtime_checkable
class Destination(Protocol):
    """A destination adapter. Built by the registry from (kind, conn_id, options)."""

    kind: ClassVar[str]          # e.g. "files", "webhook", "intercom"
    idempotent: ClassVar[bool]   # see the module docstring
    max_batch: ClassVar[int]     # records per send() call; the engine never passes more

    def open(self, ctx: SyncContext) -> None:
        """Prepare for a run (create tags/lists, check auth). Called once before any send."""

    def send(self, records: Sequence[Record]) -> list[RowResult]:
        """Deliver one batch (mixed actions allowed); one result per record, in order."""

    def close(self, ctx: SyncContext, *, succeeded: bool) -> None:
        """Finish the run (flush files, post a digest). Called once, also after a failure."""
