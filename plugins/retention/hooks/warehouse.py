"""Airflow hook for the warehouse connection (``warehouse``, derived from WAREHOUSE_URL)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from retention import warehouse
from retention.config import WAREHOUSE_CONN_ID


class WarehouseHook(BaseHook):
    """Hands out psycopg 3 connections and URLs for the warehouse Airflow connection."""

    conn_name_attr = "warehouse_conn_id"
    default_conn_name = WAREHOUSE_CONN_ID
    conn_type = "postgres"
    hook_name = "Retention warehouse"

    def __init__(self, warehouse_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.warehouse_conn_id = warehouse_conn_id

    @cached_property
    def params(self) -> warehouse.WarehouseParams:
        conn = self.get_connection(self.warehouse_conn_id)
        return warehouse.WarehouseParams(
            host=conn.host or "localhost",
            port=int(conn.port or 5432),
            user=conn.login or "postgres",
            password=conn.password or "",
            dbname=conn.schema or "postgres",
        )

    @property
    def url(self) -> str:
        """The warehouse URL (contains the password: never log it, use :meth:`redacted_url`)."""
        return warehouse.url_from_params(self.params)

    @property
    def redacted_url(self) -> str:
        return warehouse.redact(self.url)

    def get_conn(self, **kwargs: Any):
        import psycopg

        return psycopg.connect(self.params.conninfo(), **kwargs)
