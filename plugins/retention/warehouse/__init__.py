"""The one warehouse connection helper.

``WAREHOUSE_URL`` is the single source of truth (:mod:`retention.warehouse.url`: parsing,
masking, and the Airflow connection, dbt profile and GX datasource derived from it).
With no ``WAREHOUSE_URL`` an embedded Postgres starts in the project-local
``.warehouse/pgdata`` directory (:mod:`retention.warehouse.embedded`).
"""

from __future__ import annotations

import logging

from retention.config import WAREHOUSE_URL_VAR, Settings, settings as load_settings
from retention.warehouse.embedded import embedded_pid, embedded_settings, start_embedded, stop_embedded
from retention.warehouse.url import (
    CONNECT_TIMEOUT_S,
    WarehouseError,
    WarehouseParams,
    airflow_connection_json,
    dbt_env,
    parse_url,
    redact,
    sqlalchemy_url,
    url_from_params,
)

__all__ = [
    "CONNECT_TIMEOUT_S", "WarehouseError", "WarehouseParams", "airflow_connection_json", "check_reachable",
    "connect", "dbt_env", "embedded_pid", "embedded_settings", "parse_url",
    "redact", "resolve_url", "sqlalchemy_url", "start_embedded", "stop_embedded", "url_from_params",
]

log = logging.getLogger(__name__)


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
