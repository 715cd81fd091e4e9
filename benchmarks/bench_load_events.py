"""Event-file loading speed and memory: our loader vs ``psql \\copy`` vs pandas ``to_sql``.

    python -m benchmarks.bench_load_events --data /work/data/large-seed0 [--months 6] [--repeat 2] [--workers 2]
        [--variants ours_par,psql_seq,psql_keys_seq] [--rss-days 1,10,60]
    python -m benchmarks.bench_load_events [--sizes 100000,300000,1000000] [--to-sql-rows 20000]

**Preset mode** (``--data DIR``, a simulated company such as the ``large`` preset): the
event files of the last ``--months`` months of the company (0: all) are loaded, in
the same run, repeated ``--repeat`` times with the order of the variants alternated:

* **ours, sequential**: ``retention.load.loader.load_source(workers=1)`` in a child
  process (one transaction per file: stream-decompress, validate, COPY into
  ``raw.events``, dedup through ``raw.event_ids``, manifest); client CPU is the child's
  user + system time;
* **psql \\copy, sequential**: the rows our loader kept (exported from its database
  with ``COPY ... TO STDOUT``, i.e. exactly COPY input, not timed) copied by one
  ``psql`` into ``raw.events`` / ``raw.identifies`` / ``raw.groups`` of a fresh database
  (same DDL, same indexes, the month partitions created beforehand) in one transaction;
* **psql \\copy with the dedup keys, sequential**: the same, plus the ``raw.event_ids``
  rows our loader kept (the ``messageId`` primary key its exact dedup maintains), in the
  same transaction: the tables our loader writes, so the cost of the key is on both sides;
* **ours, parallel**: the same with ``workers=--workers`` (files on that many connections);
* **psql \\copy, parallel**: the same rows split by file into ``--workers`` parts, copied
  by that many concurrent ``psql`` processes;
* **to_sql**: pandas ``DataFrame.to_sql(method="multi")`` on the first ``--to-sql-rows``
  exported track rows;
* **peak RSS** (``VmHWM`` of the loading child) for single files of growing size, made
  by concatenating the gzip files of 1, 10, ... consecutive days (multi-member gzip).

**Synthetic mode** (no ``--data``): one generated gzip Segment file per size (98% track,
1% identify, 1% group, simulator message shape), loaded by ours (sequential), by
``psql \\copy`` of the same rows pre-flattened to CSV, and by ``to_sql``.

Results print as Markdown tables; docs/ingestion.md records a run.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from collections.abc import Callable
from pathlib import Path

import orjson

from retention import warehouse
from retention.load import schema
from retention.load.landing import LandedFile, discover
from tests.support.databases import create_database, drop_database

DAY = datetime(2024, 11, 17, tzinfo=UTC)
TRAIT_TABLES = {"identify": "identifies", "group": "groups"}
EVENTS = ("Report Created", "Dashboard Viewed", "Signed In", "Campaign Sent", "Comment Added", "Export Downloaded")
CHILD = """
import json, resource, sys, time
from datetime import date
from retention import warehouse
from retention.load.loader import load_source
url, root, opts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
since, until = (date.fromisoformat(opts[k]) if opts.get(k) else None for k in ("since", "until"))
with warehouse.connect(url, autocommit=True) as conn:
    started = time.perf_counter()
    counts = load_source(conn, "events", root, since=since, until=until, workers=opts.get("workers", 1)).counts()
    seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
# VmHWM: this process image's peak RSS. ru_maxrss survives exec on Linux, so it can
# report the (bigger) parent the child was forked from.
with open("/proc/self/status") as status:
    hwm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "rows": counts["rows_loaded"], "files": counts["files_loaded"],
                  "duplicates": counts["duplicates"], "quarantined": sum(counts["quarantined"].values()),
                  "rss_mb": hwm_kb / 1024, "cpu_s": usage.ru_utime + usage.ru_stime}))
"""


def _message(rng: random.Random, i: int) -> dict:
    account = rng.randrange(2000)
    ts = DAY + timedelta(seconds=rng.randrange(86_400), milliseconds=rng.randrange(1000))
    kind = "track" if i % 100 > 1 else ("identify" if i % 100 == 0 else "group")
    msg = {
        "anonymousId": None,
        "context": {"groupId": f"acc_{account:06d}", "library": {"name": "analytics-python", "version": "2.3.2"}},
        "messageId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "receivedAt": (ts + timedelta(milliseconds=900)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "sentAt": (ts + timedelta(milliseconds=400)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "type": kind,
        "userId": f"usr_{account:06d}_{rng.randrange(8):02d}",
        "version": 2,
    }
    if kind == "track":
        msg["event"] = rng.choice(EVENTS)
        msg["properties"] = {"report_type": rng.choice(("funnel", "retention")), "recipients": rng.randrange(500)}
    else:
        msg["traits"] = {"plan": "growth", "seats": rng.randrange(1, 40)}
        if kind == "group":
            msg["groupId"] = msg["context"]["groupId"]
    return msg


def generate(folder: Path, rows: int) -> tuple[Path, dict[str, Path]]:
    """The gzip event file (Segment layout under ``folder``) and flattened CSVs per table."""
    rng = random.Random(rows)
    day_ms = int(DAY.timestamp() * 1000)
    gz_path = folder / "events" / "segment-logs" / "src_bench" / str(day_ms) / f"{day_ms + 1}.bench.gz"
    gz_path.parent.mkdir(parents=True, exist_ok=True)
    csvs = {t: folder / f"{t}.csv" for t in ("events", "identifies", "groups")}
    handles = {t: p.open("w", newline="") for t, p in csvs.items()}
    writers = {t: csv.writer(h) for t, h in handles.items()}
    with gzip.open(gz_path, "wb", compresslevel=3) as gz:
        for i in range(rows):
            msg = _message(rng, i)
            gz.write(orjson.dumps(msg, option=orjson.OPT_SORT_KEYS) + b"\n")
            line = i + 1
            if msg["type"] == "track":
                writers["events"].writerow([
                    msg["messageId"], "track", msg["event"], msg["userId"], "", msg["context"]["groupId"],
                    msg["timestamp"], msg["receivedAt"], json.dumps(msg["properties"]), json.dumps(msg["context"]), 1, line,
                ])
            else:
                writers[TRAIT_TABLES[msg["type"]]].writerow([
                    msg["messageId"], msg["userId"], msg["context"]["groupId"], msg["timestamp"],
                    json.dumps(msg["traits"]), 1, line,
                ])
    for h in handles.values():
        h.close()
    return gz_path, csvs


def _fresh(server_url: str, name: str) -> str:
    url = create_database(server_url, name)
    with warehouse.connect(url, autocommit=True) as conn:
        schema.ensure_schema(conn)
    return url


def run_ours(url: str, root: Path, **opts: object) -> dict:
    """Our loader in a child process; ``opts``: since, until (ISO days), workers."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(root), json.dumps(opts)], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def psql_bin() -> str:
    import pgserver

    return str(Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql")


COLUMNS = {
    "events": "message_id, type, event, user_id, anonymous_id, account_id, timestamp, received_at, properties, context, _file_id, _line",
    "identifies": "message_id, user_id, account_id, timestamp, traits, _file_id, _line",
    "groups": "message_id, user_id, account_id, timestamp, traits, _file_id, _line",
    "event_ids": "message_id, type, timestamp, _line, account_id, _file_id",
}
VARIANTS = ("ours_seq", "psql_seq", "psql_keys_seq", "ours_par", "psql_par")
ROW_TABLES = ("events", "identifies", "groups")  # what plain ``psql \\copy`` copies


def run_psql(
    url: str, parts: list[dict[str, Path]], months: set[date], fmt: str, tables: tuple[str, ...] = ROW_TABLES
) -> tuple[float, float]:
    """``psql \\copy`` of each part's files of ``tables`` (table -> file), the parts on
    concurrent connections, each part in one transaction: (seconds until the last one
    commits, CPU seconds of the psql processes)."""
    with warehouse.connect(url, autocommit=True) as conn:
        schema.ensure_month_partitions(conn, months)
    commands = []
    for part in parts:
        cmd = [psql_bin(), warehouse.parse_url(url).conninfo(), "-q", "-v", "ON_ERROR_STOP=1", "-c", "begin"]
        for table, path in part.items():
            if table not in tables:
                continue
            cmd += ["-c", f"\\copy raw.{table} ({COLUMNS[table]}) from '{path}' with (format {fmt})"]
        commands.append(cmd + ["-c", "commit"])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    procs = [subprocess.Popen(cmd) for cmd in commands]
    if any(proc.wait() != 0 for proc in procs):
        raise RuntimeError("psql \\copy failed")
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def run_to_sql(url: str, csv_path: Path, rows: int) -> tuple[int, float]:
    import pandas as pd
    from sqlalchemy import create_engine
    from sqlalchemy.dialects.postgresql import JSONB

    cols = ["message_id", "type", "event", "user_id", "anonymous_id", "account_id", "timestamp", "received_at", "properties", "context", "_file_id", "_line"]
    frame = pd.read_csv(csv_path, names=cols, nrows=rows, keep_default_na=False)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    frame["received_at"] = pd.to_datetime(frame["received_at"], utc=True, format="ISO8601")
    for col in ("properties", "context"):  # jsonb: to_sql serialises dicts through the JSONB type
        frame[col] = frame[col].map(json.loads)
    engine = create_engine(warehouse.sqlalchemy_url(url))
    started = time.perf_counter()
    frame.to_sql("events", engine, schema="raw", if_exists="append", index=False, method="multi", chunksize=1000,
        dtype={"properties": JSONB, "context": JSONB},
    )
    seconds = time.perf_counter() - started
    engine.dispose()
    return len(frame), seconds


# --- preset mode --------------------------------------------------------------------


def server_cpu(url: str) -> Callable[[], float] | None:
    """A clock of the CPU seconds the Postgres server behind ``url`` has used, when it
    runs on this machine: its processes' user + system time, plus that of the ended
    ones (backends of closed connections), which the postmaster collects (``cutime``)."""
    with warehouse.connect(url) as conn:
        pidfile = Path(conn.execute("show data_directory").fetchone()[0]) / "postmaster.pid"
    try:
        postmaster = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")

    def stat(pid: str) -> list[str] | None:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            return None

    def seconds() -> float:
        time.sleep(0.5)  # let the postmaster collect backends that just ended
        total = 0
        for entry in Path("/proc").iterdir():
            fields = stat(entry.name) if entry.name.isdigit() else None
            if fields and (int(fields[1]) == postmaster or int(entry.name) == postmaster):
                total += int(fields[11]) + int(fields[12])
                if int(entry.name) == postmaster:
                    total += int(fields[13]) + int(fields[14])
        return total / tick

    return seconds


def _months_of(files: list[LandedFile]) -> list[date]:
    return sorted({f.first_day.replace(day=1) for f in files if f.first_day is not None})


def select_files(root: Path, months: int) -> tuple[list[LandedFile], date | None, date | None]:
    """The event files of the last ``months`` months (0: all) and their [since, until)."""
    files = discover(str(root), "events")
    if not months:
        return files, None, None
    since = _months_of(files)[-months]
    return [f for f in files if f.first_day is not None and f.first_day >= since], since, None


def export_rows(url: str, folder: Path, parts: int, to_sql_rows: int) -> tuple[list[dict[str, Path]], Path]:
    """The rows ``url``'s loader kept, as COPY text, split by file into ``parts`` parts
    (``part{i}/<table>.copy``, in file/line order), and the first track rows as CSV."""
    result: list[dict[str, Path]] = []
    with warehouse.connect(url, autocommit=True) as conn:
        for i in range(parts):
            (folder / f"part{i}").mkdir(parents=True, exist_ok=True)
            part = {}
            for table, cols in COLUMNS.items():
                part[table] = folder / f"part{i}" / f"{table}.copy"
                query = f"select {cols} from raw.{table} where _file_id % {parts} = {i} order by _file_id, _line"
                with part[table].open("wb") as out, conn.cursor().copy(f"copy ({query}) to stdout") as copy:
                    for data in copy:
                        out.write(data)
            result.append(part)
        sample = folder / "to_sql_sample.csv"
        with sample.open("wb") as out, conn.cursor().copy(
            f"copy (select {COLUMNS['events']} from raw.events order by _file_id, _line limit {to_sql_rows}) "
            "to stdout (format csv)"
        ) as copy:
            for data in copy:
                out.write(data)
    return result, sample


def concatenated_days(files: list[LandedFile], days: int, folder: Path) -> Path:
    """One multi-member gzip file of the files of the first ``days`` days of ``files``."""
    first = sorted({f.first_day for f in files if f.first_day is not None})[:days]
    path = folder / f"rss_{days}d" / "events" / f"days_{days}.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for f in files:
            if f.first_day in first:
                out.write(Path(f.path).read_bytes())
    return path


def bench_preset(args: argparse.Namespace, server: str) -> int:
    root = Path(args.data)
    files, since, until = select_files(root, args.months)
    months = set(_months_of(files))
    window = {"since": since.isoformat() if since else None, "until": until}
    total_mb = sum(Path(f.path).stat().st_size for f in files) / 1e6
    print(f"# {root}: {len(files)} event files, {total_mb:.0f} MB gzip, months {min(months)}..{max(months)}", flush=True)
    runs: dict[str, list[dict]] = {k: [] for k in VARIANTS}
    load_avg = [os.getloadavg()[0]]
    clock = server_cpu(server)
    rows = 0
    with tempfile.TemporaryDirectory(prefix="bench_load_events_") as tmp:
        folder = Path(tmp)
        parts: list[dict[str, Path]] = []
        sample = folder / "none"
        for rep in range(args.repeat):
            variants = list(args.variants)
            if rep % 2:
                variants.reverse()
            if not parts:  # the rows to copy come from a load by ours: do that first
                first = next(v for v in variants if v.startswith("ours"))
                variants.remove(first)
                variants.insert(0, first)
            for variant in variants:
                url = _fresh(server, f"bench_{variant}")
                cpu_before = clock() if clock else 0.0
                try:
                    if variant.startswith("ours"):
                        workers = 1 if variant == "ours_seq" else args.workers
                        res = run_ours(url, root, workers=workers, **window)
                        res["server_cpu_s"] = clock() - cpu_before if clock else None
                        rows = rows or res["rows"]
                        assert res["rows"] == rows and res["files"] == len(files), res
                        if not parts:
                            parts, sample = export_rows(url, folder / "rows", args.workers, args.to_sql_rows)
                            (folder / "rows" / "all").mkdir()
                            whole = {}
                            for table in COLUMNS:
                                whole[table] = folder / "rows" / "all" / f"{table}.copy"
                                with whole[table].open("wb") as out:
                                    for part in parts:
                                        out.write(part[table].read_bytes())
                    else:
                        chosen = parts if variant == "psql_par" else [whole]
                        tables = tuple(COLUMNS) if variant == "psql_keys_seq" else ROW_TABLES
                        seconds, cpu_s = run_psql(url, chosen, months, "text", tables)
                        res = {"seconds": seconds, "cpu_s": cpu_s, "server_cpu_s": clock() - cpu_before if clock else None}
                finally:
                    drop_database(url)
                res["load_avg"] = os.getloadavg()[0]
                load_avg.append(res["load_avg"])
                runs[variant].append(res)
                print(json.dumps({"repeat": rep, "variant": variant, **res}), flush=True)
        url = _fresh(server, "bench_to_sql")
        try:
            with warehouse.connect(url, autocommit=True) as conn:
                schema.ensure_month_partitions(conn, months)
            sql_rows, sql_s = run_to_sql(url, sample, args.to_sql_rows)
        finally:
            drop_database(url)
        rss = []
        for days in args.rss_days:
            path = concatenated_days(files, days, folder)
            url = _fresh(server, "bench_rss")
            try:
                res = run_ours(url, path.parent.parent)
            finally:
                drop_database(url)
            rss.append({"days": days, "rows": res["rows"], "gzip_mb": path.stat().st_size / 1e6, **res})
            print(json.dumps(rss[-1]), flush=True)
            path.unlink()

    def best(variant: str) -> float:
        return min(r["seconds"] for r in runs[variant])

    def cell(variant: str) -> str:
        secs = sorted(r["seconds"] for r in runs[variant])
        return " / ".join(f"{s:.1f}" for s in secs)

    print(f"\n{rows:,} rows kept of {len(files)} files; load average {min(load_avg):.1f}-{max(load_avg):.1f}; "
          f"{args.repeat} repeats, seconds per repeat (sorted), ratios from the best of each\n")
    print("| variant | seconds | rows/s (best) | client CPU s | server CPU s | CPU µs/row (client + server) |")
    print("|---|---:|---:|---:|---:|---:|")
    names = {"ours_seq": "ours, 1 worker", "psql_seq": "psql \\copy, 1 connection",
             "psql_keys_seq": "psql \\copy + the dedup keys (raw.event_ids), 1 connection",
             "ours_par": f"ours, {args.workers} workers", "psql_par": f"psql \\copy, {args.workers} connections"}
    for variant, name in names.items():
        if not runs[variant]:
            continue
        client = "/".join(f"{r['cpu_s']:.0f}" for r in runs[variant])
        srv = "/".join("n/a" if r["server_cpu_s"] is None else f"{r['server_cpu_s']:.0f}" for r in runs[variant])
        per_row = min((r["cpu_s"] + (r["server_cpu_s"] or 0)) / rows * 1e6 for r in runs[variant])
        print(f"| {name} | {cell(variant)} | {rows / best(variant):,.0f} | {client} | {srv} | {per_row:.1f} |")
    print(f"| to_sql (first {sql_rows:,} track rows) | {sql_s:.1f} | {sql_rows / sql_s:,.0f} | |")
    print("\n| ratio | value |")
    print("|---|---:|")
    # The last pair is psql against itself: what writing the dedup key costs any single
    # writer, i.e. the ceiling exact dedup puts on a one-connection load.
    ratios = (
        ("ours_seq", "psql_seq"), ("ours_par", "psql_seq"), ("ours_par", "psql_par"),
        ("ours_seq", "psql_keys_seq"), ("ours_par", "psql_keys_seq"), ("psql_keys_seq", "psql_seq"),
    )
    for subject, baseline in ratios:
        if runs[subject] and runs[baseline]:
            print(f"| {names[subject]} / {names[baseline]} | {best(baseline) / best(subject):.2f}x |")
    ours = "ours_seq" if runs["ours_seq"] else "ours_par"
    print(f"| {names[ours]} / to_sql | {(rows / best(ours)) / (sql_rows / sql_s):.1f}x |")
    print("\n| file (consecutive days, one gzip) | rows | gzip MB | peak RSS MB | rows/s |")
    print("|---|---:|---:|---:|---:|")
    for r in rss:
        print(f"| {r['days']} | {r['rows']:,} | {r['gzip_mb']:.1f} | {r['rss_mb']:.0f} | {r['rows'] / r['seconds']:,.0f} |")
    return 0


def _variants(value: str) -> list[str]:
    chosen = [v for v in value.split(",") if v]
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if not any(v.startswith("ours") for v in chosen):
        raise argparse.ArgumentTypeError("include ours_seq or ours_par: the rows psql copies come from our load")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--to-sql-rows", type=int, default=20_000)
    parser.add_argument("--data", help="a simulated company folder (preset mode), e.g. /work/data/large-seed0")
    parser.add_argument("--months", type=int, default=6, help="preset mode: the last N months of events (0: all)")
    parser.add_argument("--repeat", type=int, default=2, help="preset mode: runs of each variant")
    parser.add_argument("--workers", type=int, default=2, help="preset mode: workers / psql connections in parallel")
    parser.add_argument("--variants", type=_variants, default=list(VARIANTS),
                        help=f"preset mode: the variants to run, of {','.join(VARIANTS)} (at least one ours_*)")
    parser.add_argument("--rss-days", type=lambda v: [int(d) for d in v.split(",") if d], default=[1, 10, 100],
                        help="preset mode: peak RSS for one file of this many days of events")
    args = parser.parse_args(argv)
    server = warehouse.resolve_url()
    if args.data:
        return bench_preset(args, server)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_load_events_") as tmp:
        for rows in sizes:
            folder = Path(tmp) / str(rows)
            gz_path, csvs = generate(folder, rows)
            ours_db = _fresh(server, f"bench_ours_{rows}")
            psql_db = _fresh(server, f"bench_psql_{rows}")
            try:
                ours = run_ours(ours_db, folder)
                assert ours["rows"] == rows, f"loaded {ours['rows']} of {rows} rows"
                psql_s, _ = run_psql(psql_db, [csvs], {DAY.date().replace(day=1)}, "csv")
                sql_rows, sql_s = run_to_sql(psql_db, csvs["events"], min(rows, args.to_sql_rows))
            finally:
                for db in (ours_db, psql_db):
                    drop_database(db)
            results.append({
                "rows": rows,
                "file_mb": gz_path.stat().st_size / 1e6,
                "ours_rows_s": rows / ours["seconds"],
                "psql_rows_s": rows / psql_s,
                "to_sql_rows_s": sql_rows / sql_s,
                "ours_rss_mb": ours["rss_mb"],
                "ours_cpu_s": ours["cpu_s"],
                "psql_s": psql_s,
            })
            print(json.dumps(results[-1]), flush=True)

    print("\n| rows | gzip MB | ours rows/s | psql \\copy rows/s | to_sql rows/s | ours / psql | ours / to_sql "
          "| ours peak RSS MB | ours client CPU s | psql \\copy s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['rows']:,} | {r['file_mb']:.1f} | {r['ours_rows_s']:,.0f} | {r['psql_rows_s']:,.0f} | "
            f"{r['to_sql_rows_s']:,.0f} | {r['ours_rows_s'] / r['psql_rows_s']:.2f}x | "
            f"{r['ours_rows_s'] / r['to_sql_rows_s']:.1f}x | {r['ours_rss_mb']:.0f} | {r['ours_cpu_s']:.1f} | {r['psql_s']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
