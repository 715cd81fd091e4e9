"""Slack digest destination: one message per sync and as-of date, posted at most once.

A sync of kind ``slack_digest`` reads the segments like any other; ``send`` only counts the
changes (nothing leaves per record, so every record is confirmed), and ``write_members``
tallies the full membership the engine streams from its snapshot. ``close`` posts one
Block Kit message (:mod:`retention.sync.digest`): members per segment and the change
since the last digest (``activation.sync_digests``), the top at-risk accounts by MRR with
their reasons, and a link to the report when there is one. The mapping must carry
``account_id``, ``account_name``, ``mrr`` and ``reason``; no other field is read, and no
email or person's name is ever posted.

**At most once.** The digest's delivery id is derived from (sync, as-of date). Before
posting, it is looked up in the engine's send log (``activation.sync_send_log``) and
written there as ``sending`` (committed); a digest already ``sending``, ``ok`` or
``unknown`` is never posted again, so a rerun, a task retry, or a retry after a timeout
when Slack had in fact accepted the message never posts twice. Only a definite refusal
(``rejected``: a 4xx or ``ok: false``) lets a later run post it. The price, as for any
at-most-once message: a post that timed out before Slack took it is not repeated
(it is logged as ``unknown`` with a warning).

Options: ``at_risk_segments`` (default ``[health_dropped, high_value_declining,
inactive]``), ``top`` (default 10), ``title`` (default "Retention digest"), ``report_url``
(else ``RETENTION_REPORT_URL``), ``account_field`` (default ``account_id``). The warehouse
(send log, last digest) is the Airflow connection ``warehouse``, else ``WAREHOUSE_URL``.
"""

from __future__ import annotations

import heapq
import logging
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from retention.sync.destinations.base import Record, RowResult, SyncContext
from retention.sync.state import SCHEMA
from retention.sync.digest import AtRiskAccount, Digest, SegmentCount, build_blocks, fallback_text

log = logging.getLogger(__name__)

DIGEST_NAMESPACE = uuid.UUID("0c8f3f4e-2b1d-4e55-9c11-8a3e7d2b5f61")
DEFAULT_AT_RISK = ("health_dropped", "high_value_declining", "inactive")
REPORT_URL_ENV = "RETENTION_REPORT_URL"

DDL = f"""
create table if not exists {SCHEMA}.sync_digests (
    sync_name text not null,
    as_of date not null,
    run_id bigint not null,
    delivery_id uuid not null,
    counts jsonb not null,
    outcome text not null,
    posted_at timestamptz not null default now(),
    primary key (sync_name, as_of)
)
"""


def warehouse_url() -> str:
    """The warehouse the engine writes to: the Airflow connection ``warehouse`` (DAG), else ``WAREHOUSE_URL``."""
    from retention import warehouse
    from retention.config import WAREHOUSE_CONN_ID

    if os.environ.get(f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}"):
        from retention.hooks.warehouse import WarehouseHook

        return WarehouseHook().url
    return warehouse.resolve_url(check=False)


def digest_delivery_id(sync: str, as_of: date) -> uuid.UUID:
    return uuid.uuid5(DIGEST_NAMESPACE, f"{sync}:digest:{as_of.isoformat()}")


class SlackDigestDestination:
    kind: ClassVar[str] = "slack_digest"
    idempotent: ClassVar[bool] = True  # send() posts nothing; close() posts once, through the send log
    max_batch: ClassVar[int] = 10_000

    def __init__(self, conn_id: str | None = None, options: Mapping[str, Any] | None = None, *,
                 hook: Any = None, warehouse_url: str | None = None) -> None:
        self.options = dict(options or {})
        self.account_field = str(self.options.get("account_field", "account_id"))
        self.at_risk_segments = tuple(self.options.get("at_risk_segments") or DEFAULT_AT_RISK)
        self.top = int(self.options.get("top", 10))
        self.title = str(self.options.get("title") or "Retention digest")
        self.conn_id = conn_id
        self._hook = hook
        self._url = warehouse_url
        self.ctx: SyncContext | None = None
        self.posted: str | None = None  # what close() did: posted, skipped or unknown
        self.members: tuple[dict[str, int], tuple[AtRiskAccount, ...], int] | None = None

    @property
    def hook(self) -> Any:
        if self._hook is None:
            from retention.hooks.slack import SlackHook

            self._hook = SlackHook(self.conn_id)
        return self._hook

    def open(self, ctx: SyncContext) -> None:
        self.ctx = ctx

    def send(self, records: Sequence[Record]) -> list[RowResult]:
        return [RowResult(key=r.key, ok=True) for r in records]

    def close(self, ctx: SyncContext, *, succeeded: bool) -> None:
        if not succeeded:
            log.warning("slack digest %s: the sync failed, so no digest (the failure alert reports it)", ctx.sync_name)
            return
        self.post_digest(ctx)

    # --- the one message ------------------------------------------------------------------

    def post_digest(self, ctx: SyncContext) -> str:
        from retention import warehouse
        from retention.hooks.http import HttpHookError

        url = self._url or warehouse_url()
        delivery = digest_delivery_id(ctx.sync_name, ctx.as_of)
        with warehouse.connect(url, autocommit=True) as conn:
            conn.execute(DDL)
            prior = conn.execute(
                f"select status from {SCHEMA}.sync_send_log where sync_name = %s and delivery_id = %s",
                (ctx.sync_name, delivery),
            ).fetchone()
            if prior and prior[0] != "rejected":
                log.info("slack digest %s for %s: already %s, not posted again", ctx.sync_name, ctx.as_of, prior[0])
                self.posted = "skipped"
                return self.posted
            digest = self.build(conn, ctx)
            conn.execute(
                f"""insert into {SCHEMA}.sync_send_log (sync_name, delivery_id, key, run_id, status)
                    values (%s, %s, %s, %s, 'sending')
                    on conflict (sync_name, delivery_id) do update set status = 'sending', run_id = excluded.run_id,
                    sent_at = now()""",
                (ctx.sync_name, delivery, f"digest:{ctx.as_of.isoformat()}", ctx.run_id),
            )
            try:
                self.hook.post(fallback_text(digest), build_blocks(digest))
                status = "ok"
            except HttpHookError as exc:  # SlackPostError, or the base's timeout / 5xx / exhausted 429s
                status = "unknown" if exc.outcome_unknown else "rejected"
                self._record(conn, ctx, delivery, digest, status)
                if status == "rejected":
                    from retention.sync.errors import SyncError

                    raise SyncError(f"slack digest {ctx.sync_name!r} for {ctx.as_of}: {exc}; a later run posts it") from None
                log.warning("slack digest %s for %s: %s; it may have been posted, so it is not posted again",
                            ctx.sync_name, ctx.as_of, exc)
                self.posted = "unknown"
                return self.posted
            self._record(conn, ctx, delivery, digest, status)
        log.info("slack digest %s for %s posted (%d segments)", ctx.sync_name, ctx.as_of, len(digest.segments))
        self.posted = "posted"
        return self.posted

    def _record(self, conn: Any, ctx: SyncContext, delivery: uuid.UUID, digest: Digest, status: str) -> None:
        import json

        with conn.transaction():
            conn.execute(f"update {SCHEMA}.sync_send_log set status = %s where sync_name = %s and delivery_id = %s",
                         (status, ctx.sync_name, delivery))
            if status != "rejected":
                conn.execute(
                    f"""insert into {SCHEMA}.sync_digests (sync_name, as_of, run_id, delivery_id, counts, outcome)
                        values (%s, %s, %s, %s, %s, %s)
                        on conflict (sync_name, as_of) do update set run_id = excluded.run_id,
                        counts = excluded.counts, outcome = excluded.outcome, posted_at = now()""",
                    (ctx.sync_name, ctx.as_of, ctx.run_id, delivery, json.dumps(digest.counts()), status),
                )

    def write_members(self, ctx: SyncContext, rows: Callable[[], Iterable[Record]]) -> list[str]:
        """Tally the full current membership the engine streams (called after the changes)."""
        counts: Counter[str] = Counter()
        at_risk: dict[str, dict[str, Any]] = {}
        for record in rows():
            counts.update(record.segments)
            risky = [s for s in record.segments if s in self.at_risk_segments]
            if not risky:
                continue
            payload = record.payload
            account = str(payload.get(self.account_field) or record.key)
            entry = at_risk.setdefault(account, {"name": payload.get("account_name") or account, "mrr": Decimal(0),
                                                 "reasons": set()})
            entry["mrr"] = max(entry["mrr"], Decimal(str(payload.get("mrr") or 0)))
            for segment in risky:
                reason = payload.get("reason")
                entry["reasons"].add(f"{segment}: {reason}" if reason else segment)
        top = heapq.nsmallest(self.top, at_risk.items(), key=lambda item: (-item[1]["mrr"], item[0]))
        self.members = (
            dict(counts),
            tuple(AtRiskAccount(str(e["name"]), e["mrr"], tuple(sorted(e["reasons"]))) for _, e in top),
            len(at_risk),
        )
        return []

    def build(self, conn: Any, ctx: SyncContext) -> Digest:
        """The digest from the tallied membership and the counts of the last digest."""
        if self.members is None:
            raise RuntimeError("slack digest: the engine did not stream the membership (write_members)")
        counts, accounts, total = self.members
        previous_row = conn.execute(
            f"select counts from {SCHEMA}.sync_digests where sync_name = %s and as_of < %s order by as_of desc limit 1",
            (ctx.sync_name, ctx.as_of),
        ).fetchone()
        previous = previous_row[0] if previous_row else None
        names = sorted(set(counts) | set(previous or {}) | set(ctx.segments))
        segment_counts = tuple(
            SegmentCount(s, int(counts.get(s, 0)), None if previous is None else int(previous.get(s, 0)))
            for s in names
        )
        report_url = self.options.get("report_url") or os.environ.get(REPORT_URL_ENV) or None
        return Digest(as_of=ctx.as_of, title=self.title, segments=segment_counts, at_risk=accounts,
                      at_risk_total=total, report_url=report_url)
