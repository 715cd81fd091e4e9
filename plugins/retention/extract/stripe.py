"""Extract Stripe billing objects and load them into ``raw.stripe_*``.

One call of :func:`ingest` handles one object type: it lists every page of
``/v1/<object>`` (following ``starting_after``) and streams the pages into the loader,
which upserts them in one transaction (:mod:`retention.load.stripe`).

Discounts: Stripe has no list endpoint for them. Subscriptions and invoices are listed
with their ``discounts`` (top level and per item/line) expanded; the discount objects go
to ``raw.stripe_discounts`` and the parents keep the ids, exactly as ``GET`` returns them.

Incremental extraction and its limit
------------------------------------
An incremental run lists objects **created** in ``[interval_start - lookback,
interval_end)``. Stripe list endpoints only filter on ``created``, so an object that
changes *after* its creation day (a subscription cancelled, an invoice paid, a discount
added) is not seen again by incremental runs. The look-back catches late-visible objects
near the window edge, not later updates. The complete answer is Stripe's Events API
(``/v1/events``, 30 days of retention) or webhooks; until then a **full refresh** re-lists
everything: it runs on the first load of a table (empty table), when asked, and on the
weekly day of :attr:`ExtractPlan.full_refresh_weekday`. Objects deleted in Stripe are
never removed from ``raw``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from retention.hooks.stripe import StripeHook
    from retention.load.stripe import StripeRow

log = logging.getLogger(__name__)

DISCOUNTS = "discounts"


@dataclass(frozen=True)
class StripeObjectSpec:
    """How to list one Stripe object type."""

    name: str  # URL and file name, e.g. "subscriptions"
    object_type: str  # the objects' `object` field
    list_params: dict[str, Any] = field(default_factory=dict)
    expand: tuple[str, ...] = ()  # discount expansions; their objects feed raw.stripe_discounts

    @property
    def path(self) -> str:
        return f"/v1/{self.name}"

    @property
    def tables(self) -> list[str]:
        """The raw tables one extraction of this type writes."""
        return [f"stripe_{self.name}"] + ([f"stripe_{DISCOUNTS}"] if self.expand else [])


STRIPE_OBJECTS: dict[str, StripeObjectSpec] = {
    spec.name: spec
    for spec in (
        StripeObjectSpec("customers", "customer"),
        StripeObjectSpec("products", "product"),
        StripeObjectSpec("prices", "price"),
        StripeObjectSpec("coupons", "coupon"),
        # Stripe leaves canceled subscriptions out of the list unless status=all.
        StripeObjectSpec(
            "subscriptions", "subscription", {"status": "all"}, ("data.discounts", "data.items.data.discounts")
        ),
        StripeObjectSpec("invoices", "invoice", {}, ("data.discounts", "data.lines.data.discounts")),
    )
}


class StripeExtractError(RuntimeError):
    """Stripe returned something the raw tables cannot hold; nothing was written."""


@dataclass(frozen=True)
class ExtractWindow:
    """``created`` bounds in epoch seconds; both None means a full refresh."""

    created_gte: int | None = None
    created_lt: int | None = None

    @property
    def full_refresh(self) -> bool:
        return self.created_gte is None and self.created_lt is None

    def params(self) -> dict[str, Any]:
        bounds = {"gte": self.created_gte, "lt": self.created_lt}
        bounds = {op: value for op, value in bounds.items() if value is not None}
        return {"created": bounds} if bounds else {}


FULL_REFRESH = ExtractWindow()


@dataclass(frozen=True)
class ExtractPlan:
    """The run's choice between incremental and full refresh (the DAG's params)."""

    lookback: timedelta = timedelta(days=3)
    full_refresh: bool = False
    full_refresh_weekday: int | None = 6  # full refresh when the interval starts on this UTC weekday (6: Sunday)

    def window(self, interval_start: datetime | None, interval_end: datetime | None) -> ExtractWindow:
        if self.lookback < timedelta(0):
            raise ValueError(f"lookback must be >= 0, got {self.lookback}")
        if self.full_refresh or interval_start is None or interval_end is None:
            return FULL_REFRESH
        weekday = interval_start.astimezone(timezone.utc).weekday()
        if self.full_refresh_weekday is not None and weekday == self.full_refresh_weekday:
            return FULL_REFRESH
        return ExtractWindow(
            created_gte=int((interval_start - self.lookback).timestamp()),
            created_lt=int(interval_end.timestamp()),
        )


def extract_pages(hook: StripeHook, spec: StripeObjectSpec, window: ExtractWindow) -> Iterator[dict[str, list[StripeRow]]]:
    """Rows per raw table, one dict per API page."""
    from retention.load.stripe import to_row

    params: dict[str, Any] = {**spec.list_params, **window.params()}
    if spec.expand:
        params["expand"] = list(spec.expand)
    for page in hook.list_pages(spec.path, params):
        discounts: dict[str, dict] = {}
        rows = []
        for obj in page:
            _check(obj, spec.object_type, "created")
            _collapse_discounts(obj, discounts)
            rows.append(to_row(obj))
        for discount in discounts.values():
            _check(discount, "discount", "start")
        batch = {spec.tables[0]: rows}
        if spec.expand:
            batch[f"stripe_{DISCOUNTS}"] = [to_row(d, created_field="start") for d in discounts.values()]
        yield batch


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
) -> dict[str, Any]:
    """Extract one object type and load it; counts per table (safe for XCom: no data)."""
    from retention.load import stripe as load

    if name not in STRIPE_OBJECTS:
        raise ValueError(f"unknown Stripe object {name!r}; choose from {sorted(STRIPE_OBJECTS)}")
    spec = STRIPE_OBJECTS[name]
    window = plan.window(interval_start, interval_end)
    if not window.full_refresh and load.is_empty(conn, spec.tables[0]):
        log.info("raw.%s is empty: first load, full refresh", spec.tables[0])
        window = FULL_REFRESH
    mode = "full_refresh" if window.full_refresh else "incremental"
    log.info("stripe %s: %s extraction, created %s", name, mode, window.params().get("created", "unbounded"))
    retries_before = hook.retries_done
    counts = load.load_batches(
        conn, spec.tables, extract_pages(hook, spec, window), extracted_at or datetime.now(timezone.utc)
    )
    return {
        "object": name,
        "mode": mode,
        "window": window.params().get("created", {}),
        "api_retries": hook.retries_done - retries_before,
        "tables": {table: c.as_dict() for table, c in counts.items()},
    }



def _cmd_stripe_ingest(args: argparse.Namespace) -> int:
    from retention import warehouse
    from retention.hooks.stripe import StripeHook, StripeHookError

    plan = ExtractPlan(lookback=timedelta(days=args.lookback_days), full_refresh=args.day is None,
                       full_refresh_weekday=None)
    start = datetime.combine(args.day, time(), tzinfo=timezone.utc) if args.day else None
    end = start + timedelta(days=1) if start else None
    hook = StripeHook()
    try:
        with warehouse.connect(autocommit=True) as conn:
            for name in args.object or STRIPE_OBJECTS:
                print(json.dumps(ingest(hook, conn, name, plan, start, end)), flush=True)
    except (StripeHookError, StripeExtractError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stripe-ingest",
        help="load Stripe objects into raw.stripe_* (connection from AIRFLOW_CONN_STRIPE_DEFAULT)",
    )
    p.add_argument("--object", action="append", choices=sorted(STRIPE_OBJECTS), help="repeatable; default: all")
    p.add_argument("--day", type=date.fromisoformat, help="UTC day (YYYY-MM-DD) to extract; default: full refresh")
    p.add_argument("--lookback-days", type=int, default=3, help="with --day: days before it to re-list")
    p.set_defaults(func=_cmd_stripe_ingest)
