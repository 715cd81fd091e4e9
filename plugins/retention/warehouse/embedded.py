"""The embedded warehouse: a Postgres (pgserver, from PyPI) in a project-local pgdata.

Used when ``WAREHOUSE_URL`` is not set (:func:`retention.warehouse.resolve_url`). It
listens on a Unix socket only and keeps running after the process that started it
exits, so the next start reuses it. Its settings for bulk loads
(:data:`EMBEDDED_SETTINGS`) are written to its pgdata with ``ALTER SYSTEM``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from retention.config import WAREHOUSE_URL_VAR
from retention.warehouse.url import WarehouseError, WarehouseParams, parse_url, url_from_params

log = logging.getLogger(__name__)

EMBEDDED_DBNAME = "retention"
# The embedded server's settings, in each setting's base unit (pg_settings.unit). A daily
# event load inserts random message ids into the raw.event_ids primary key and writes GBs
# of WAL; with the defaults (128 MB shared_buffers, a checkpoint every 1 GB of WAL or 5
# minutes) that index no longer stays in memory, and every checkpoint makes the next
# insert into each of its pages write a full 8 kB page image (docs/ingestion.md).
EMBEDDED_SETTINGS = {
    "max_wal_size": "8192",  # MB
    "checkpoint_timeout": "1800",  # s
}
SHARED_BUFFERS_MAX_BYTES = 1 << 30  # and at most 1/16 of the machine's memory
# pgserver's system user when run as root, and the lock its creation takes (_ensure_system_user)
SYSTEM_USER = "pgserver"
SYSTEM_USER_LOCK = "/tmp/retention-pgserver-user.lock"


def start_embedded(pgdata: Path) -> str:
    """Start (or reuse) the embedded Postgres in ``pgdata`` and return its URL."""
    try:
        import pgserver
    except ImportError:  # pragma: no cover - pgserver is in the lock file
        raise WarehouseError(
            f"{WAREHOUSE_URL_VAR} is not set and pgserver is not installed. "
            f"Run `make venv`, or set {WAREHOUSE_URL_VAR} to your Postgres."
        ) from None
    import psycopg

    # pgserver logs every initdb/pg_ctl output at INFO (and again from its atexit hook,
    # after pytest has closed its streams); keep only its warnings and errors.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    pgdata.mkdir(parents=True, exist_ok=True)
    _ensure_system_user()
    server = pgserver.get_server(pgdata, cleanup_mode=None)  # None: keep running for reuse
    admin = parse_url(server.get_uri("postgres"))
    with psycopg.connect(admin.conninfo(), autocommit=True) as conn:
        restart = _apply_embedded_settings(conn)
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (EMBEDDED_DBNAME,)
        ).fetchone()
        if not exists:
            conn.execute(f'create database "{EMBEDDED_DBNAME}"')
    if restart:
        log.info("restarting the embedded warehouse once to apply shared_buffers")
        pgserver.pg_ctl(["-w", "-l", str(pgdata / "log"), "restart", "-m", "fast"], pgdata=pgdata,
                        user=SYSTEM_USER if _is_root() else None)
    params = WarehouseParams(admin.host, admin.port, admin.user, "", EMBEDDED_DBNAME)
    return url_from_params(params)


def embedded_settings() -> dict[str, str]:
    """:data:`EMBEDDED_SETTINGS` plus ``shared_buffers`` (8 kB blocks) for this machine."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not on Linux / macOS
        memory = 0
    shared_buffers = max(128 << 20, min(SHARED_BUFFERS_MAX_BYTES, memory // 16))
    return {**EMBEDDED_SETTINGS, "shared_buffers": str(shared_buffers // 8192)}


def _apply_embedded_settings(conn) -> bool:
    """Write :func:`embedded_settings` that differ with ``ALTER SYSTEM`` and reload.
    True when one needs a restart (``shared_buffers``) and nobody else is connected, so
    restarting now cannot cut off another process's work; otherwise it waits for the next
    start of the server."""
    wanted = embedded_settings()
    current = dict(conn.execute("select name, setting from pg_settings where name = any(%s)", (list(wanted),)))
    changed = [name for name, value in wanted.items() if current.get(name) != value]
    if not changed:
        return False
    for name in changed:
        conn.execute(f"alter system set {name} = '{wanted[name]}'")
    conn.execute("select pg_reload_conf()")
    if "shared_buffers" not in changed:
        return False
    others = conn.execute(
        "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()"
    ).fetchone()[0]
    return others == 0


def embedded_pid(pgdata: Path) -> int | None:
    """PID of the embedded server's postmaster, if one is running for ``pgdata``."""
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return None
    try:
        return int(pidfile.read_text().splitlines()[0])
    except (ValueError, IndexError):
        return None


def stop_embedded(pgdata: Path) -> None:
    """Stop the embedded server for ``pgdata`` (used by tests; the demo keeps it running)."""
    import pgserver

    if embedded_pid(pgdata) is None:
        return
    pgserver.pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=SYSTEM_USER if _is_root() else None)


def _ensure_system_user() -> None:
    """As root, pgserver runs Postgres as the system user ``pgserver`` and creates it on first
    use, unlocked: two processes starting servers at once on a fresh machine (the test
    workers, a scheduler beside a DAG processor) both ran ``useradd`` and one kept a uid that
    the other's entry then replaced; its data folder, owned by nobody, failed ``initdb``
    ("could not change permissions"). Create the user once, under a machine-wide lock."""
    if not _is_root():
        return
    import fcntl

    from pgserver.utils import ensure_user_exists

    with open(SYSTEM_USER_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ensure_user_exists(SYSTEM_USER)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
