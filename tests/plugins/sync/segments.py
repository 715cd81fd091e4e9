"""Test input for the sync: a ``marts.segment_members``-shaped table built in a fresh
database (as dbt would build it: a new table each time, so a new OID), published the way
``transform_dbt`` publishes it, and sync specs built from dicts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from retention import warehouse
from retention.sync import publication
from retention.sync.config import SyncSpec

AS_OF = date(2024, 6, 30)
COLUMNS = ("member_key", "segment_key", "account_id", "user_id", "reason", "email", "name",
           "account_name", "plan", "mrr", "health_score", "tier", "as_of_date")


def member(account: str, segment: str = "health_dropped", **fields: Any) -> dict[str, Any]:
    n = int("".join(c for c in account if c.isdigit()) or 0)
    row = {
        "segment_key": segment, "account_id": account, "user_id": None, "reason": "test",
        "email": f"owner{n}@example.com", "name": f"Owner {n}", "account_name": f"Account {n}",
        "plan": "pro", "mrr": 100 + n, "health_score": 40.5, "tier": "red", "as_of_date": AS_OF,
    }
    row.update(fields)
    row.setdefault("member_key", f"{segment}:{account}:{row['user_id'] or ''}")
    return row


def accounts(n: int, segment: str = "health_dropped", start: int = 1) -> list[dict[str, Any]]:
    return [member(f"acct_{i:05d}", segment) for i in range(start, start + n)]


def build(url: str, rows: Iterable[Mapping[str, Any]], *, publish: bool = True, as_of: date = AS_OF,
          table: str = "marts.segment_members") -> None:
    """(Re)build ``table`` with ``rows`` (a new table, as dbt does), then publish the marts."""
    with warehouse.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists marts")
        conn.execute(f"drop table if exists {table}")
        conn.execute(f"""create table {table} (
            member_key text primary key, segment_key text not null, account_id text not null, user_id text,
            reason text not null, email text, name text, account_name text, plan text,
            mrr numeric(14, 2), health_score numeric(5, 1), tier text, as_of_date date)""")
        with conn.cursor().copy(f"copy {table} ({', '.join(COLUMNS)}) from stdin") as copy:
            for row in rows:
                copy.write_row([row[c] for c in COLUMNS])
        if publish:
            publication.record(conn, as_of, "test")


def spec(name: str = "accts", tmp: Path | None = None, **overrides: Any) -> SyncSpec:
    raw: dict[str, Any] = {
        "name": name,
        "source": {"segments": ["health_dropped", "inactive"]},
        "destination": {"kind": "files", "options": {"dir": str(tmp) if tmp else "exports"}},
        "identity": {"column": "account_id", "kind": "account_id"},
        "mapping": {"account_id": "account_id", "plan": "plan", "mrr": "mrr", "tier": "tier"},
        "mode": "membership",
        "remove_exits": True,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return SyncSpec.model_validate(raw)


def write_config(path: Path, *specs: SyncSpec) -> Path:
    path.write_text(yaml.safe_dump({"syncs": [json.loads(s.model_dump_json()) for s in specs]}))
    return path


def change_files(root: Path, sync: str) -> list[dict[str, Any]]:
    """Every change written for ``sync`` (all JSONL change files, in name order)."""
    out: list[dict[str, Any]] = []
    for path in sorted((root / sync / "changes").glob("*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines()]
    return out


def table(url: str, query: str, *params: Any) -> list[tuple]:
    with warehouse.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


_RUN_SYNC = ("import json, sys; from retention.sync import engine; from retention.sync.config import SyncSpec;"
             "engine.run_sync(sys.argv[1], SyncSpec.model_validate(json.loads(sys.argv[2])))")


def run_killed_when(url: str, sync: SyncSpec, reached: Callable[[], bool], what: str, timeout: float = 90) -> None:
    """Run ``sync`` in a child process (this environment, its connections included) and
    SIGKILL it, with its process group, as soon as ``reached()`` is true; fails naming
    ``what`` if the child ends first or ``timeout`` seconds pass."""
    child = subprocess.Popen([sys.executable, "-c", _RUN_SYNC, url, sync.model_dump_json()], env=os.environ.copy(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not reached():
            assert child.poll() is None and time.monotonic() < deadline, f"the sync never {what}"
            time.sleep(0.05)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
