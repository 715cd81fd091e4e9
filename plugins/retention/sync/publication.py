"""Which marts passed their quality gates: ``activation.mart_publications``.

``transform_dbt``'s ``publish_marts`` task calls :func:`record` after every gate passed,
with the as-of date the gates used. It stores that date and the OID of every relation in
the ``marts`` schema: dbt rebuilds a table under a new OID, so a mart rebuilt after the
publication (e.g. by a later run whose gates failed) no longer matches it. The sync
(DAG and CLI alike) calls :func:`check` and refuses anything else with one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from retention.sync import state
from retention.sync.errors import SyncError

MARTS_SCHEMA = "marts"


class NotPublished(SyncError):
    """The source is not what the last gate-passing build published. One line."""


@dataclass(frozen=True)
class Publication:
    id: int
    as_of: date
    run_id: str
    relations: dict[str, int]


def record(conn, as_of: date, run_id: str) -> Publication:
    """Publish the current ``marts`` relations as validated for ``as_of`` (commits)."""
    state.ensure_schema(conn)
    with conn.transaction():
        relations = dict(conn.execute(
            """select n.nspname || '.' || c.relname, c.oid::bigint
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm')""",
            (MARTS_SCHEMA,),
        ).fetchall())
        pub_id = conn.execute(
            f"insert into {state.SCHEMA}.mart_publications (as_of, run_id, relations)"
            " values (%s, %s, %s) returning id",
            (as_of, run_id, json.dumps(relations)),
        ).fetchone()[0]
    return Publication(pub_id, as_of, run_id, relations)


def publish(as_of: date, run_id: str, conn_id: str | None = None) -> Publication:
    """:func:`record` through the warehouse Airflow connection (``transform_dbt``'s publish task)."""
    from retention.config import WAREHOUSE_CONN_ID
    from retention.hooks.warehouse import WarehouseHook

    with WarehouseHook(conn_id or WAREHOUSE_CONN_ID).get_conn(autocommit=True) as conn:
        return record(conn, as_of, run_id)


def latest(conn) -> Publication | None:
    row = conn.execute(
        f"select id, as_of, run_id, relations from {state.SCHEMA}.mart_publications order by id desc limit 1"
    ).fetchone()
    return Publication(row[0], row[1], row[2], {k: int(v) for k, v in row[3].items()}) if row else None


def check(conn, model: str) -> Publication:
    """The publication ``model`` belongs to, or :class:`NotPublished` saying why not."""
    pub = latest(conn)
    if pub is None:
        raise NotPublished(
            "no published marts: transform_dbt publishes them once their quality gates pass; nothing sent"
        )
    current = conn.execute("select to_regclass(%s)::oid::bigint", (model,)).fetchone()[0]
    if current is None:
        raise NotPublished(f"{model} does not exist; nothing sent")
    if model not in pub.relations:
        raise NotPublished(
            f"{model} was not part of the last publication (as of {pub.as_of}); nothing sent"
        )
    if pub.relations[model] != current:
        raise NotPublished(
            f"{model} was rebuilt after the last publication (as of {pub.as_of}) and has not passed "
            "the quality gates since; nothing sent"
        )
    return pub
