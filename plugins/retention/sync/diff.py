"""The diff, computed in the warehouse with set-based SQL.

:func:`prepare` turns the sync's source rows into a temporary table ``sync_desired``: one
row per normalised key with its mapped payload (``jsonb``), its segments, the canonical
hash and, for an invalid key, the reason it is skipped. :func:`count` classifies every key
against ``activation.sync_state`` in one query, and :func:`changes` streams the keys that
need a send through a server-side cursor, one batch at a time. Neither side of the diff is
ever pulled into Python.

Canonical hash: ``sha256(mapping_version | payload::text [| segments])``. ``jsonb`` stores
keys in one fixed order and prints with fixed spacing; numbers are normalised with
``trim_scale`` (``10.50`` and ``10.5`` hash alike), timestamps print in UTC. Segments are
part of the hash in ``membership`` mode only.

Invalid keys (never sent, counted, logged with their reason):
``empty_key`` (empty after normalising; ``missing_email`` for an email-keyed sync),
``invalid_email`` (no ``@``), ``duplicate_key`` (source rows with one key but different
mapped fields).

Call these inside one ``REPEATABLE READ`` transaction: the counts and the stream then see
the same snapshot of the source and of the state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from psycopg import sql

from retention.sync import state
from retention.sync.config import SyncSpec
from retention.sync.errors import SyncError

DESIRED = "sync_desired"
SEP = "\x1f"  # joins segments for array parameters
_NUMERIC = {"smallint", "integer", "bigint", "numeric", "real", "double precision"}


class SourceError(SyncError):
    """The sync's source does not fit its configuration. One line naming sync and column."""


@dataclass(frozen=True)
class Counts:
    source_rows: int = 0
    valid: int = 0          # keys that would be at the destination after this run
    invalid: int = 0        # source rows skipped as invalid
    invalid_keys: int = 0
    adds: int = 0
    updates: int = 0
    removes: int = 0        # exits that will be removed (remove_exits)
    exits_kept: int = 0     # exits left at the destination (remove_exits off)
    unchanged: int = 0
    retries: int = 0        # changes that failed last time
    members: int = 0        # keys confirmed at the destination before this run

    @property
    def to_send(self) -> int:
        return self.adds + self.updates + self.removes

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Change:
    key: str
    action: str
    payload: dict | None
    payload_hash: str | None
    segments: tuple[str, ...]
    previous_segments: tuple[str, ...]
    destination_id: str | None
    generation: int
    retry: bool


def _columns(conn, model: str) -> dict[str, str]:
    schema, table = model.split(".")
    return dict(conn.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = %s and table_name = %s",
        (schema, table),
    ).fetchall())


def _canonical(column: str, data_type: str) -> sql.Composable:
    ident = sql.Identifier(column)
    if data_type in _NUMERIC:
        return sql.SQL("trim_scale({}::numeric)").format(ident)
    return ident


def prepare(conn, spec: SyncSpec) -> None:
    """Create ``sync_desired`` (temporary, this session) from the sync's source."""
    columns = _columns(conn, spec.source.model)
    where = f"sync {spec.name!r}: source {spec.source.model}"
    if not columns:
        raise SourceError(f"{where} does not exist")
    for field, column in spec.mapping.items():
        if column not in columns:
            raise SourceError(f"{where} has no column {column!r} (mapping.{field})")
    if spec.identity.column not in columns:
        raise SourceError(f"{where} has no column {spec.identity.column!r} (identity.column)")
    has_segments = spec.source.segment_column in columns
    if spec.source.segments and not has_segments:
        raise SourceError(f"{where} has no column {spec.source.segment_column!r} (source.segment_column)")

    key = sql.SQL("{}::text").format(sql.Identifier(spec.identity.column))
    for step in spec.identity.steps:
        key = sql.SQL({"trim": "btrim({})", "lower": "lower({})"}[step]).format(key)
    payload = sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(field), _canonical(column, columns[column]))
        for field, column in sorted(spec.mapping.items())
    ))
    segment = sql.SQL("{}::text").format(sql.Identifier(spec.source.segment_column)) if has_segments else sql.SQL("null::text")
    filter_ = (sql.SQL("where {} = any({})").format(sql.Identifier(spec.source.segment_column),
                                                   sql.Literal(list(spec.source.segments)))
               if spec.source.segments else sql.SQL(""))
    empty_reason = "missing_email" if spec.identity.kind == "email" else "empty_key"
    hashed = sql.SQL("g.payload::text || {}").format(
        sql.SQL("'|' || array_to_string(g.segments, ',')") if spec.mode == "membership" else sql.SQL("''")
    )
    conn.execute("set local timezone = 'UTC'")
    conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(DESIRED)))
    conn.execute(sql.SQL("""
        create temporary table {desired} as
        with src as (
            select nullif({key}, '') as key, {segment} as segment, {payload} as payload
            from {model} {filter}
        ),
        grouped as (
            select key, count(*) as n_rows, count(distinct payload) as n_payloads,
                   (array_agg(payload))[1] as payload,
                   coalesce(array_agg(distinct segment order by segment) filter (where segment is not null), '{{}}') as segments
            from src group by key
        )
        select coalesce(g.key, '') as key, g.n_rows, g.segments,
               case when g.key is null then {empty}
                    when {is_email} and position('@' in g.key) = 0 then 'invalid_email'
                    when g.n_payloads > 1 then 'duplicate_key' end as invalid_reason,
               g.payload,
               encode(sha256(convert_to({version} || '|' || {hashed}, 'UTF8')), 'hex') as payload_hash
        from grouped g
    """).format(
        desired=sql.Identifier(DESIRED), key=key, segment=segment, payload=payload,
        model=sql.Identifier(*spec.source.model.split(".")), filter=filter_,
        empty=sql.Literal(empty_reason), is_email=sql.Literal(spec.identity.kind == "email"),
        version=sql.Literal(spec.mapping_version), hashed=hashed,
    ))
    conn.execute(sql.SQL("create unique index on {} (key)").format(sql.Identifier(DESIRED)))
    conn.execute(sql.SQL("analyze {}").format(sql.Identifier(DESIRED)))


_STATE = sql.SQL("(select * from {}.sync_state where sync_name = %(sync)s)").format(sql.Identifier(state.SCHEMA))


def count(conn, spec: SyncSpec) -> Counts:
    """Every key classified, in one pass over ``sync_desired`` and the sync's state."""
    row = conn.execute(sql.SQL("""
        with j as (
            select d.key is not null and d.invalid_reason is null as valid,
                   d.invalid_reason is not null as invalid, d.key is null as exited,
                   coalesce(s.is_member, false) as member,
                   s.payload_hash is not distinct from d.payload_hash as same,
                   coalesce(s.last_status = 'failed', false) as failed_before,
                   coalesce(d.n_rows, 0) as n_rows
            from {desired} d full join {state} s on s.key = d.key
        )
        select
            coalesce(sum(n_rows), 0)::bigint,
            count(*) filter (where valid),
            coalesce(sum(n_rows) filter (where invalid), 0)::bigint,
            count(*) filter (where invalid),
            count(*) filter (where valid and not member),
            count(*) filter (where valid and member and not same),
            count(*) filter (where exited and member),
            count(*) filter (where valid and member and same),
            count(*) filter (where failed_before and (
                (valid and not (member and same)) or (exited and member and %(remove)s))),
            count(*) filter (where member)
        from j
    """).format(desired=sql.Identifier(DESIRED), state=_STATE),
        {"sync": spec.name, "remove": spec.remove_exits},
    ).fetchone()
    exits = row[6]
    return Counts(
        source_rows=row[0], valid=row[1], invalid=row[2], invalid_keys=row[3], adds=row[4], updates=row[5],
        removes=exits if spec.remove_exits else 0, exits_kept=0 if spec.remove_exits else exits,
        unchanged=row[7], retries=row[8], members=row[9],
    )


def changes(conn, spec: SyncSpec, batch_size: int) -> Iterator[list[Change]]:
    """The keys to send, in batches, through a server-side cursor."""
    query = sql.SQL("""
        select d.key, case when coalesce(s.is_member, false) then 'update' else 'add' end,
               d.payload, d.payload_hash, d.segments, coalesce(s.segments, '{{}}'), s.destination_id,
               coalesce(s.generation, 0), coalesce(s.last_status = 'failed', false)
        from {desired} d left join {state} s on s.key = d.key
        where d.invalid_reason is null
          and (not coalesce(s.is_member, false) or s.payload_hash is distinct from d.payload_hash)
        union all
        select s.key, 'remove', null, null, '{{}}', s.segments, s.destination_id, s.generation,
               s.last_status = 'failed'
        from {state} s
        where %(remove)s and s.is_member and not exists (select 1 from {desired} d where d.key = s.key)
    """).format(desired=sql.Identifier(DESIRED), state=_STATE)
    with conn.cursor(name="sync_changes") as cur:
        cur.itersize = batch_size
        cur.execute(query, {"sync": spec.name, "remove": spec.remove_exits})
        while rows := cur.fetchmany(batch_size):
            yield [Change(key=r[0], action=r[1], payload=r[2], payload_hash=r[3], segments=tuple(r[4]),
                          previous_segments=tuple(r[5]), destination_id=r[6], generation=r[7], retry=r[8])
                   for r in rows]


def members(conn, batch_size: int = 5000) -> Iterator[tuple[str, dict, tuple[str, ...]]]:
    """Every valid key of ``sync_desired`` with its payload and segments (streamed)."""
    with conn.cursor(name="sync_members") as cur:
        cur.itersize = batch_size
        cur.execute(sql.SQL("select key, payload, segments from {} where invalid_reason is null order by key")
                    .format(sql.Identifier(DESIRED)))
        for key, payload, segments in cur:
            yield key, payload, tuple(segments)


def log_invalid(conn, spec: SyncSpec, run_id: int) -> None:
    """One ``sync_log`` row per invalid key: its reason and how many source rows had it."""
    conn.execute(sql.SQL("""
        insert into {log} (run_id, sync_name, key, action, status, error)
        select %(run)s, %(sync)s, key, 'skip', 'invalid', invalid_reason || ' (' || n_rows || ' source rows)'
        from {desired} where invalid_reason is not null
    """).format(log=sql.Identifier(state.SCHEMA, "sync_log"), desired=sql.Identifier(DESIRED)),
        {"run": run_id, "sync": spec.name})
