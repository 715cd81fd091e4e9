"""What a daily run's look at the landing location costs: the run's listing against a
whole listing of the location.

    python -m benchmarks.bench_listing --data /work/data/large-seed0 [--repeat 5]
    python -m benchmarks.bench_listing [--days 730] [--files-per-day 24]   # synthetic, no preset needed

Both sides see the same landing location and the same manifest, in which every file is
loaded (none truncated, none loaded within ``RECHECK_DAYS``), for a daily run over the
last day with the default two days of look-back:

* **whole listing** (the baseline; what a run did before issue 14's item 4): every file
  under ``events/`` listed (``rglob``), and the size of every loaded file older than
  the run's days looked up, to find files that changed or landed late;
* **the run's listing** (``retention.load.landing.run_listing`` + ``discover``, what
  ``load_source`` does): day folders by name; the run's days listed; every older day
  folder the manifest's history holds read by name only, the files the manifest holds
  as loaded left out without a look.

Synthetic mode makes ``--days`` day folders of ``--files-per-day`` empty ``.gz`` files
(Segment writes a file per hour or more per source). Times are the best of
``--repeat``, in one run; the ratio is what counts on a shared machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from retention.load.landing import Seen, discover, folder_day, run_listing, select_files

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def synthetic(root: Path, days: int, per_day: int) -> None:
    first = date(2024, 1, 1)
    for n in range(days):
        day = first + timedelta(days=n)
        ms = int((datetime(day.year, day.month, day.day, tzinfo=UTC) - EPOCH).total_seconds() * 1000)
        folder = root / "events" / "segment-logs" / "web" / str(ms)
        folder.mkdir(parents=True)
        for i in range(per_day):
            (folder / f"{ms + i * 3_600_000}.f{i:03d}.gz").touch()


def whole_listing(root: Path, since: date) -> int:
    """The baseline: every file listed, the size of every older loaded one looked up."""
    files = [p for p in (root / "events").rglob("*") if p.is_file()]
    for path in files:
        day = folder_day(path.parent.name)
        if day is not None and day < since:
            path.stat()
    return len(files)


def runs_listing(root: Path, seen: dict[str, Seen], since: date, until: date) -> int:
    listing = run_listing(seen, since, until)
    files, _late = select_files(discover(str(root), "events", listing.skip_day, listing.settled), seen, since, until)
    return len(files)


def best(fn, repeat: int) -> tuple[float, int]:
    times, result = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def measure(root: Path, repeat: int) -> None:
    files = discover(str(root), "events")
    seen = {f.uri: Seen(f.path.stat().st_size, "loaded", False, False) for f in files}
    last = max(f.first_day for f in files if f.first_day is not None)
    since, until = last - timedelta(days=2), last + timedelta(days=1)
    base_s, listed = best(lambda: whole_listing(root, since), repeat)
    ours_s, read = best(lambda: runs_listing(root, seen, since, until), repeat)
    print(f"\n{len(files)} event files in {len({f.first_day for f in files})} day folders; a daily run over {last} "
          f"(look-back 2 days); best of {repeat}\n")
    print("| variant | ms | files it returns |\n|---|---:|---:|")
    print(f"| whole listing + size of each older file (baseline) | {base_s * 1000:.1f} | {listed} |")
    print(f"| the run's listing (`run_listing` + `discover`) | {ours_s * 1000:.1f} | {read} |")
    print(f"\nbaseline / run's listing: **{base_s / ours_s:.1f}x**")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a simulated company (e.g. the large preset)")
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--files-per-day", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if args.data:
        measure(args.data, args.repeat)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_listing_") as tmp:
        synthetic(Path(tmp), args.days, args.files_per_day)
        measure(Path(tmp), args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
