"""Whole databases on the warehouse's server: made and dropped by the tests and the
benchmarks (one fresh database each), never by the pipeline, so not in the package."""

from __future__ import annotations

from retention.warehouse.url import WarehouseParams, parse_url, url_from_params


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
