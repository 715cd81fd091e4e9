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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
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
    day = folder_day(path.parent.name)
    if day is not None:
        return day, day
    match = _YEAR_MONTH.search(path.name)
    if match:
        year, month = int(match[1]), int(match[2])
        if 1 <= month <= 12:
            first = date(year, month, 1)
            following = date(year + (month == 12), month % 12 + 1, 1)
            return first, date.fromordinal(following.toordinal() - 1)
    return None, None


@lru_cache(maxsize=4096)
def folder_day(name: str) -> date | None:
    """The UTC day of a Segment day-partition folder name (epoch milliseconds), else None."""
    return datetime.fromtimestamp(int(name) / 1000, UTC).date() if _EPOCH_MS.match(name) else None


def uri_day(uri: str) -> date | None:
    """The day folder of a manifest uri (None: not in a day folder)."""
    parts = uri.rsplit("/", 2)
    return folder_day(parts[-2]) if len(parts) == 3 else None


def _children(folder: str | ObjectStoragePath) -> list[tuple[str | ObjectStoragePath, str, bool]]:
    """``(path, name, is a folder)`` of what ``folder`` holds: one listing, no stat per
    file (``os.scandir`` reads the entry types from the directory itself; local paths
    stay strings, which is several times cheaper than ``pathlib``)."""
    if isinstance(folder, str):
        with os.scandir(folder) as entries:
            return [(e.path, e.name, e.is_dir()) for e in entries]
    return [(p, p.name, p.is_dir()) for p in folder.iterdir()]


def _walk(
    base: Path | ObjectStoragePath, skip_day: Callable[[date], bool] | None
) -> Iterator[tuple[str, Callable[[], Path | ObjectStoragePath]]]:
    """``(uri, its path)`` of every file under ``base``; day folders for which
    ``skip_day`` is true are not listed."""
    folders: list[str | ObjectStoragePath] = [str(base) if isinstance(base, Path) else base]
    while folders:
        for path, name, is_folder in _children(folders.pop()):
            if not is_folder:
                if isinstance(path, str):
                    yield f"file://{path}", lambda path=path: Path(path)
                else:
                    yield path_uri(path), lambda path=path: path
                continue
            day = folder_day(name) if skip_day is not None else None
            if day is None or not skip_day(day):
                folders.append(path)


def discover(
    root_uri: str, source: str, skip_day: Callable[[date], bool] | None = None,
    settled: Callable[[str], bool] | None = None,
) -> list[LandedFile]:
    """Every file of ``source`` under ``root_uri``, by uri; other files are named in one warning.

    ``skip_day``: day folders (Segment's ``<day_epoch_ms>``) for which it is true are not
    listed at all; ``settled``: uris left out without a look (:func:`run_days` says both
    for a run). Sorting by uri makes the load order (and so which duplicate is kept)
    deterministic. Which of them a run reads: :func:`select_files`.
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
    candidates = [(path_uri(base), lambda: base)] if base.is_file() else _walk(base, skip_day)
    found: list[LandedFile] = []
    ignored: list[str] = []
    for uri, path in candidates:
        if settled is not None and settled(uri):
            continue
        landed = _landed(path(), source)
        if landed is None:
            ignored.append(uri)
        else:
            found.append(landed)
    if ignored:
        shown = ", ".join(sorted(ignored)[:20]) + (f" and {len(ignored) - 20} more" if len(ignored) > 20 else "")
        accepted = ", ".join(sorted(s for s, (f, _) in FORMATS.items() if f in SOURCE_FORMATS[source]))
        log.warning(
            "%d file(s) under %s are not %s files and are not loaded (names ending in %s, any case): %s",
            len(ignored), base, source, accepted, shown,
        )
    return sorted(found, key=lambda f: f.uri)


def _landed(path: Path | ObjectStoragePath, source: str) -> LandedFile | None:
    fmt = file_format(path.name)
    if fmt is None or fmt[0] not in SOURCE_FORMATS[source]:
        return None
    first, last = _days(path)
    return LandedFile(path_uri(path), path, fmt[0], fmt[1], first, last)


def landed_file(uri: str, source: str) -> LandedFile:
    """The file a manifest uri names (:func:`path_uri` the other way round)."""
    landed = _landed(to_path(uri), source)
    if landed is None:
        raise LandingError(f"{uri} is in raw.load_manifest but its name is not that of a {source} file")
    return landed


@dataclass(frozen=True)
class Seen:
    """What ``raw.load_manifest`` holds for a uri."""

    size_bytes: int | None
    status: str
    truncated: bool = False
    recent: bool = True  # loaded within RECHECK_DAYS: it may still have been uploading


# A loaded file older than the run's days is looked at again (its size) while it was
# loaded this recently, or when it was loaded truncated: a file read while still being
# uploaded is completed within hours. Older loaded files are not looked at one by one.
RECHECK_DAYS = 2


def oldest_day(seen: dict[str, Seen]) -> date | None:
    """The oldest day folder of a file the manifest holds (None: none in a day folder)."""
    return min((d for d in map(uri_day, seen) if d is not None), default=None)


@dataclass(frozen=True)
class RunListing:
    """What a run over the days ``[since, until)`` lists (:func:`run_listing`)."""

    oldest: date | None  # the oldest day folder the manifest holds for the source
    skip_day: Callable[[date], bool]  # day folders not listed
    settled: Callable[[str], bool]  # files listed but not looked at


def run_listing(seen: dict[str, Seen], since: date | None, until: date | None) -> RunListing:
    """What a run over ``[since, until)`` needs of the landing location.

    Day folders on or after ``until`` (never read) and before the oldest day the manifest
    holds (history, read by a ``full`` run) are not listed. Every day folder in between
    is listed by name only (one directory read each, no look at any file), so a file that
    lands late in an old one is found; in folders before ``since`` the files the manifest
    holds as loaded, neither truncated nor recent (:data:`RECHECK_DAYS`), are left out
    there and then.
    """
    oldest = oldest_day(seen)

    def skip_day(day: date) -> bool:
        if until is not None and day >= until:
            return True
        return since is not None and day < since and (oldest is None or day < oldest)

    def settled(uri: str) -> bool:
        known = seen.get(uri)
        if known is None or known.status != "loaded" or known.truncated or known.recent or since is None:
            return False
        day = uri_day(uri)
        return day is not None and day < since

    return RunListing(oldest, skip_day, settled)


def select_files(
    files: list[LandedFile], seen: dict[str, Seen], since: date | None, until: date | None
) -> tuple[list[LandedFile], list[LandedFile]]:
    """The files a run over the days ``[since, until)`` reads, and which of them are late.

    * undated files, and files dated in ``[since, until)``: always (the manifest skips
      the ones loaded, after comparing their checksum);
    * files dated before ``since`` that the manifest has not seen loaded as they are now
      (a new uri, a failed one, or, for one loaded truncated or within
      :data:`RECHECK_DAYS`, a size that changed since), back to the oldest day the
      manifest holds for the source: **late** files. Older ones are history, read by a
      ``full`` run or a backfill of their days;
    * files dated on or after ``until``: never.
    """
    dated = [f.first_day for f in files if f.uri in seen and f.first_day is not None]  # also months
    oldest = min(dated + [d for d in [oldest_day(seen)] if d is not None], default=None)
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
    if not (seen.truncated or seen.recent):
        return False
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
