"""The one warehouse connection helper.

``WAREHOUSE_URL`` is the single source of truth. From it we derive:

* the Airflow connection ``warehouse`` (``AIRFLOW_CONN_WAREHOUSE``, JSON form so Unix
  socket hosts survive);
* the dbt profile (``dbt_project/profiles.yml`` reads ``WAREHOUSE_HOST`` ... env vars);
* the GX datasource (a SQLAlchemy URL, see :func:`sqlalchemy_url`).

With no ``WAREHOUSE_URL`` an embedded Postgres (pgserver, from PyPI) starts in the
project-local ``.warehouse/pgdata`` directory, listening on a Unix socket only. It keeps
running after the process that started it exits, so the next start reuses it. Its
settings for bulk loads (:data:`EMBEDDED_SETTINGS`) are written to its pgdata with
``ALTER SYSTEM``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from retention.config import WAREHOUSE_URL_VAR, Settings, settings as load_settings

log = logging.getLogger(__name__)

EMBEDDED_DBNAME = "retention"
CONNECT_TIMEOUT_S = 5
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


class WarehouseError(RuntimeError):
    """The warehouse is misconfigured or unreachable. The message says what to do."""


@dataclass(frozen=True)
class WarehouseParams:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    options: tuple[tuple[str, str], ...] = ()  # other libpq parameters (sslmode, ...), as given

    @property
    def is_socket(self) -> bool:
        return self.host.startswith("/")

    def conninfo(self) -> str:
        """A libpq key/value conninfo string (works for TCP and socket hosts)."""
        parts = {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "dbname": self.dbname,
            "connect_timeout": str(CONNECT_TIMEOUT_S),
            **dict(self.options),
        }
        if self.password:
            parts["password"] = self.password
        return " ".join(f"{k}={_quote_conninfo(v)}" for k, v in parts.items())


def _quote_conninfo(value: str) -> str:
    if value and all(c not in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2")
_USERINFO_PASSWORD = re.compile(r"(://[^/?#@:]*:)[^/?#@]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)
_QUOTED_URI = re.compile(r':?\s*"[^"]*"\s*$')


def parse_url(url: str) -> WarehouseParams:
    """Parse a ``postgresql://`` URL in every form libpq accepts.

    libpq's own parser reads it (``psycopg.conninfo.conninfo_to_dict``): percent-encoded
    user and password, ``?password=`` / ``?host=`` / ``?port=`` / ``?user=`` /
    ``?dbname=`` (which win over the URL's parts, as in libpq), bracketed IPv6 hosts
    (``[::1]``), socket directories (``@/db?host=/dir``) and every other libpq
    parameter (kept in ``options``). A malformed URL is one :class:`WarehouseError`
    line naming ``WAREHOUSE_URL``, with the password masked.
    """
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise WarehouseError(
            f"{WAREHOUSE_URL_VAR} must be a postgresql:// URL, got {redact(url)!r}. "
            f"Example: postgresql://user:password@db.example.com:5432/analytics"
        )
    try:
        params = conninfo_to_dict(f"postgresql://{rest}")
    except ProgrammingError as exc:
        reason = _QUOTED_URI.sub("", str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        raise WarehouseError(f"{WAREHOUSE_URL_VAR} is not a valid postgresql:// URL ({reason}): {redact(url)}") from None
    host = str(params.pop("host", "") or "localhost")
    port_text = str(params.pop("port", "") or "5432")
    if "," in host or "," in port_text:
        raise WarehouseError(f"{WAREHOUSE_URL_VAR} names several hosts; give one: {redact(url)}")
    try:
        port = int(port_text)
    except ValueError:
        raise WarehouseError(f"{WAREHOUSE_URL_VAR} has an invalid port {port_text!r}: {redact(url)}") from None
    user = str(params.pop("user", "") or "postgres")
    password = str(params.pop("password", "") or "")
    dbname = str(params.pop("dbname", "") or "postgres")
    options = tuple(sorted((k, str(v)) for k, v in params.items() if k != "connect_timeout"))
    return WarehouseParams(host=host, port=port, user=user, password=password, dbname=dbname, options=options)


def redact(url: str) -> str:
    """The URL with any password (``user:password@`` or ``?password=``) replaced by
    ``***``, even when the URL is malformed (safe for logs and errors)."""
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1***@", url))


def url_from_params(p: WarehouseParams) -> str:
    auth = quote(p.user, safe="")
    if p.password:
        auth += ":" + quote(p.password, safe="")
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in p.options)
    if p.is_socket:
        return f"postgresql://{auth}@/{quote(p.dbname, safe='')}?host={p.host}&port={p.port}" + (f"&{query}" if query else "")
    host = f"[{p.host}]" if ":" in p.host else p.host
    return f"postgresql://{auth}@{host}:{p.port}/{quote(p.dbname, safe='')}" + (f"?{query}" if query else "")


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy URL (psycopg 3 driver), e.g. for GX ``data_sources.add_sql``."""
    p = parse_url(url)
    return "postgresql+psycopg" + url_from_params(p)[len("postgresql") :]


def airflow_connection_json(url: str) -> str:
    """``AIRFLOW_CONN_WAREHOUSE`` value. JSON keeps socket-directory hosts intact."""
    p = parse_url(url)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": p.host,
            "port": p.port,
            "login": p.user,
            "password": p.password,
            "schema": p.dbname,
        }
    )


def dbt_env(url: str) -> dict[str, str]:
    """Variables read by ``dbt_project/profiles.yml``."""
    p = parse_url(url)
    return {
        "WAREHOUSE_HOST": p.host,
        "WAREHOUSE_PORT": str(p.port),
        "WAREHOUSE_USER": p.user,
        "WAREHOUSE_PASSWORD": p.password,
        "WAREHOUSE_DBNAME": p.dbname,
    }


def check_reachable(url: str) -> None:
    """Open and close one connection, or raise one clear :class:`WarehouseError`."""
    import psycopg

    try:
        with psycopg.connect(parse_url(url).conninfo()) as conn:
            conn.execute("select 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WarehouseError(
            f"{WAREHOUSE_URL_VAR}={redact(url)} is unreachable: {reason}. "
            f"Fix {WAREHOUSE_URL_VAR}, or unset it to use the embedded warehouse."
        ) from None


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
                        user="pgserver" if _is_root() else None)
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


def resolve_url(cfg: Settings | None = None, *, check: bool = True) -> str:
    """The warehouse URL: ``WAREHOUSE_URL`` if set (checked), else the embedded server."""
    cfg = cfg or load_settings()
    if cfg.warehouse_url:
        parse_url(cfg.warehouse_url)  # clear error on a malformed URL
        if check:
            check_reachable(cfg.warehouse_url)
        return cfg.warehouse_url
    url = start_embedded(cfg.embedded_pgdata)
    log.info("embedded warehouse at %s", url)
    return url


def connect(url: str | None = None, **kwargs):
    """A psycopg 3 connection to the warehouse (``url`` defaults to :func:`resolve_url`)."""
    import psycopg

    return psycopg.connect(parse_url(url or resolve_url()).conninfo(), **kwargs)


def stop_embedded(pgdata: Path) -> None:
    """Stop the embedded server for ``pgdata`` (used by tests; the demo keeps it running)."""
    import pgserver

    if embedded_pid(pgdata) is None:
        return
    pgserver.pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user="pgserver" if _is_root() else None)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def drop_database(url: str) -> None:
    """Drop the database ``url`` names, connecting to the server's ``postgres`` database."""
    import psycopg

    params = parse_url(url)
    admin = WarehouseParams(params.host, params.port, params.user, params.password, "postgres")
    with psycopg.connect(admin.conninfo(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{params.dbname}" with (force)')


def create_database(url: str, dbname: str) -> str:
    """Create database ``dbname`` on the server of ``url``; return its URL."""
    import psycopg

    params = parse_url(url)
    with psycopg.connect(params.conninfo(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{dbname}" with (force)')
        conn.execute(f'create database "{dbname}"')
    return url_from_params(WarehouseParams(params.host, params.port, params.user, params.password, dbname))
