"""Landed files read from ``s3://``: a local S3 (moto's server, its own process, a free
port) holds a simulated company's event files; ``retention load`` reads them through the
Amazon provider's filesystem (s3fs) with the credentials and endpoint of an Airflow
connection named in the URL, is killed mid-load and resumed, and ends with exactly what a
load of the same files from a local folder gives."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from retention import warehouse
from support.databases import create_database

BIN = Path(sys.executable).parent
BUCKET = "landing"
CONN_ID = "aws_landing"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    import httpx

    port = _free_port()
    proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "moto_server exited at start"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _land(endpoint: str, company: Path, prefix: str, local: Path, n_files: int) -> int:
    """Put the company's first ``n_files`` event files in the bucket and in ``local``."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    files = sorted(p for p in (company / "events").rglob("*") if p.is_file())[:n_files]
    for p in files:
        key = p.relative_to(company)
        s3.upload_file(str(p), BUCKET, f"{prefix}/{key}")
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        (local / key).write_bytes(p.read_bytes())
    return len(files)


def _load_cmd(path: str) -> list[str]:
    return [str(BIN / "retention"), "load", "--source", "events", "--path", path, "--workers", "1"]


def _state(url: str) -> tuple[int, int, int]:
    """(files in the manifest, rows in raw.events, distinct message ids)."""
    with warehouse.connect(url, autocommit=True) as conn:
        if conn.execute("select to_regclass('raw.load_manifest')").fetchone()[0] is None:
            return 0, 0, 0
        files = conn.execute("select count(*) from raw.load_manifest where source = 'events'").fetchone()[0]
        rows, ids = conn.execute("select count(*), count(distinct message_id) from raw.events").fetchone()
    return files, rows, ids


@pytest.mark.slow
def test_a_load_from_s3_killed_and_resumed_matches_a_local_load(s3_endpoint, warehouse_server_url, tmp_path):
    from retention.load.loader import load_source
    from retention.simulate.config import SimulationConfig
    from retention.simulate.engine import simulate

    company, local = tmp_path / "company", tmp_path / "local"
    simulate(SimulationConfig(preset="tiny", seed=5, out=company))
    n_files = _land(s3_endpoint, company, "acme", local, n_files=40)
    s3_db = create_database(warehouse_server_url, "t_s3_landing")
    local_db = create_database(warehouse_server_url, "t_s3_landing_local")
    connection = {"conn_type": "aws", "login": "testing", "password": "testing",
                  "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}
    env = {**os.environ, "WAREHOUSE_URL": s3_db, f"AIRFLOW_CONN_{CONN_ID.upper()}": orjson.dumps(connection).decode()}
    s3_uri = f"s3://{CONN_ID}@{BUCKET}/acme"

    first = subprocess.Popen(_load_cmd(s3_uri), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _state(s3_db)[0] < 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # mid-load: one file's transaction at most is cut
    first.wait()
    _, stderr = first.communicate()
    killed_at = _state(s3_db)[0]
    assert first.returncode == -signal.SIGKILL, stderr.decode()[-3000:]
    assert 3 <= killed_at < n_files, (killed_at, n_files)

    resumed = subprocess.run(_load_cmd(s3_uri), env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    counts = orjson.loads(resumed.stdout[resumed.stdout.rfind("\n{\n") + 1:])  # the JSON after the log lines
    assert counts["files_loaded"] == n_files - killed_at, counts  # only what the killed run had not committed

    with warehouse.connect(local_db, autocommit=True) as conn:  # the reference: the same files, local
        load_source(conn, "events", str(local))
    files, rows, ids = _state(s3_db)
    assert (files, rows, ids) == _state(local_db) and files == n_files and rows == ids > 100
    with psycopg.connect(s3_db) as conn:
        uris = [r[0] for r in conn.execute("select uri from raw.load_manifest order by uri limit 1")]
    assert uris[0].startswith(f"s3://{CONN_ID}@{BUCKET}/acme/events/")
