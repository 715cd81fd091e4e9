"""The one warehouse helper: embedded start/reuse, URL derivation, clear errors."""

from __future__ import annotations

import json
import socket

import psycopg
import pytest

from retention import runtime, warehouse
from retention.config import settings


def test_embedded_warehouse_starts_accepts_connections_and_is_reused(tmp_path):
    pgdata = tmp_path / "pg"
    try:
        url = warehouse.start_embedded(pgdata)
        pid = warehouse.embedded_pid(pgdata)
        assert pid is not None
        with psycopg.connect(warehouse.parse_url(url).conninfo()) as conn:
            conn.execute("create table t (x int)")
            conn.execute("insert into t values (41)")
        # A second start reuses the running server (same postmaster) and keeps the data.
        again = warehouse.start_embedded(pgdata)
        assert again == url
        assert warehouse.embedded_pid(pgdata) == pid
        with psycopg.connect(warehouse.parse_url(again).conninfo()) as conn:
            assert conn.execute("select x + 1 from t").fetchone() == (42,)
    finally:
        warehouse.stop_embedded(pgdata)
    assert warehouse.embedded_pid(pgdata) is None


def _settings(url, names):
    with psycopg.connect(warehouse.parse_url(url).conninfo()) as conn:
        return dict(conn.execute("select name, setting from pg_settings where name = any(%s)", (list(names),)))


def test_embedded_warehouse_gets_bulk_load_settings_without_cutting_off_a_client(tmp_path):
    import pgserver

    pgdata = tmp_path / "pg"
    wanted = warehouse.embedded_settings()
    assert 128 * 128 <= int(wanted["shared_buffers"]) <= 1024 * 128  # 128 MB .. 1 GB in 8 kB blocks
    try:
        url = warehouse.start_embedded(pgdata)
        assert _settings(url, wanted) == wanted
        # a server tuned by an older version: small shared_buffers, default WAL settings
        with psycopg.connect(warehouse.parse_url(url).conninfo(), autocommit=True) as conn:
            conn.execute("alter system set shared_buffers = '2048'")
            conn.execute("alter system reset max_wal_size")
        pgserver.pg_ctl(["-w", "-l", str(pgdata / "log"), "restart", "-m", "fast"], pgdata=pgdata,
                        user="pgserver" if warehouse.embedded._is_root() else None)
        assert _settings(url, wanted)["shared_buffers"] == "2048"
        with psycopg.connect(warehouse.parse_url(url).conninfo()) as busy:
            pid = warehouse.embedded_pid(pgdata)
            warehouse.start_embedded(pgdata)
            assert warehouse.embedded_pid(pgdata) == pid  # not restarted under a connected client
            assert _settings(url, ["max_wal_size"]) == {"max_wal_size": wanted["max_wal_size"]}  # reloaded at once
            assert busy.execute("select pending_restart from pg_settings where name = 'shared_buffers'").fetchone()[0]
        warehouse.start_embedded(pgdata)  # nobody else connected: restarted once
        assert warehouse.embedded_pid(pgdata) != pid
        assert _settings(url, wanted) == wanted
    finally:
        warehouse.stop_embedded(pgdata)


def test_resolve_url_without_warehouse_url_uses_embedded(tmp_path):
    cfg = settings({"RETENTION_HOME": str(tmp_path)})
    try:
        url = warehouse.resolve_url(cfg)
        assert warehouse.parse_url(url).host == str(cfg.embedded_pgdata)
        with warehouse.connect(url) as conn:
            assert conn.execute("select current_database()").fetchone() == ("retention",)
    finally:
        warehouse.stop_embedded(cfg.embedded_pgdata)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_warehouse_url_gives_one_clear_error_without_the_password(tmp_path):
    url = f"postgresql://analyst:s3cr3t-pw@127.0.0.1:{_closed_port()}/analytics"
    cfg = settings({"RETENTION_HOME": str(tmp_path), "WAREHOUSE_URL": url})
    with pytest.raises(warehouse.WarehouseError) as err:
        warehouse.resolve_url(cfg)
    message = str(err.value)
    assert "WAREHOUSE_URL" in message and "unreachable" in message
    assert "s3cr3t-pw" not in message
    assert "\n" not in message


def test_malformed_warehouse_url_names_the_variable(tmp_path):
    cfg = settings({"RETENTION_HOME": str(tmp_path), "WAREHOUSE_URL": "mysql://x@y/z"})
    with pytest.raises(warehouse.WarehouseError, match="WAREHOUSE_URL must be a postgresql:// URL"):
        warehouse.resolve_url(cfg)


def test_cli_reports_unreachable_warehouse_with_exit_code_2(tmp_path, monkeypatch, capsys):
    from retention.cli import main

    monkeypatch.setenv("WAREHOUSE_URL", f"postgresql://u:pw@127.0.0.1:{_closed_port()}/db")
    assert main(["warehouse"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: WAREHOUSE_URL=") and "pw@" not in err


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://u:p%40ss@db.example.com:6543/analytics", ("db.example.com", 6543, "u", "p@ss", "analytics")),
        ("postgresql://postgres@/retention?host=/tmp/sock&port=5432", ("/tmp/sock", 5432, "postgres", "", "retention")),
        ("postgres://me@localhost/db", ("localhost", 5432, "me", "", "db")),
        ("postgresql://u:x@h:5432/db?password=p%26w", ("h", 5432, "u", "p&w", "db")),
        ("postgresql://u@/db?host=/run/pg&port=5433", ("/run/pg", 5433, "u", "", "db")),
        ("postgresql://u:pw@[::1]:6000/db", ("::1", 6000, "u", "pw", "db")),
        ("postgresql:///db?host=db.internal&user=etl&password=s3cret&sslmode=require",
         ("db.internal", 5432, "etl", "s3cret", "db")),
    ],
)
def test_parse_and_rebuild_url_round_trips(url, expected):
    p = warehouse.parse_url(url)
    assert (p.host, p.port, p.user, p.password, p.dbname) == expected
    assert warehouse.parse_url(warehouse.url_from_params(p)) == p


def test_every_consumer_is_derived_from_the_one_url(tmp_path):
    url = "postgresql://etl:pw@db.internal:5433/analytics"
    cfg = settings({"RETENTION_HOME": str(tmp_path), "WAREHOUSE_URL": url})
    env = runtime.pipeline_env(url, cfg)
    conn = json.loads(env["AIRFLOW_CONN_WAREHOUSE"])
    assert (conn["host"], conn["port"], conn["login"], conn["password"], conn["schema"]) == (
        "db.internal", 5433, "etl", "pw", "analytics",
    )
    assert (env["WAREHOUSE_HOST"], env["WAREHOUSE_PORT"], env["WAREHOUSE_DBNAME"]) == ("db.internal", "5433", "analytics")
    assert warehouse.sqlalchemy_url(url) == "postgresql+psycopg://etl:pw@db.internal:5433/analytics"
    assert env["AIRFLOW_HOME"] == str(tmp_path / ".airflow")


def test_redact_hides_only_the_password():
    assert warehouse.redact("postgresql://u:hunter2@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert warehouse.redact("postgresql://u@/d?host=/s") == "postgresql://u@/d?host=/s"
