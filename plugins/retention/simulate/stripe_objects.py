"""Stripe API objects built from the simulated lives.

Every object starts from Stripe's own fixture for its resource (fixtures/, from
stripe/openapi fixtures3.json) and overwrites fields, so each carries every field
Stripe's fixture carries. Timestamps are unix seconds, amounts integer cents.
Objects are observed at ``now``: nothing created at or after it appears.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from retention.simulate import catalogue as cat
from retention.simulate.lifecycle import Discount, Life, Period, Sub
from retention.simulate.timeline import DAY

FIXTURES = Path(__file__).with_name("fixtures") / "stripe-fixtures3.json"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@cache
def _fixture_bytes() -> dict[str, bytes]:
    resources = orjson.loads(FIXTURES.read_bytes())["resources"]
    return {name: orjson.dumps(obj) for name, obj in resources.items()}


def fixture(resource: str) -> dict[str, Any]:
    """A fresh deep copy of Stripe's fixture object for ``resource``."""
    return orjson.loads(_fixture_bytes()[resource])


def stable_id(prefix: str, *parts: object) -> str:
    """Stripe-looking id (``cus_4f8Gx...``) derived from ``parts``: same parts, same id."""
    digest = int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=12).digest())
    chars = []
    for _ in range(14):
        digest, r = divmod(digest, 62)
        chars.append(_ALPHABET[r])
    return f"{prefix}_{''.join(chars)}"


def _price_unit(price_id: str) -> int:
    return _PRICE_UNITS[price_id]


_PRICE_UNITS: dict[str, int] = {
    **{cat.plan_price_id(p, "month"): p.month_cents for p in cat.PLANS.values()},
    **{cat.plan_price_id(p, "year"): p.year_cents for p in cat.PAID_PLANS},
    cat.ADDON_PRICE: cat.ADDON_CENTS,
    cat.METERED_PRICE: cat.METERED_CENTS_PER_UNIT,
    cat.ONE_OFF_PRICE: cat.ONE_OFF_CENTS,
}


def catalogue_objects(created: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(products, prices) of the simulated company."""
    products, prices = [], []

    def product(pid: str, name: str, description: str, default_price: str) -> None:
        obj = fixture("product")
        obj.update(
            id=pid, name=name, description=description, default_price=default_price, created=created,
            updated=created, type="service", package_dimensions=None, shippable=None,
            metadata={}, unit_label=None,
        )
        products.append(obj)

    def price(pid: str, product_id: str, nickname: str, interval: str | None, usage: str = "licensed") -> None:
        obj = fixture("price")
        unit = _price_unit(pid)
        obj.update(
            id=pid, product=product_id, nickname=nickname, created=created, unit_amount=unit,
            unit_amount_decimal=str(unit), lookup_key=pid.removeprefix("price_"), transform_quantity=None,
            type="recurring" if interval else "one_time", metadata={},
        )
        obj["recurring"] = (
            {"interval": interval, "interval_count": 1, "meter": None, "usage_type": usage, "trial_period_days": None}
            if interval
            else None
        )
        prices.append(obj)

    for plan in cat.PLANS.values():
        pid = cat.plan_product_id(plan)
        product(pid, plan.name, f"{plan.name} plan, billed per seat", cat.plan_price_id(plan, "month"))
        price(cat.plan_price_id(plan, "month"), pid, f"{plan.name} monthly per seat", "month")
        if plan.month_cents:
            price(cat.plan_price_id(plan, "year"), pid, f"{plan.name} annual per seat", "year")
    product(cat.ADDON_PRODUCT, "Advanced Analytics", "Add-on: advanced analytics", cat.ADDON_PRICE)
    price(cat.ADDON_PRICE, cat.ADDON_PRODUCT, "Analytics add-on monthly", "month")
    product(cat.METERED_PRODUCT, "API calls", "Metered API usage per 1,000 calls", cat.METERED_PRICE)
    price(cat.METERED_PRICE, cat.METERED_PRODUCT, "API calls per 1,000 (metered)", "month", usage="metered")
    product(cat.ONE_OFF_PRODUCT, "Onboarding package", "One-off onboarding and training", cat.ONE_OFF_PRICE)
    price(cat.ONE_OFF_PRICE, cat.ONE_OFF_PRODUCT, "Onboarding (one-off)", None)
    return products, prices


def coupon_objects(created: int, redeemed: dict[str, int]) -> list[dict[str, Any]]:
    out = []
    for c in cat.COUPONS:
        obj = fixture("coupon")
        obj.update(
            id=c.id, name=c.name, created=created, percent_off=c.percent_off, amount_off=c.amount_off,
            currency="usd" if c.amount_off else None, duration=c.duration,
            duration_in_months=c.duration_in_months, redeem_by=None, max_redemptions=None,
            times_redeemed=redeemed.get(c.id, 0), metadata={},
        )
        out.append(obj)
    return out


@dataclass(frozen=True)
class Customer:
    index: int  # account position
    account_id: str
    id: str
    email: str
    name: str
    country: str
    created: int


class AccountBilling:
    """Builds one account's subscriptions, invoices and discounts as observed at ``now``."""

    def __init__(self, seed: int, customer: Customer, life: Life, now: int, price_objects: dict[str, dict[str, Any]]):
        self.seed, self.customer, self.life, self.now = seed, customer, life, now
        self.prices = price_objects
        self.taxed = customer.country in cat.VAT_COUNTRIES
        self.invoices: list[dict[str, Any]] = []
        self.discounts: list[dict[str, Any]] = []
        self.delinquent = False

    # ids -------------------------------------------------------------------------------
    def _id(self, prefix: str, *parts: object) -> str:
        return stable_id(prefix, self.seed, self.customer.index, *parts)

    def sub_id(self, sub: Sub) -> str:
        return self._id("sub", sub.index)

    def item_id(self, sub: Sub, role: str) -> str:
        return self._id("si", sub.index, role)

    def discount_id(self, d: Discount) -> str:
        return self._id("di", d.index)

    # objects ---------------------------------------------------------------------------
    def customer_object(self) -> dict[str, Any]:
        c = self.customer
        obj = fixture("customer")
        obj["address"].update(country=c.country)
        obj.update(
            id=c.id, created=c.created, email=c.email, name=c.name, discount=None, shipping=None,
            invoice_prefix=self._id("x", "prefix")[2:10].upper(), delinquent=self.delinquent,
            metadata={"account_id": c.account_id}, next_invoice_sequence=len(self.invoices) + 1,
            preferred_locales=["en"],
        )
        return obj

    def build(self) -> list[dict[str, Any]]:
        """Subscriptions (also fills ``invoices`` and ``discounts``)."""
        subs = [self._subscription(sub) for sub in self.life.subs if sub.created < self.now]
        for n, created in enumerate(self.life.manual_invoices):
            if created < self.now:
                self.invoices.append(self._manual_invoice(n, created))
        return subs

    def _discount_object(self, sub: Sub, d: Discount) -> dict[str, Any]:
        obj = fixture("discount")
        obj.update(
            id=self.discount_id(d), customer=self.customer.id, subscription=self.sub_id(sub), start=d.start,
            end=d.end, promotion_code=None, checkout_session=None, invoice=None, invoice_item=None,
            subscription_item=None,
        )
        obj["source"] = {"coupon": d.coupon.id, "type": "coupon"}
        return obj

    def _price_for(self, sub: Sub, period: Period) -> str:
        if sub.kind == "addon":
            return cat.ADDON_PRICE
        return cat.plan_price_id(cat.PLANS[period.plan], period.interval)

    def _item(self, sub: Sub, role: str, price_id: str, quantity: int | None, period: Period) -> dict[str, Any]:
        obj = fixture("subscription_item")
        price = self.prices[price_id]
        obj.update(
            id=self.item_id(sub, role), created=sub.created, subscription=self.sub_id(sub), quantity=quantity,
            price=price, current_period_start=period.start, current_period_end=period.end, metadata={},
            billing_thresholds=None, discounts=[], tax_rates=[],
        )
        recurring = price["recurring"]
        obj["plan"] = {
            "active": True, "amount": price["unit_amount"], "amount_decimal": price["unit_amount_decimal"],
            "billing_scheme": "per_unit", "created": price["created"], "currency": "usd", "id": price_id,
            "interval": recurring["interval"], "interval_count": 1, "livemode": False, "metadata": {},
            "meter": None, "nickname": price["nickname"], "object": "plan", "product": price["product"],
            "tiers_mode": None, "transform_usage": None, "trial_period_days": None,
            "usage_type": recurring["usage_type"],
        }
        return obj

    def _status(self, sub: Sub, current: Period) -> str:
        if sub.ended_at is not None and sub.ended_at <= self.now:
            return "canceled"
        if current.trial:
            return "trialing"
        if current.failed_until is not None and (current.paid_at is None or current.paid_at >= self.now):
            return "past_due"
        return "active"

    def _subscription(self, sub: Sub) -> dict[str, Any]:
        periods = [p for p in sub.periods if p.start < self.now]
        current = periods[-1]
        status = self._status(sub, current)
        if status == "past_due":
            self.delinquent = True
        discount_ids = []
        for d in sub.discounts:
            if d.start < self.now:
                self.discounts.append(self._discount_object(sub, d))
                if d.end is None or d.end > self.now:
                    discount_ids.append(self.discount_id(d))
        invoice_ids = [self._period_invoices(sub, n, p) for n, p in enumerate(periods)]
        obj = fixture("subscription")
        items = [self._item(sub, "seats", self._price_for(sub, current), current.seats, current)]
        if sub.metered:
            items.append(self._item(sub, "metered", cat.METERED_PRICE, None, current))
        requested = sub.canceled_at is not None and sub.canceled_at < self.now
        anchor = periods[1].start if periods[0].trial and len(periods) > 1 else (sub.trial_end or periods[0].start)
        obj.update(
            id=self.sub_id(sub), customer=self.customer.id, created=sub.created, start_date=sub.created,
            billing_cycle_anchor=anchor, status=status, currency="usd",
            trial_start=sub.created if sub.trial_end else None, trial_end=sub.trial_end,
            canceled_at=sub.canceled_at if requested else None,
            ended_at=sub.ended_at if status == "canceled" else None,
            cancel_at=sub.ended_at if requested and status != "canceled" else None,
            cancel_at_period_end=bool(requested and status != "canceled" and sub.cancel_mode == "period_end"),
            discounts=discount_ids, latest_invoice=invoice_ids[-1], metadata={"account_id": self.customer.account_id},
            next_pending_invoice_item_invoice=None, pause_collection=None, pending_update=None,
            pending_setup_intent=None, transfer_data=None, billing_schedules=[], schedule=None,
            default_tax_rates=[], description=None, days_until_due=None,
        )
        obj["billing_cycle_anchor_config"] = None
        obj["cancellation_details"] = {
            "comment": None,
            "feedback": _FEEDBACK.get(sub.reason or "") if requested else None,
            "reason": _CANCEL_REASON.get(sub.cancel_mode or "") if requested else None,
        }
        obj["items"] = {
            "data": items, "has_more": False, "object": "list",
            "url": f"/v1/subscription_items?subscription={obj['id']}",
        }
        return obj

    # invoices ----------------------------------------------------------------------------
    def _applicable_discounts(self, sub: Sub, period: Period) -> list[Discount]:
        out = []
        for d in sub.discounts:
            if d.start > period.start or (d.end is not None and period.start >= d.end):
                continue
            if d.coupon.duration == "once":
                first_after = next(p for p in sub.periods if p.start >= d.start and not p.trial)
                if first_after is not period:
                    continue
            out.append(d)
        return out

    def _line(
        self, invoice_id: str, key: str, price_id: str, quantity: int, amount: int, start: int, end: int,
        description: str, parent: dict[str, Any], discounts: list[tuple[str, int]],
    ) -> dict[str, Any]:
        line = fixture("line_item")
        line.update(
            id=self._id("il", invoice_id, key), invoice=invoice_id, amount=amount, quantity=quantity,
            description=description, period={"start": start, "end": end}, parent=parent,
            discountable=bool(discounts) or key == "seats", discounts=[d for d, _ in discounts],
            discount_amounts=[{"amount": a, "discount": d} for d, a in discounts],
            subtotal=amount, metadata={}, pretax_credit_amounts=[], quantity_decimal=str(quantity),
        )
        line["pricing"] = {
            "type": "price_details",
            "price_details": {"price": price_id, "product": self.prices[price_id]["product"]},
            "unit_amount_decimal": self.prices[price_id]["unit_amount_decimal"],
        }
        taxable = amount - sum(a for _, a in discounts)
        line["taxes"] = (
            [{
                "amount": round(taxable * cat.VAT_PERCENT / 100), "tax_behavior": "exclusive",
                "tax_rate_details": {"tax_rate": cat.VAT_RATE_ID}, "taxability_reason": "standard_rated",
                "taxable_amount": taxable, "type": "tax_rate_details",
            }]
            if self.taxed
            else []
        )
        return line

    def _sub_parent(self, sub: Sub, role: str) -> dict[str, Any]:
        return {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None, "proration": False, "proration_details": {"credited_items": None},
                "subscription": self.sub_id(sub), "subscription_item": self.item_id(sub, role),
            },
            "type": "subscription_item_details",
        }

    def _item_parent(self, invoice_item: str, sub: Sub | None) -> dict[str, Any]:
        return {
            "invoice_item_details": {
                "invoice_item": invoice_item, "proration": False, "proration_details": {"credited_items": None},
                "subscription": self.sub_id(sub) if sub else None,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        }

    def _period_invoices(self, sub: Sub, n: int, period: Period) -> str:
        """The invoice(s) of one period; returns the id of the one that counts."""
        price_id = self._price_for(sub, period)
        plan_name = "Analytics add-on" if sub.kind == "addon" else cat.PLANS[period.plan].name
        if period.void_first:
            self.invoices.append(self._sub_invoice(sub, n, period, price_id, plan_name, void=True))
        invoice = self._sub_invoice(sub, n, period, price_id, plan_name, void=False)
        self.invoices.append(invoice)
        return invoice["id"]

    def _sub_invoice(self, sub: Sub, n: int, period: Period, price_id: str, plan_name: str, void: bool) -> dict[str, Any]:
        invoice_id = self._id("in", sub.index, n, "void" if void else "")
        unit = 0 if period.trial else _price_unit(price_id)
        # A voided invoice was issued with the wrong seat count, then replaced.
        seats = period.seats + 1 if void else period.seats
        amount = unit * seats
        applied = [] if period.trial else self._applicable_discounts(sub, period)
        discounts = []
        remaining = amount
        for d in applied:
            off = round(amount * d.coupon.percent_off / 100) if d.coupon.percent_off else (d.coupon.amount_off or 0)
            off = min(off, remaining)
            remaining -= off
            discounts.append((self.discount_id(d), off))
        label = f"Trial period for {plan_name}" if period.trial else f"{seats} × {plan_name} (per seat, {period.interval}ly)"
        lines = [
            self._line(invoice_id, "seats", price_id, seats, amount, period.start, period.end, label,
                       self._sub_parent(sub, "seats"), discounts)
        ]
        if period.metered_qty is not None and period.metered_period:
            start, end = period.metered_period
            lines.append(self._line(
                invoice_id, "metered", cat.METERED_PRICE, period.metered_qty,
                period.metered_qty * cat.METERED_CENTS_PER_UNIT, start, end,
                f"{period.metered_qty} × API calls (per 1,000)", self._sub_parent(sub, "metered"), [],
            ))
        if period.one_off:
            ii = self._id("ii", sub.index, n)
            lines.append(self._line(
                invoice_id, "one_off", cat.ONE_OFF_PRICE, 1, cat.ONE_OFF_CENTS, period.start, period.start,
                "Onboarding package (one-off)", self._item_parent(ii, sub), [],
            ))
        prev_start = sub.periods[n - 1].start if n else period.start
        return self._invoice(
            invoice_id, lines, period.start, sub, period, void=void,
            billing_reason="subscription_create" if n == 0 else "subscription_cycle",
            window=(prev_start, period.start),
        )

    def _manual_invoice(self, n: int, created: int) -> dict[str, Any]:
        invoice_id = self._id("in", "manual", n)
        ii = self._id("ii", "manual", n)
        line = self._line(
            invoice_id, "one_off", cat.ONE_OFF_PRICE, 1, cat.ONE_OFF_CENTS, created, created,
            "Onboarding package (one-off)", self._item_parent(ii, None), [],
        )
        return self._invoice(invoice_id, [line], created, None, None, void=False, billing_reason="manual",
                             window=(created, created))

    def _invoice(
        self, invoice_id: str, lines: list[dict[str, Any]], created: int, sub: Sub | None, period: Period | None,
        void: bool, billing_reason: str, window: tuple[int, int],
    ) -> dict[str, Any]:
        subtotal = sum(line["amount"] for line in lines)
        by_discount: dict[str, int] = {}
        for line in lines:
            for da in line["discount_amounts"]:
                by_discount[da["discount"]] = by_discount.get(da["discount"], 0) + da["amount"]
        discount_total = sum(by_discount.values())
        tax = sum(t["amount"] for line in lines for t in line["taxes"])
        total = subtotal - discount_total + tax
        status, transitions, attempts = self._invoice_status(created, period, void, sub is None)
        paid = total if status == "paid" else 0
        obj = fixture("invoice")
        obj["customer_address"].update(country=self.customer.country)
        obj.update(
            id=invoice_id, customer=self.customer.id, created=created, effective_at=created if status != "draft" else None,
            status=status, status_transitions=transitions, attempt_count=attempts, attempted=attempts > 0,
            amount_due=total, amount_paid=paid, amount_remaining=total - paid if status in ("open", "paid") else 0,
            subtotal=subtotal, subtotal_excluding_tax=subtotal, total_excluding_tax=subtotal - discount_total,
            total=total, total_discount_amounts=[{"amount": a, "discount": d} for d, a in by_discount.items()],
            total_taxes=[t for line in lines for t in line["taxes"]], discounts=list(by_discount),
            billing_reason=billing_reason, customer_email=self.customer.email, customer_name=self.customer.name,
            collection_method="send_invoice" if sub is None else "charge_automatically",
            due_date=created + 30 * DAY if sub is None else None, auto_advance=status in ("draft", "open"),
            period_start=window[0], period_end=window[1], number=None if status == "draft" else f"{invoice_id[3:11].upper()}-0001",
            amount_overpaid=0, shipping_cost=None, shipping_details=None, from_invoice=None,
            last_finalization_error=None, next_payment_attempt=None, webhooks_delivered_at=created,
            metadata={}, account_name="Retention Demo Inc.", total_pretax_credit_amounts=[],
            automatically_finalizes_at=created + 3600 if status == "draft" else None,
            default_tax_rates=[], customer_tax_ids=[], custom_fields=None, receipt_number=None,
        )
        obj["parent"] = (
            {"quote_details": None, "subscription_details": {"metadata": {}, "subscription": self.sub_id(sub)},
             "type": "subscription_details"}
            if sub is not None
            else None
        )
        obj["lines"] = {"data": lines, "has_more": False, "object": "list", "url": f"/v1/invoices/{invoice_id}/lines"}
        return obj

    def _invoice_status(
        self, created: int, period: Period | None, void: bool, manual: bool
    ) -> tuple[str, dict[str, int | None], int]:
        t: dict[str, int | None] = {
            "finalized_at": created, "marked_uncollectible_at": None, "paid_at": None, "voided_at": None,
        }
        if void:
            t["voided_at"] = created + 3600
            return "void", t, 0
        if manual:
            age = self.now - created
            if age < 10 * DAY:  # still being prepared
                t["finalized_at"] = None
                return "draft", t, 0
            if age < 30 * DAY:  # sent, due in 30 days
                return "open", t, 0
            t["paid_at"] = created + 10 * DAY
            return "paid", t, 1
        assert period is not None
        if period.paid_at is not None and period.paid_at < self.now:
            t["paid_at"] = period.paid_at
            retries = 1 + (period.paid_at - created) // (5 * DAY) if period.failed_until else 1
            return "paid", t, int(retries) if not period.trial else 0
        if period.failed_until is None:  # a renewal drafted within the last hour
            t["finalized_at"] = None
            return "draft", t, 0
        # The renewal failed and is not (yet) recovered.
        if period.failed_until <= self.now:
            t["marked_uncollectible_at"] = period.failed_until
            return "uncollectible", t, 4
        return "open", t, int(1 + (self.now - created) // (5 * DAY))


_FEEDBACK = {
    "unused": "unused",
    "too_expensive": "too_expensive",
    "switched_service": "switched_service",
    "missing_features": "missing_features",
}
_CANCEL_REASON = {
    "period_end": "cancellation_requested",
    "immediate": "cancellation_requested",
    "dunning": "payment_failed",
    "trial": "cancellation_requested",
}
