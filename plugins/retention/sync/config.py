"""The declarative sync configuration: ``syncs.yml`` at the repo root, validated on load.

``RETENTION_SYNC_CONFIG`` points at another file. Each entry of ``syncs:`` is one sync::

    syncs:
      - name: at_risk_files             # [a-z0-9_], unique; names the state rows and exports/<name>/
        enabled: true
        source:
          model: marts.segment_members  # schema.table (default)
          segments: [health_dropped]    # segment_key values; empty: every segment
        destination:
          kind: files                   # a kind of retention.sync.destinations.registry
          conn_id: null                 # Airflow connection id (secrets live there, never here)
          options: {}                   # passed to the adapter as they are
        identity:
          column: account_id
          kind: account_id              # account_id | user_id | email
          normalise: [trim]             # trim, lower (email keys are always lower-cased)
        mapping:                        # destination field -> warehouse column; nothing else leaves
          account_id: account_id
          plan: plan
        mode: membership                # upsert | membership
        remove_exits: true              # send removals, only for keys this sync added
        limits:
          max_change_pct: 20            # halt when adds + removes exceed this share of members ...
          min_change_count: 25          # ... and at least this many (tiny segments do not trip it)
          batch_size: 500               # records per send (never more than the adapter's max_batch)

Top level: ``log_retention_days`` (default 30): ``activation.sync_log`` rows older than
this are pruned after each run.

A mistake is reported as one line naming the file, the sync and the key
(:class:`SyncConfigError`). The mapping's version (:attr:`SyncSpec.mapping_version`)
is derived from the identity, mode and mapping, and is part of every payload hash, so a
mapping change is a counted resend of every row.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from retention.sync.errors import SyncError

CONFIG_ENV = "RETENTION_SYNC_CONFIG"
DEFAULT_CONFIG = "syncs.yml"
DEFAULT_MODEL = "marts.segment_members"

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_RELATION = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


class SyncConfigError(SyncError, ValueError):
    """The sync configuration is invalid. The message is one line: file, sync, key, problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Strict):
    model: str = DEFAULT_MODEL
    segments: tuple[str, ...] = ()
    segment_column: str = "segment_key"

    @field_validator("model")
    @classmethod
    def _relation(cls, v: str) -> str:
        if not _RELATION.match(v):
            raise ValueError("must be schema.table in lower case, e.g. marts.segment_members")
        return v

    @field_validator("segment_column")
    @classmethod
    def _column(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise ValueError("must be a lower-case column name")
        return v


class DestinationSpec(_Strict):
    kind: str
    conn_id: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        from retention.sync.destinations.registry import kinds

        if v not in kinds():
            raise ValueError(f"unknown kind {v!r}; one of: {', '.join(sorted(kinds()))}")
        return v


class IdentitySpec(_Strict):
    column: str
    kind: Literal["account_id", "user_id", "email"]
    normalise: tuple[Literal["trim", "lower"], ...] = ("trim",)

    @field_validator("column")
    @classmethod
    def _column(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise ValueError("must be a lower-case column name")
        return v

    @property
    def steps(self) -> tuple[str, ...]:
        """Normalisation steps in a fixed order; email keys are always trimmed and lower-cased."""
        wanted = set(self.normalise) | ({"trim", "lower"} if self.kind == "email" else set())
        return tuple(s for s in ("trim", "lower") if s in wanted)


class LimitsSpec(_Strict):
    max_change_pct: float = Field(20.0, gt=0, le=100)
    min_change_count: int = Field(25, ge=0)
    batch_size: int = Field(500, ge=1, le=10_000)


class SyncSpec(_Strict):
    name: str
    enabled: bool = True
    source: SourceSpec = Field(default_factory=SourceSpec)
    destination: DestinationSpec
    identity: IdentitySpec
    mapping: dict[str, str]
    mode: Literal["upsert", "membership"] = "upsert"
    remove_exits: bool = False
    limits: LimitsSpec = Field(default_factory=LimitsSpec)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("must match [a-z][a-z0-9_]* (it names state rows and a folder)")
        return v

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("map at least one destination field to a warehouse column")
        if len(v) > 50:
            raise ValueError("at most 50 fields")
        for field_name, column in v.items():
            if not field_name or not isinstance(field_name, str):
                raise ValueError("destination field names must be non-empty strings")
            if not isinstance(column, str) or not _IDENT.match(column):
                raise ValueError(f"field {field_name!r}: the column must be a lower-case column name")
        return v

    @property
    def mapping_version(self) -> str:
        """A short hash of what decides a payload: identity, mode and the sorted mapping."""
        canon = json.dumps(
            {"identity": [self.identity.column, self.identity.kind, list(self.identity.steps)],
             "mode": self.mode, "mapping": sorted(self.mapping.items()),
             "segments": sorted(self.source.segments)},
            sort_keys=True, separators=(",", ":"),
        )
        return hashlib.sha256(canon.encode()).hexdigest()[:12]


class SyncFile(_Strict):
    log_retention_days: int = Field(30, ge=1)  # sync_log rows older than this are pruned
    syncs: tuple[SyncSpec, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> SyncFile:
        seen: set[str] = set()
        for s in self.syncs:
            if s.name in seen:
                raise ValueError(f"duplicate sync name {s.name!r}")
            seen.add(s.name)
        return self


def config_path(environ: dict[str, str] | None = None) -> Path:
    """``RETENTION_SYNC_CONFIG``, else ``syncs.yml`` in the project root."""
    from retention.config import settings

    env = os.environ if environ is None else environ
    given = (env.get(CONFIG_ENV) or "").strip()
    return Path(given) if given else settings(dict(env)).home / DEFAULT_CONFIG


def load(path: Path | str | None = None) -> SyncFile:
    """The whole file (every sync, enabled or not), or one clear :class:`SyncConfigError`."""
    path = Path(path) if path else config_path()
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SyncConfigError(f"{path}: no sync configuration here; create it or set {CONFIG_ENV}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SyncConfigError(f"{path}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SyncConfigError(f"{path}: the top level must be a mapping with a 'syncs' list")
    try:
        return SyncFile.model_validate(raw)
    except ValidationError as exc:
        raise SyncConfigError(_one_line(path, raw, exc)) from None


def select(syncs: Sequence[SyncSpec], names: Sequence[str] | None) -> list[SyncSpec]:
    """The enabled syncs, or exactly the ``names`` asked for (enabled or not)."""
    if not names:
        return [s for s in syncs if s.enabled]
    by_name = {s.name: s for s in syncs}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SyncConfigError(f"unknown sync(s): {', '.join(unknown)}; configured: {', '.join(by_name) or 'none'}")
    return [by_name[n] for n in names]


def _one_line(path: Path, raw: dict, exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    loc = list(err["loc"])
    sync = ""
    if len(loc) >= 2 and loc[0] == "syncs" and isinstance(loc[1], int):
        entries = raw.get("syncs") or []
        entry = entries[loc[1]] if loc[1] < len(entries) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        sync = f" sync {name!r}:" if name else f" sync #{loc[1] + 1}:"
        loc = loc[2:]
    key = ".".join(str(p) for p in loc) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"{path}:{sync} {key}: {msg}"
