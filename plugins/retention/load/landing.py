"""Where landed files are and which of them a run reads.

The landing root is a local path or any fsspec URL Airflow's ``ObjectStoragePath``
understands (``file://``, and ``s3://``/``gs://``/``abfs://`` once the matching Airflow
provider is installed, credentials from the Airflow connection named in the URL's user
part, ``s3://<conn_id>@bucket/prefix``, or the provider's default). Layout under the root (docs/DATA_CONTRACTS.md section 1)::

    events/segment-logs/<source_id>/<day_epoch_ms>/<epoch_ms>.<hash>.gz   (also .jsonl, .csv, .parquet)
    nps/nps_responses_<YYYY-MM>.csv
    support/tickets_<YYYY-MM>.jsonl

A root that holds none of these folders is searched as is, so ``--path`` may also point
straight at a folder of files, or at one file. A root that holds some of them but not
the source's has no files of that source (NPS exports are never read as events, nor
event files as support tickets).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from retention.config import Settings

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

LANDING_ENV = "RETENTION_EVENTS_URI"
LANDING_VARIABLE = "retention_events_uri"

SOURCE_FOLDERS = {"events": "events", "nps": "nps", "support": "support"}
# suffix -> (format, gzipped); the longest matching suffix wins.
# Matched case-insensitively.
FORMATS = {
    ".jsonl.gz": ("jsonl", True),
    ".jsonl.gzip": ("jsonl", True),
    ".ndjson.gz": ("jsonl", True),
    ".json.gz": ("jsonl", True),
    ".gz": ("jsonl", True),  # Segment's own object names: <epoch_ms>.<hash>.gz
    ".jsonl": ("jsonl", False),
    ".ndjson": ("jsonl", False),
    ".json": ("jsonl", False),
    ".csv.gz": ("csv", True),
    ".csv": ("csv", False),
    ".parquet": ("parquet", False),
}
SOURCE_FORMATS = {"events": {"jsonl", "csv", "parquet"}, "nps": {"csv"}, "support": {"jsonl"}}

_EPOCH_MS = re.compile(r"^\d{13}$")
_YEAR_MONTH = re.compile(r"(\d{4})-(\d{2})")


class LandingError(ValueError):
    """The landing location is missing or ambiguous. The message says what to set."""


@dataclass(frozen=True)
class LandedFile:
    uri: str
    path: Path | ObjectStoragePath
    format: str
    gzipped: bool
    first_day: date | None  # None: undated, read by every run (the manifest skips it)
    last_day: date | None


def to_path(uri: str) -> Path | ObjectStoragePath:
    """A local path (``file://`` URL or plain path, made absolute) as a ``pathlib.Path``;
    any other URL as an ``ObjectStoragePath``. Local loads need no Airflow import."""
    if uri.startswith("file://"):
        uri = uri.removeprefix("file://")
    if "://" not in uri:
        return Path(uri).expanduser().resolve()
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(uri)


def path_uri(path: Path | ObjectStoragePath) -> str:
    """The manifest key of a landed file: its URL (``file:///abs/path`` for local files,
    not percent-encoded, as ``ObjectStoragePath`` writes it)."""
    return f"file://{path}" if isinstance(path, Path) else str(path)


def landing_uri(
    explicit: str | None,
    cfg: Settings,
    *,
    variable: str | None = None,
    environ: dict[str, str] | None = None,
) -> str:
    """The landing location, the one rule for the DAG and the CLI: ``explicit`` (the DAG
    param ``landing_uri``, the CLI's ``--path``), else ``variable`` (the Airflow Variable
    ``retention_events_uri``, which the DAG reads), else ``RETENTION_EVENTS_URI``, else
    the one simulated company under ``RETENTION_DATA_DIR``.

    ``RETENTION_DATA_DIR`` itself is used when it holds ``events/``, ``nps/`` or
    ``support/``; otherwise the single sub-folder (``<preset>-seed<seed>``) that does.
    """
    if explicit or variable:
        return explicit or variable  # type: ignore[return-value]
    env = os.environ if environ is None else environ
    if env.get(LANDING_ENV):
        return env[LANDING_ENV]
    root = cfg.data_dir
    if _has_sources(root):
        return str(root)
    candidates = sorted(p for p in root.iterdir() if p.is_dir() and _has_sources(p)) if root.is_dir() else []
    if len(candidates) == 1:
        return str(candidates[0])
    found = ", ".join(p.name for p in candidates) or "none"
    raise LandingError(
        f"cannot choose a landing location under {root} (simulated companies found: {found}). "
        f"Set {LANDING_ENV}, the Airflow Variable {LANDING_VARIABLE} or the DAG param landing_uri."
    )


def _has_sources(path: Path | ObjectStoragePath) -> bool:
    return any((path / folder).is_dir() for folder in SOURCE_FOLDERS.values())


def file_format(name: str) -> tuple[str, bool] | None:
    lower = name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if lower.endswith(suffix):
            return FORMATS[suffix]
    return None


def _days(path: Path | ObjectStoragePath) -> tuple[date | None, date | None]:
    """The UTC day (Segment day-partition folder) or month (``_YYYY-MM`` in the name)."""
    if _EPOCH_MS.match(path.parent.name):
        day = datetime.fromtimestamp(int(path.parent.name) / 1000, UTC).date()
        return day, day
    match = _YEAR_MONTH.search(path.name)
    if match:
        year, month = int(match[1]), int(match[2])
        if 1 <= month <= 12:
            first = date(year, month, 1)
            following = date(year + (month == 12), month % 12 + 1, 1)
            return first, date.fromordinal(following.toordinal() - 1)
    return None, None


def discover(root_uri: str, source: str) -> list[LandedFile]:
    """Every file of ``source`` under ``root_uri``, by uri; other files are named in one warning.

    Sorting by uri makes the load order (and so which duplicate is kept) deterministic.
    Which of them a run reads: :func:`select_files`.
    """
    if source not in SOURCE_FOLDERS:
        raise LandingError(f"unknown source {source!r}; use one of {', '.join(SOURCE_FOLDERS)}")
    root = to_path(root_uri)
    if not root.exists():
        raise LandingError(f"landing location {root} does not exist; check {LANDING_ENV} or --path")
    if (root / SOURCE_FOLDERS[source]).is_dir():
        base = root / SOURCE_FOLDERS[source]
    elif _has_sources(root):  # a landing root where nothing of this source has landed
        return []
    else:  # a plain folder of files, or one file
        base = root
    candidates = [base] if base.is_file() else (p for p in base.rglob("*") if p.is_file())
    found: list[LandedFile] = []
    ignored: list[str] = []
    for path in candidates:
        fmt = file_format(path.name)
        if fmt is None or fmt[0] not in SOURCE_FORMATS[source]:
            ignored.append(path_uri(path))
            continue
        first, last = _days(path)
        found.append(LandedFile(path_uri(path), path, fmt[0], fmt[1], first, last))
    if ignored:
        shown = ", ".join(sorted(ignored)[:20]) + (f" and {len(ignored) - 20} more" if len(ignored) > 20 else "")
        accepted = ", ".join(sorted(s for s, (f, _) in FORMATS.items() if f in SOURCE_FORMATS[source]))
        log.warning(
            "%d file(s) under %s are not %s files and are not loaded (names ending in %s, any case): %s",
            len(ignored), base, source, accepted, shown,
        )
    return sorted(found, key=lambda f: f.uri)


@dataclass(frozen=True)
class Seen:
    """What ``raw.load_manifest`` holds for a uri."""

    size_bytes: int | None
    status: str


def select_files(
    files: list[LandedFile], seen: dict[str, Seen], since: date | None, until: date | None
) -> tuple[list[LandedFile], list[LandedFile]]:
    """The files a run over the days ``[since, until)`` reads, and which of them are late.

    * undated files, and files dated in ``[since, until)``: always (the manifest skips
      the ones loaded, after comparing their checksum);
    * files dated before ``since`` that the manifest has not seen loaded as they are now
      (a new uri, a failed one, or a size that changed since it was loaded), back to the
      oldest day the manifest holds for the source: **late** files. Older ones are
      history, read by a ``full`` run or a backfill of their days;
    * files dated on or after ``until``: never.
    """
    oldest = min((f.first_day for f in files if f.uri in seen and f.first_day is not None), default=None)
    chosen: list[LandedFile] = []
    late: list[LandedFile] = []
    for f in files:
        if f.first_day is None or f.last_day is None:
            chosen.append(f)
        elif until is not None and f.first_day >= until:
            continue
        elif since is None or f.last_day >= since:
            chosen.append(f)
        elif oldest is not None and f.last_day >= oldest and _unseen(f, seen.get(f.uri)):
            chosen.append(f)
            late.append(f)
    return chosen, late


def _unseen(landed: LandedFile, seen: Seen | None) -> bool:
    if seen is None or seen.status != "loaded":
        return True
    try:
        return landed.path.stat().st_size != seen.size_bytes
    except OSError:
        return True  # unreadable now: load_file records why


def interval_days(
    start: datetime, end: datetime, lookback_days: int
) -> tuple[date, date]:
    """The day partitions ``[since, until)`` a run over ``[start, end]`` reads.

    The interval's days, plus ``lookback_days`` before them for late-arriving files. An
    instant interval (Airflow 3's default cron timetable: start == end == the run's
    logical date) means the day that just ended.
    """
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    until = end.date() if end.time() == datetime.min.time() else end.date() + timedelta(days=1)
    first = min(start.date(), until - timedelta(days=1))
    return first - timedelta(days=lookback_days), until
