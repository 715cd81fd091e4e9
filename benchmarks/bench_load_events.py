"""Event-file loading speed and memory: our loader vs ``psql \\copy`` vs pandas ``to_sql``.

    python -m benchmarks.bench_load_events [--sizes 100000,300000,1000000] [--to-sql-rows 20000]

For each size, one Segment gzip JSON Lines file (the simulator's message shape: 98%
track, 1% identify, 1% group) is loaded into a fresh database three ways, in the same run:

* **ours**: ``retention.load.loader.load_source`` in a child process (stream-decompress,
  validate, COPY straight into ``raw.events``, dedup through ``raw.event_ids``,
  manifest); peak RSS is the child's ``VmHWM`` (Linux), client CPU its user + system time
  (on a shared 2-core machine the client's CPU competes with the server's);
* **psql \\copy**: the same rows pre-flattened to CSV (same columns) copied straight into
  ``raw.events`` / ``raw.identifies`` / ``raw.groups`` (same tables, same indexes, the
  partition created beforehand) with pgserver's bundled ``psql``; the flattening is
  not timed;
* **to_sql**: pandas ``DataFrame.to_sql(method="multi")`` through SQLAlchemy
  (``postgresql+psycopg``) on a subsample, extrapolated by rows/s.

Results print as a Markdown table; docs/ingestion.md records a run.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from retention import warehouse
from retention.load import schema

DAY = datetime(2024, 11, 17, tzinfo=UTC)
TRAIT_TABLES = {"identify": "identifies", "group": "groups"}
EVENTS = ("Report Created", "Dashboard Viewed", "Signed In", "Campaign Sent", "Comment Added", "Export Downloaded")
CHILD = """
import json, resource, sys, time
from retention import warehouse
from retention.load.loader import load_source
url, root = sys.argv[1], sys.argv[2]
with warehouse.connect(url, autocommit=True) as conn:
    started = time.perf_counter()
    counts = load_source(conn, "events", root).counts()
    seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
# VmHWM: this process image's peak RSS. ru_maxrss survives exec on Linux, so it can
# report the (bigger) parent the child was forked from.
with open("/proc/self/status") as status:
    hwm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "rows": counts["rows_loaded"], "rss_mb": hwm_kb / 1024,
                  "cpu_s": usage.ru_utime + usage.ru_stime}))
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
    url = warehouse.create_database(server_url, name)
    with warehouse.connect(url, autocommit=True) as conn:
        schema.ensure_schema(conn)
    return url


def run_ours(url: str, root: Path) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "-c", CHILD, url, str(root)], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def psql_bin() -> str:
    import pgserver

    return str(Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql")


def run_psql(url: str, csvs: dict[str, Path]) -> float:
    with warehouse.connect(url, autocommit=True) as conn:
        with conn.transaction():
            schema.ensure_month_partitions(conn, {DAY.date().replace(day=1)})
    columns = {
        "events": "message_id, type, event, user_id, anonymous_id, account_id, timestamp, received_at, properties, context, _file_id, _line",
        "identifies": "message_id, user_id, account_id, timestamp, traits, _file_id, _line",
        "groups": "message_id, user_id, account_id, timestamp, traits, _file_id, _line",
    }
    cmd = [psql_bin(), warehouse.parse_url(url).conninfo(), "-q", "-v", "ON_ERROR_STOP=1", "-c", "begin"]
    for table, path in csvs.items():
        cmd += ["-c", f"\\copy raw.{table} ({columns[table]}) from '{path}' with (format csv)"]
    cmd += ["-c", "commit"]
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - started


def run_to_sql(url: str, csv_path: Path, rows: int) -> tuple[int, float]:
    import pandas as pd
    from sqlalchemy import create_engine
    from sqlalchemy.dialects.postgresql import JSONB

    cols = ["message_id", "type", "event", "user_id", "anonymous_id", "account_id", "timestamp", "received_at", "properties", "context", "_file_id", "_line"]
    frame = pd.read_csv(csv_path, names=cols, nrows=rows, keep_default_na=False)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["received_at"] = pd.to_datetime(frame["received_at"], utc=True)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--to-sql-rows", type=int, default=20_000)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    server = warehouse.resolve_url()
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
                psql_s = run_psql(psql_db, csvs)
                sql_rows, sql_s = run_to_sql(psql_db, csvs["events"], min(rows, args.to_sql_rows))
            finally:
                for db in (ours_db, psql_db):
                    warehouse.drop_database(db)
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
