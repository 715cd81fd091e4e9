"""Simulated Stripe objects: Stripe's own fields, references that resolve, consistent money and time."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from retention.simulate import catalogue as cat
from retention.simulate.stripe_objects import FIXTURES

from sim_files import clean_events, read_jsonl

VENDOR_FIXTURES = Path("/work/shared/vendor-specs/stripe-fixtures3.json")
RESOURCE = {
    "customers": "customer", "products": "product", "prices": "price", "coupons": "coupon",
    "discounts": "discount", "subscriptions": "subscription", "invoices": "invoice",
}


@pytest.fixture(scope="module")
def stripe(company: Path) -> dict[str, list[dict[str, Any]]]:
    return {name: read_jsonl(company / "stripe" / f"{name}.jsonl") for name in RESOURCE}


@pytest.fixture(scope="module")
def fixtures() -> dict[str, Any]:
    return json.loads(FIXTURES.read_text())["resources"]


def missing_fields(fixture: Any, obj: Any, path: str = "") -> list[str]:
    """Fixture fields absent from ``obj`` (recursing where both sides are objects or lists)."""
    out = []
    if isinstance(fixture, dict) and isinstance(obj, dict):
        for key, value in fixture.items():
            if key not in obj:
                out.append(f"{path}{key}")
            else:
                out += missing_fields(value, obj[key], f"{path}{key}.")
    elif isinstance(fixture, list) and isinstance(obj, list) and fixture and isinstance(fixture[0], dict):
        for n, item in enumerate(obj):
            out += missing_fields(fixture[0], item, f"{path}[{n}].")
    return out


def test_committed_fixture_copy_is_verbatim(fixtures: dict[str, Any]) -> None:
    if not VENDOR_FIXTURES.exists():
        pytest.skip("vendor spec not mounted")
    vendor = json.loads(VENDOR_FIXTURES.read_text())["resources"]
    assert {k: vendor[k] for k in fixtures} == fixtures


@pytest.mark.parametrize("name", sorted(RESOURCE))
def test_objects_carry_every_field_of_stripes_fixture(stripe: dict, fixtures: dict, name: str) -> None:
    objects = stripe[name]
    assert objects, name
    fixture = fixtures[RESOURCE[name]]
    for obj in objects:
        assert obj["object"] == RESOURCE[name]
        assert missing_fields(fixture, obj) == [], obj["id"]
    if name == "subscriptions":
        item_fixture = fixtures["subscription_item"]
        for obj in objects:
            for item in obj["items"]["data"]:
                assert missing_fields(item_fixture, item) == []
    if name == "invoices":
        line_fixture = fixtures["line_item"]
        for obj in objects:
            for line in obj["lines"]["data"]:
                assert missing_fields(line_fixture, line) == []


def test_references_resolve(company: Path, stripe: dict[str, list[dict[str, Any]]]) -> None:
    ids = {name: {o["id"] for o in objs} for name, objs in stripe.items()}
    accounts = {c["metadata"]["account_id"] for c in stripe["customers"]}
    assert len(accounts) == len(stripe["customers"])
    for event in clean_events(company):
        assert event["context"]["groupId"] in accounts
    items_of = {s["id"]: {i["id"] for i in s["items"]["data"]} for s in stripe["subscriptions"]}
    for price in stripe["prices"]:
        assert price["product"] in ids["products"]
    for d in stripe["discounts"]:
        assert d["source"]["coupon"] in ids["coupons"]
        assert d["customer"] in ids["customers"] and d["subscription"] in ids["subscriptions"]
    for sub in stripe["subscriptions"]:
        assert sub["customer"] in ids["customers"]
        assert sub["latest_invoice"] in ids["invoices"]
        assert set(sub["discounts"]) <= ids["discounts"]
        for item in sub["items"]["data"]:
            assert item["price"]["id"] in ids["prices"] and item["subscription"] == sub["id"]
    for inv in stripe["invoices"]:
        assert inv["customer"] in ids["customers"]
        assert set(inv["discounts"]) <= ids["discounts"]
        for line in inv["lines"]["data"]:
            assert line["invoice"] == inv["id"]
            assert line["pricing"]["price_details"]["price"] in ids["prices"]
            assert {d["discount"] for d in line["discount_amounts"]} <= ids["discounts"]
            details = line["parent"]["subscription_item_details"]
            if details is not None:
                assert details["subscription"] == inv["parent"]["subscription_details"]["subscription"]
                assert details["subscription_item"] in items_of[details["subscription"]]


def test_invoice_money_adds_up(stripe: dict[str, list[dict[str, Any]]]) -> None:
    for inv in stripe["invoices"]:
        lines = inv["lines"]["data"]
        subtotal = sum(line["amount"] for line in lines)
        discounts = sum(d["amount"] for line in lines for d in line["discount_amounts"])
        taxes = sum(t["amount"] for line in lines for t in line["taxes"])
        assert inv["subtotal"] == subtotal
        assert sum(d["amount"] for d in inv["total_discount_amounts"]) == discounts
        assert inv["total"] == subtotal - discounts + taxes == inv["amount_due"]
        assert inv["amount_paid"] == (inv["total"] if inv["status"] == "paid" else 0)
        for line in lines:
            assert isinstance(line["amount"], int) and 0 <= sum(d["amount"] for d in line["discount_amounts"]) <= line["amount"]
            unit = int(line["pricing"]["unit_amount_decimal"])
            assert line["amount"] == unit * line["quantity"] or inv["status"] == "void" or line["amount"] == 0


def test_invoice_periods_follow_subscription_state(company: Path, stripe: dict[str, list[dict[str, Any]]]) -> None:
    """Seat lines of the invoices that count tile each subscription's life without gaps or overlaps."""
    observed_until = _observed_until(company)
    seat_prices = {cat.plan_price_id(p, i) for p in cat.PLANS.values() for i in ("month", "year")} | {cat.ADDON_PRICE}
    periods: dict[str, list[tuple[int, int]]] = {}
    for inv in stripe["invoices"]:
        assert inv["created"] < observed_until
        if inv["status"] == "void" or inv["parent"] is None:
            continue
        sub = inv["parent"]["subscription_details"]["subscription"]
        for line in inv["lines"]["data"]:
            if line["pricing"]["price_details"]["price"] in seat_prices:
                periods.setdefault(sub, []).append((line["period"]["start"], line["period"]["end"]))
    for sub in stripe["subscriptions"]:
        spans = sorted(periods[sub["id"]])
        assert spans[0][0] == sub["start_date"]
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end == start, sub["id"]
        if sub["trial_end"]:
            assert spans[0] == (sub["trial_start"], sub["trial_end"])
        if sub["status"] == "canceled":
            assert sub["canceled_at"] <= sub["ended_at"] < observed_until
            assert spans[-1][0] < sub["ended_at"] <= spans[-1][1]  # no invoice after the end
        else:
            assert sub["ended_at"] is None
            assert spans[-1][0] < observed_until <= spans[-1][1]  # the current period is billed
            current = [i for i in sub["items"]["data"] if i["price"]["recurring"]["usage_type"] == "licensed"]
            assert (current[0]["current_period_start"], current[0]["current_period_end"]) == spans[-1]
        if sub["cancel_at_period_end"]:
            assert sub["status"] != "canceled" and sub["cancel_at"] == spans[-1][1]


def _observed_until(company: Path) -> int:
    text = json.loads((company / "simulation.json").read_text())["observed_until"]
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def test_every_billing_shape_downstream_must_handle_is_present(stripe: dict[str, list[dict[str, Any]]]) -> None:
    """This fixed company (seed 5) exercises each shape; a generator change that loses one fails here."""
    subs, invoices = stripe["subscriptions"], stripe["invoices"]
    assert {s["status"] for s in subs} >= {"trialing", "active", "past_due", "canceled"}
    assert {i["status"] for i in invoices} >= {"draft", "open", "paid", "uncollectible", "void"}
    assert any(s["cancel_at_period_end"] for s in subs)
    mid_period = [s for s in subs if s["ended_at"] and s["trial_end"] != s["ended_at"]
                  and s["ended_at"] < s["items"]["data"][0]["current_period_end"]]
    assert mid_period, "mid-month cancellations"
    assert max(Counter(s["customer"] for s in subs).values()) >= 2, "multiple subscriptions per account"
    prices = Counter(line["pricing"]["price_details"]["price"] for i in invoices for line in i["lines"]["data"])
    for price in ("price_starter_month", "price_growth_year", "price_free_month", cat.METERED_PRICE, cat.ONE_OFF_PRICE):
        assert prices[price] > 0, price
    coupons = {c["id"]: c for c in stripe["coupons"]}
    used = {d["source"]["coupon"] for d in stripe["discounts"]}
    assert {c["duration"] for c in coupons.values() if c["id"] in used} == {"once", "repeating", "forever"}
    assert any(coupons[c]["amount_off"] for c in used) and any(coupons[c]["percent_off"] == 100 for c in used)
    assert any(t["taxes"] for i in invoices for t in i["lines"]["data"])
