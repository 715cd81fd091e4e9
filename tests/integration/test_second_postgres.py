"""The pipeline on a second Postgres major version, reached only through ``WAREHOUSE_URL``.

Every other test runs on the embedded Postgres 16. This one starts Debian's Postgres (15
on bookworm; ``.ci/run`` installs it) with ``initdb`` + ``pg_ctl`` in a temp directory on a
free 127.0.0.1 port, with a password full of URL-hostile characters, and runs the
pipeline's own commands against it: Stripe ingestion from the local Stripe API, the
event/NPS/support load, ``dbt build`` (every model, unit test and data test) and the raw
and marts quality gates. The server is stopped and removed afterwards.

Outside CI the test skips when no Postgres binaries other than the embedded version are
installed; with ``CI=true`` it fails instead.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from retention import warehouse

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "p@ss/w#rd:%?&= 'x\\"  # every character that breaks a naive URL or conninfo
USER = "retention"
DBNAME = "warehouse"
STRIPE_KEY = "sk_test_second_postgres"
BINDIR_ENV = "RETENTION_TEST_PG_BINDIR"  # a Postgres bin directory to use instead of /usr/lib/postgresql/*/bin


def _major(bindir: Path) -> int:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"\(PostgreSQL\) (\d+)", out).group(1))


def _candidate_bindirs() -> list[Path]:
    if os.environ.get(BINDIR_ENV):
        return [Path(os.environ[BINDIR_ENV])]
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    return sorted(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class SecondPostgres:
    url: str
    major: int


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run this test (.ci/run installs Debian's postgresql)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def second_postgres(warehouse_server_url: str) -> Iterator[SecondPostgres]:
    with warehouse.connect(warehouse_server_url, autocommit=True) as conn:
        embedded_major = int(conn.execute("show server_version_num").fetchone()[0]) // 10000
    bindirs = [b for b in _candidate_bindirs() if (b / "pg_ctl").exists() and _major(b) != embedded_major]
    if not bindirs:
        _missing(f"no Postgres binaries other than major {embedded_major} (apt-get install postgresql, or set {BINDIR_ENV})")
    bindir = bindirs[0]
    run_as: dict = {}
    root = Path(tempfile.mkdtemp(prefix="pg2-"))
    if os.geteuid() == 0:  # initdb refuses root: run the server as Debian's postgres user
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            _missing("running as root and there is no 'postgres' user to run a second server as")
        os.chown(root, account.pw_uid, account.pw_gid)
        run_as = {"user": account.pw_uid, "group": account.pw_gid}
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if run_as:
        os.chown(pwfile, run_as["user"], run_as["group"])
    pgdata = root / "data"
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(pgdata), "-U", USER, f"--pwfile={pwfile}", "-A", "scram-sha-256",
         "--no-sync", "-E", "UTF8"],
        check=True, capture_output=True, **run_as,
    )
    port = _free_port()
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
    started = subprocess.run(
        [str(bindir / "pg_ctl"), "-D", str(pgdata), "-o", options, "-l", str(root / "log"), "-w", "-t", "60", "start"],
        capture_output=True, text=True, **run_as,
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr + (root / "log").read_text()
        base = f"postgresql://{quote(USER)}:{quote(PASSWORD, safe='')}@127.0.0.1:{port}"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f"create database {DBNAME}")
        yield SecondPostgres(f"{base}/{DBNAME}", _major(bindir))
    finally:
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "-w", "stop"],
                       capture_output=True, **run_as)
        shutil.rmtree(root, ignore_errors=True)


def _pipeline_env(url: str, tmp: Path) -> dict[str, str]:
    """The user's shell: WAREHOUSE_URL and nothing derived from it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WAREHOUSE_", "AIRFLOW_CONN_", "GX_", "DBT_"))}
    env.update({
        "WAREHOUSE_URL": url,
        "AIRFLOW_HOME": str(tmp / "airflow"),
        "DBT_TARGET_PATH": str(tmp / "dbt-target"),  # keep the shared project's target/ untouched
        "DBT_LOG_PATH": str(tmp / "dbt-target"),
    })
    return env


def _retention(env: dict[str, str], *args: str, timeout: int = 300) -> str:
    proc = subprocess.run([str(BIN / "retention"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"retention {' '.join(args)} failed:\n{output[-6000:]}"
    assert PASSWORD not in output and quote(PASSWORD, safe="") not in output
    return output


@pytest.mark.slow
def test_pipeline_on_a_second_postgres_major_through_warehouse_url(second_postgres: SecondPostgres, tmp_path: Path):
    from retention.hooks.stripe import connection_json
    from retention.simulate.stripe_server import serve

    env = _pipeline_env(second_postgres.url, tmp_path)
    company = tmp_path / "tiny"
    _retention(env, "simulate", "--preset", "tiny", "--seed", "3", "--out", str(company))
    with serve(company, api_key=STRIPE_KEY) as stripe_api:
        _retention({**env, "AIRFLOW_CONN_STRIPE_DEFAULT": connection_json(stripe_api.base_url, STRIPE_KEY)},
                   "stripe-ingest")
    _retention(env, "load", "--source", "events", "--source", "nps", "--source", "support", "--path", str(company))
    _retention(env, "dbt", "build")
    from retention.quality.suites import MARTS_GATES, RAW_GATES

    gates = _retention(env, "gate", *(f"--gate={g}" for g in RAW_GATES + MARTS_GATES), "--as-of", "2025-12-31")

    assert "FAILED" not in gates
    assert all(f"{g} " in gates for g in RAW_GATES + MARTS_GATES), gates[-3000:]
    with psycopg.connect(second_postgres.url) as conn:
        version = int(conn.execute("show server_version_num").fetchone()[0])
        customers = conn.execute("select count(*) from raw.stripe_customers").fetchone()[0]
        events = conn.execute("select count(*) from raw.events").fetchone()[0]
        mrr_months = conn.execute("select count(distinct month) from marts.mrr_monthly").fetchone()[0]
        scored = conn.execute("select count(*) from marts.account_health_daily").fetchone()[0]
    assert version // 10000 == second_postgres.major
    assert customers == 30 and events > 1000
    assert mrr_months >= 6 and scored > 0


def test_gate_queries_with_a_join_alias_the_batch():
    """GX leaves ``{batch}`` unaliased in a query with a join; Postgres < 16 rejects an
    unaliased subquery in FROM. Checked for every gate, whatever the server in use."""
    from datetime import date

    from great_expectations.expectations.metrics.query_metric_provider import _query_has_join_clause

    from retention.quality.suites import GATES, GateSettings

    settings = GateSettings(as_of=date(2025, 12, 31))
    checked = 0
    for gate in GATES.values():
        for expectation in gate.expectations(settings):
            query = getattr(expectation, "unexpected_rows_query", None)
            if not query or not _query_has_join_clause(query):
                continue
            checked += 1
            for after in re.split(r"\{batch\}", query)[1:]:
                assert re.match(r"\s+as\s+\w+", after, re.IGNORECASE), f"{gate.name}: unaliased {{batch}} in a join"
    assert checked >= 1
