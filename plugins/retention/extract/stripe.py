"""Extract Stripe billing objects and load them into ``raw.stripe_*``.

One call of :func:`ingest` handles one object type, in one of two modes:

* **full refresh**: list every page of ``/v1/<object>`` (following ``starting_after``)
  and stream the pages into the loader, which upserts them in one transaction
  (:mod:`retention.load.stripe`);
* **events** (the daily run): read Stripe's Events API (``/v1/events``) since the type's
  cursor and apply the newest event of each object: its ``data.object`` is the object's
  state after the change, so creations, updates (a subscription cancelled, an invoice
  paid or voided, a price changed, a discount added) and deletions (``*.deleted``: the
  last state, marked ``"deleted": true``) land within the day, whatever the object's age.

A full refresh runs on the first load of a table, when there is no cursor yet, when the
cursor is older than Stripe's 30-day event retention (said in the log), when asked, and on
the weekly day of :attr:`ExtractPlan.full_refresh_weekday` (a safety net). The cursor
(``raw.stripe_extract_state``) is the time a run started reading; the next run re-reads
:attr:`ExtractPlan.lookback` before it (re-applying an event changes nothing).

Discounts: Stripe has no list endpoint for them. Subscriptions and invoices are listed
with their ``discounts`` (top level and per item/line) expanded; the discount objects go
to ``raw.stripe_discounts`` and the parents keep the ids, exactly as ``GET`` returns them.
In events mode they come from ``customer.discount.*`` events (with the subscriptions).

Invoice lines: Stripe embeds an invoice's first 10 lines; the rest are listed from
``/v1/invoices/<id>/lines`` and stored in the invoice's ``lines.data`` (``has_more``
false), in both modes.

Cut short: a full refresh that lists fewer than ``(1 - max_count_drop)`` x the live
(non-deleted) rows the table held stops before anything is written.
Deletions a full refresh sees: an object raw holds as live that the complete listing no
longer has was deleted (a cursor past the event retention missed its event): it is marked
``"deleted": true`` in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from retention.hooks.stripe import StripeHook
    from retention.load.stripe import StripeRow

from retention.extract import stripe_state as state
from retention.progress import SILENT, Progress

log = logging.getLogger(__name__)

DISCOUNTS = "discounts"


@dataclass(frozen=True)
class StripeObjectSpec:
    """How to list one Stripe object type."""

    name: str  # URL and file name, e.g. "subscriptions"
    object_type: str  # the objects' `object` field
    list_params: dict[str, Any] = field(default_factory=dict)
    expand: tuple[str, ...] = ()  # discount expansions; their objects feed raw.stripe_discounts
    events: tuple[str, ...] = ()  # the Stripe event types that carry this type's changes

    @property
    def path(self) -> str:
        return f"/v1/{self.name}"

    @property
    def tables(self) -> list[str]:
        """The raw tables one extraction of this type writes."""
        return [f"stripe_{self.name}"] + ([f"stripe_{DISCOUNTS}"] if self.expand else [])


def _events(prefix: str, *verbs: str) -> tuple[str, ...]:
    return tuple(f"{prefix}.{verb}" for verb in ("created", "updated", "deleted", *verbs))


# Stripe's event types (docs.stripe.com/api/events/types); at most 20 per request.
DISCOUNT_EVENTS = _events("customer.discount")
STRIPE_OBJECTS: dict[str, StripeObjectSpec] = {
    spec.name: spec
    for spec in (
        StripeObjectSpec("customers", "customer", events=_events("customer")),
        StripeObjectSpec("products", "product", events=_events("product")),
        StripeObjectSpec("prices", "price", events=_events("price")),
        StripeObjectSpec("coupons", "coupon", events=_events("coupon")),
        # Stripe leaves canceled subscriptions out of the list unless status=all.
        # customer.subscription.deleted is a cancellation: the subscription stays, canceled.
        StripeObjectSpec(
            "subscriptions", "subscription", {"status": "all"}, ("data.discounts", "data.items.data.discounts"),
            events=_events("customer.subscription", "paused", "resumed", "pending_update_applied",
                           "pending_update_expired", "trial_will_end") + DISCOUNT_EVENTS,
        ),
        StripeObjectSpec(
            "invoices", "invoice", {}, ("data.discounts", "data.lines.data.discounts"),
            events=_events("invoice", "finalized", "finalization_failed", "paid", "payment_succeeded",
                           "payment_failed", "payment_action_required", "voided", "marked_uncollectible",
                           "sent", "overdue", "overpaid", "will_be_due"),
        ),
    )
}
# Deletions that remove the object in Stripe (marked "deleted": true in raw).
REMOVING_EVENTS = frozenset(
    t for spec in STRIPE_OBJECTS.values() for t in spec.events
    if t.endswith(".deleted") and t != "customer.subscription.deleted"
)


class StripeExtractError(RuntimeError):
    """Stripe returned something the raw tables cannot hold; nothing was written."""


class StripeExtractCutShort(StripeExtractError):
    """A full refresh listed far fewer objects than the table held; nothing was written."""


EVENT_RETENTION = timedelta(days=30)  # Stripe keeps events for 30 days
DEFAULT_ACCOUNT_ID_METADATA_KEY = "account_id"


def account_id_metadata_key() -> str:
    """The customer metadata key holding our account id: dbt's var
    ``finance_account_id_metadata_key`` in dbt_project.yml (one setting for both)."""
    import yaml

    from retention.dbt import project_dir

    try:
        project = yaml.safe_load((project_dir() / "dbt_project.yml").read_text())
    except FileNotFoundError:
        return DEFAULT_ACCOUNT_ID_METADATA_KEY
    return str((project.get("vars") or {}).get("finance_account_id_metadata_key") or DEFAULT_ACCOUNT_ID_METADATA_KEY)


@dataclass(frozen=True)
class ExtractPlan:
    """The run's choice between events and a full refresh, and its guards (the DAG's params)."""

    lookback: timedelta = timedelta(minutes=10)  # events re-read before the cursor (clock skew, late events)
    full_refresh: bool = False
    full_refresh_weekday: int | None = 6  # full refresh when the interval starts on this UTC weekday (6: Sunday)
    max_count_drop: float = 0.25  # a full refresh listing fewer than (1 - this) x the live rows is cut short
    min_rows_checked: int = 20  # tables smaller than this are not judged on their count

    def full_refresh_reason(
        self, interval_start: datetime | None, cursor: datetime | None, now: datetime, empty: bool
    ) -> str | None:
        """Why this run must list everything, or None for an events run."""
        if self.lookback < timedelta(0):
            raise ValueError(f"lookback must be >= 0, got {self.lookback}")
        if self.full_refresh:
            return "asked for"
        if empty:
            return "first load: the table is empty"
        if cursor is None:
            return "no events cursor yet"
        if now - (cursor - self.lookback) > EVENT_RETENTION:
            return (f"the events cursor ({cursor:%Y-%m-%d %H:%M} UTC) is older than Stripe's "
                    f"{EVENT_RETENTION.days}-day event retention")
        if interval_start is not None and self.full_refresh_weekday is not None:
            if interval_start.astimezone(timezone.utc).weekday() == self.full_refresh_weekday:
                return f"weekly full refresh (weekday {self.full_refresh_weekday})"
        return None


def extract_pages(hook: StripeHook, spec: StripeObjectSpec) -> Iterator[dict[str, list[StripeRow]]]:
    """A full listing: rows per raw table, one dict per API page."""
    params: dict[str, Any] = dict(spec.list_params)
    if spec.expand:
        params["expand"] = list(spec.expand)
    for page in hook.list_pages(spec.path, params):
        yield _batch(hook, spec, [(spec.object_type, obj) for obj in page])


def event_pages(
    hook: StripeHook, spec: StripeObjectSpec, since: datetime, stats: dict[str, int]
) -> Iterator[dict[str, list[StripeRow]]]:
    """The newest event of each object changed since ``since``, as rows per raw table.

    Events come newest first; the first one seen per object is its latest state. ``stats``
    receives how many events were read and how many objects they changed."""
    params = {"types": list(spec.events), "created": {"gte": int(since.timestamp())}}
    latest: dict[tuple[str, str], dict] = {}
    for page in hook.list_pages("/v1/events", params):
        for event in page:
            stats["events_read"] += 1
            obj = event.get("data", {}).get("object") if isinstance(event, dict) else None
            if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                raise StripeExtractError(
                    f"Stripe event {event.get('id') if isinstance(event, dict) else event!r} has no data.object "
                    f"with an id; nothing was loaded. Check the API base URL and version."
                )
            latest.setdefault((obj.get("object", ""), obj["id"]), event)
    stats["objects_changed"] = len(latest)
    items = []
    for event in latest.values():
        obj = event["data"]["object"]
        if event["type"] in REMOVING_EVENTS:
            obj = {**obj, "deleted": True}
        stats["deleted"] += event["type"] in REMOVING_EVENTS
        kind = "discount" if event["type"] in DISCOUNT_EVENTS else spec.object_type
        items.append((kind, obj))
    for i in range(0, len(items), 100):
        yield _batch(hook, spec, items[i:i + 100])


def _batch(hook: StripeHook, spec: StripeObjectSpec, items: list[tuple[str, dict]]) -> dict[str, list[StripeRow]]:
    """Check, complete (invoice lines) and split objects into rows per raw table."""
    from retention.load.stripe import to_row

    discounts: dict[str, dict] = {}
    rows = []
    for kind, obj in items:
        if kind == "discount":
            discounts[obj.get("id")] = obj
            continue
        _check(obj, spec.object_type, "created")
        if spec.object_type == "invoice":
            _list_remaining_lines(hook, obj)
        _collapse_discounts(obj, discounts)
        rows.append(to_row(obj))
    for discount in discounts.values():
        _check(discount, "discount", "start")
    batch = {spec.tables[0]: rows}
    if spec.expand:
        batch[f"stripe_{DISCOUNTS}"] = [to_row(d, created_field="start") for d in discounts.values()]
    return batch


def _list_remaining_lines(hook: StripeHook, invoice: dict) -> None:
    """Stripe embeds an invoice's first lines only: list the rest into ``lines.data``."""
    lines = invoice.get("lines")
    if not (isinstance(lines, dict) and lines.get("has_more") and lines.get("data")):
        return
    every = list(lines["data"])
    params = {"starting_after": every[-1]["id"], "expand": ["data.discounts"]}
    for page in hook.list_pages(f"/v1/invoices/{invoice['id']}/lines", params):
        every.extend(page)
    invoice["lines"] = {**lines, "data": every, "has_more": False}


def _check(obj: Any, object_type: str, created_field: str) -> None:
    if not (
        isinstance(obj, dict)
        and obj.get("object") == object_type
        and isinstance(obj.get("id"), str)
        and isinstance(obj.get(created_field), int)
    ):
        preview = {k: obj.get(k) for k in ("id", "object", created_field)} if isinstance(obj, dict) else type(obj).__name__
        raise StripeExtractError(
            f"Stripe returned {preview!r} where a {object_type} with a string id and an integer "
            f"{created_field} was expected; nothing was loaded. Check the API base URL and version."
        )


def _collapse_discounts(node: Any, found: dict[str, dict]) -> None:
    """Replace expanded discount objects under any ``discounts`` list by their ids, collecting them."""
    if isinstance(node, list):
        for item in node:
            _collapse_discounts(item, found)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == DISCOUNTS and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict) and item.get("object") == "discount":
                    found[item["id"]] = item
                    value[i] = item["id"]
        else:
            _collapse_discounts(value, found)


def ingest(
    hook: StripeHook,
    conn: psycopg.Connection,
    name: str,
    plan: ExtractPlan,
    interval_start: datetime | None,
    interval_end: datetime | None,
    extracted_at: datetime | None = None,
    progress: Progress = SILENT,
) -> dict[str, Any]:
    """Extract one object type and load it; counts per table (safe for XCom: no data).
    ``progress`` hears of each API page loaded (the CLI's bars).

    ``interval_start``/``interval_end``: the run's data interval (the weekly full refresh is
    chosen by its start). Events are read up to now, whatever the interval."""
    from retention.load import stripe as load

    if name not in STRIPE_OBJECTS:
        raise ValueError(f"unknown Stripe object {name!r}; choose from {sorted(STRIPE_OBJECTS)}")
    spec = STRIPE_OBJECTS[name]
    started = datetime.now(timezone.utc)
    state.ensure(conn)
    cursor = state.cursor(conn, name)
    reason = plan.full_refresh_reason(interval_start, cursor, started, load.is_empty(conn, spec.tables[0]))
    retries_before = hook.retries_done
    result: dict[str, Any] = {"object": name, "mode": "full_refresh" if reason else "events"}
    if reason:
        log.info("stripe %s: full_refresh extraction (%s)", name, reason)
        live_before = state.live_rows(conn, spec.tables[0])
        listed = {"n": 0, "ids": set(), "gone": 0}
        batches = _mark_unlisted_deleted(
            conn, spec, _guard_cut_short(extract_pages(hook, spec), spec, live_before, plan, listed), listed
        )
        result["reason"] = reason
    else:
        since = cursor - plan.lookback
        log.info("stripe %s: events since %s UTC (cursor %s minus %s)", name, f"{since:%Y-%m-%d %H:%M:%S}",
                 f"{cursor:%Y-%m-%d %H:%M:%S}", plan.lookback)
        stats = {"events_read": 0, "objects_changed": 0, "deleted": 0}
        batches = event_pages(hook, spec, since, stats)
    progress.start(f"stripe {name}", total=None, unit="pages")
    counts = load.load_batches(conn, spec.tables, _counted(batches, spec, progress), extracted_at or started)
    if reason:
        result["listed"], result["live_rows_before"] = listed["n"], live_before
        result["marked_deleted"] = listed["gone"]
        if listed["gone"]:
            log.warning("stripe %s: %d no longer listed by Stripe, marked deleted (e.g. %s)", name, listed["gone"],
                        ", ".join(listed["gone_ids"]))
        state.save(conn, name, started, result["mode"], listed["n"], live_before, interval_end)
    else:
        result["events"] = stats
        log.info("stripe %s: %s", name, stats)
        state.save(conn, name, started, result["mode"], stats["objects_changed"], None, interval_end)
    result["read_up_to"] = started.isoformat()
    result["api_retries"] = hook.retries_done - retries_before
    result["tables"] = {table: c.as_dict() for table, c in counts.items()}
    if name == "customers":
        result["customers_without_account_id"] = _report_unmapped(conn)
    return result


def _counted(
    batches: Iterator[dict[str, list[StripeRow]]], spec: StripeObjectSpec, progress: Progress
) -> Iterator[dict[str, list[StripeRow]]]:
    for batch in batches:
        yield batch
        progress.advance(1, rows=len(batch[spec.tables[0]]))


def _guard_cut_short(
    batches: Iterator[dict[str, list[StripeRow]]], spec: StripeObjectSpec, live_before: int,
    plan: ExtractPlan, listed: dict[str, int],
) -> Iterator[dict[str, list[StripeRow]]]:
    """Pass the pages through; after the last one, stop (inside the load's transaction, so
    nothing is written) when far fewer objects were listed than the table held."""
    for batch in batches:
        listed["n"] += len(batch[spec.tables[0]])
        listed["ids"].update(row.id for row in batch[spec.tables[0]])
        yield batch
    if live_before >= plan.min_rows_checked and listed["n"] < (1 - plan.max_count_drop) * live_before:
        raise StripeExtractCutShort(
            f"Stripe listed {listed['n']} {spec.name} where raw.{spec.tables[0]} holds {live_before} live ones, "
            f"a drop of more than {plan.max_count_drop:.0%}: the extract looks cut short, nothing was loaded. "
            f"If Stripe really holds that few, rerun with a higher max_count_drop."
        )


def _mark_unlisted_deleted(
    conn: psycopg.Connection, spec: StripeObjectSpec, batches: Iterator[dict[str, list[StripeRow]]],
    listed: dict[str, Any],
) -> Iterator[dict[str, list[StripeRow]]]:
    """After a complete listing (the cut-short guard passed), the objects raw still holds
    as live that Stripe no longer lists were deleted while no events were read (a cursor
    past the 30-day retention): one more batch with their last state plus ``"deleted":
    true``, as a deletion event would give (Stripe lists every status of these objects, so
    only a deleted one is missing). Runs inside the load's transaction, on its connection,
    between two pages' COPYs."""
    from psycopg import sql

    from retention.load.stripe import to_row

    yield from batches
    table = sql.Identifier("raw", spec.tables[0])
    rows = conn.execute(
        sql.SQL("select data from {} where not coalesce((data->>'deleted')::boolean, false)"
                " and not (id = any(%s)) order by id").format(table),
        (list(listed["ids"]),),
    ).fetchall()
    listed["gone"], listed["gone_ids"] = len(rows), [r[0]["id"] for r in rows[:10]]
    if rows:
        yield {spec.tables[0]: [to_row({**r[0], "deleted": True}) for r in rows]}


def _report_unmapped(conn: psycopg.Connection) -> int:
    """Customers (not deleted) without the account id metadata key and not in the mapping
    seed (``config.stripe_customer_accounts``, once dbt has loaded it): counted and logged
    by id, kept."""
    key = account_id_metadata_key()
    with conn.transaction():
        mapped = conn.execute("select to_regclass('config.stripe_customer_accounts')").fetchone()[0]
        ids = [r[0] for r in conn.execute(
            "select id from raw.stripe_customers where not coalesce((data->>'deleted')::boolean, false)"
            " and coalesce(data->'metadata'->>%s, '') = ''"
            + (" and id not in (select customer_id from config.stripe_customer_accounts"
               " where coalesce(trim(account_id), '') <> '')" if mapped else "")
            + " order by id", (key,),
        )]
    if ids:
        log.warning(
            "stripe customers: %d without metadata.%s nor a row in the seed stripe_customer_accounts (kept in raw;"
            " their Stripe id stands in as account id), "
            "e.g. %s", len(ids), key, ", ".join(ids[:10]),
        )
    return len(ids)
