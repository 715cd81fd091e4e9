"""Load Stripe objects into ``raw.stripe_<object>`` (latest) and ``raw.stripe_<object>_history``.

Contract (docs/DATA_CONTRACTS.md section 2):

* ``raw.stripe_<object>``: one row per ``id``, the latest version seen: ``id`` (primary
  key), ``created``, ``data`` (the whole object, jsonb), ``_extracted_at``,
  ``_content_hash``;
* ``raw.stripe_<object>_history``: one row per distinct ``(id, _content_hash)``, stamped
  with the first extraction that saw it.

``_content_hash`` is the SHA-256 of the object's canonical JSON (sorted keys, no
whitespace, UTF-8), so the same object always hashes the same. A load streams pages into
temp tables with COPY, then upserts in the same transaction: a row changes only when its
hash differs, so rerunning an interval writes nothing. A failure anywhere rolls the
whole batch back.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import orjson
import psycopg
from psycopg import sql

from retention.load import schema

log = logging.getLogger(__name__)

SCHEMA = "raw"

_UPSERT = """
with src as (
    select distinct on (id) id, created, data, _content_hash from {tmp} order by id, seq desc
), written as (
    insert into {latest} as t (id, created, data, _extracted_at, _content_hash)
    select id, created, data, %(at)s, _content_hash from src
    on conflict (id) do update
        set created = excluded.created, data = excluded.data,
            _extracted_at = excluded._extracted_at, _content_hash = excluded._content_hash
        where t._content_hash <> excluded._content_hash
    returning (xmax = 0) as inserted
)
select (select count(*) from src),
       count(*) filter (where inserted),
       count(*) filter (where not inserted)
from written
"""

_HISTORY = """
insert into {history} (id, created, data, _extracted_at, _content_hash)
select distinct on (id, _content_hash) id, created, data, %(at)s, _content_hash
from {tmp} order by id, _content_hash, seq
on conflict (id, _content_hash) do nothing
"""


@dataclass(frozen=True)
class StripeRow:
    id: str
    created: datetime
    data: str  # canonical JSON
    content_hash: str


@dataclass(frozen=True)
class LoadCounts:
    """What one load did to one table (``received`` counts duplicates within the batch)."""

    table: str
    received: int
    distinct: int
    inserted: int
    updated: int
    history_added: int

    @property
    def unchanged(self) -> int:
        return self.distinct - self.inserted - self.updated

    def as_dict(self) -> dict[str, int | str]:
        return {**asdict(self), "unchanged": self.unchanged}


def to_row(obj: dict, created_field: str = "created") -> StripeRow:
    """Canonical JSON, its hash and the typed key columns of one Stripe object."""
    canonical = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    return StripeRow(
        id=obj["id"],
        created=datetime.fromtimestamp(obj[created_field], tz=timezone.utc),
        data=canonical.decode(),
        content_hash=hashlib.sha256(canonical).hexdigest(),
    )


def _names(table: str) -> dict[str, sql.Identifier]:
    return {
        "latest": sql.Identifier(SCHEMA, table),
        "history": sql.Identifier(SCHEMA, f"{table}_history"),
        "tmp": sql.Identifier(f"_load_{table}"),
    }


def ensure_tables(conn: psycopg.Connection, tables: Iterable[str]) -> None:
    """Create ``raw`` and the latest/history tables if missing (:func:`schema.ensure_stripe_tables`)."""
    schema.ensure_stripe_tables(conn, tables)


def is_empty(conn: psycopg.Connection, table: str) -> bool:
    """True when ``raw.<table>`` has no row (or does not exist yet)."""
    with conn.transaction():
        exists = conn.execute("select to_regclass(%s)", (f"{SCHEMA}.{table}",)).fetchone()[0]
        if exists is None:
            return True
        query = sql.SQL("select not exists (select from {})").format(_names(table)["latest"])
        return conn.execute(query).fetchone()[0]


def load_batches(
    conn: psycopg.Connection,
    tables: list[str],
    batches: Iterator[dict[str, list[StripeRow]]],
    extracted_at: datetime,
) -> dict[str, LoadCounts]:
    """Stream ``batches`` (table -> rows, e.g. one API page) into ``tables`` in ONE transaction.

    ``conn`` must not be inside a transaction: the load commits (or rolls back) its own.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise RuntimeError(
            "load_batches needs a connection outside any transaction (commit first, or use autocommit=True)"
        )
    ensure_tables(conn, tables)
    received = dict.fromkeys(tables, 0)
    with conn.transaction():
        for table in tables:
            conn.execute(
                sql.SQL(
                    "create temp table {tmp} (seq bigint, id text, created timestamptz, data jsonb, "
                    "_content_hash text) on commit drop"
                ).format(**_names(table))
            )
        with conn.cursor() as cur:
            for batch in batches:
                for table, rows in batch.items():
                    if not rows:
                        continue
                    copy_sql = sql.SQL("copy {tmp} (seq, id, created, data, _content_hash) from stdin")
                    with cur.copy(copy_sql.format(**_names(table))) as copy:
                        for row in rows:
                            received[table] += 1
                            copy.write_row((received[table], row.id, row.created, row.data, row.content_hash))
        counts = {table: _merge(conn, table, received[table], extracted_at) for table in tables}
    for c in counts.values():
        log.info("loaded %s", c.as_dict())
    return counts


def _merge(conn: psycopg.Connection, table: str, received: int, extracted_at: datetime) -> LoadCounts:
    names = _names(table)
    distinct, inserted, updated = conn.execute(
        sql.SQL(_UPSERT).format(**names), {"at": extracted_at}
    ).fetchone()
    history = conn.execute(sql.SQL(_HISTORY).format(**names), {"at": extracted_at}).rowcount
    return LoadCounts(table, received, distinct, inserted, updated, history)
