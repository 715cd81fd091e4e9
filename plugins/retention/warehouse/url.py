"""``WAREHOUSE_URL``, the one warehouse setting, and what is derived from it.

* the Airflow connection ``warehouse`` (``AIRFLOW_CONN_WAREHOUSE``, JSON form so Unix
  socket hosts survive): :func:`airflow_connection_json`;
* the dbt profile (``dbt_project/profiles.yml`` reads ``WAREHOUSE_HOST`` ... env vars):
  :func:`dbt_env`;
* the GX datasource (a SQLAlchemy URL): :func:`sqlalchemy_url`;
* psycopg connections: :meth:`WarehouseParams.conninfo`.

Every form libpq accepts is read (by libpq's own parser), and :func:`redact` masks the
password in every message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import quote

from retention.config import WAREHOUSE_URL_VAR

CONNECT_TIMEOUT_S = 5


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
