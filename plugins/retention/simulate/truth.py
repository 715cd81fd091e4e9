"""Ground truth the pipeline never reads: what really happened, for tests and analysts.

``ground_truth/mrr_monthly.csv`` applies docs/METRICS.md's defaults to the invoices as
they were written: at each month-end instant ``T`` (the last second of the month) a
recurring licensed line counts when its service period contains ``T``, its invoice is
not void, and it is paid or drafted, or ``T`` is within the 30-day dunning window of
its period start. Metered and one-off lines and taxes never count; annual lines count
one twelfth. ``mrr`` is after discounts, ``contract_mrr`` before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from retention.simulate import catalogue as cat
from retention.simulate.lifecycle import DUNNING_DAYS, Life
from retention.simulate.timeline import DAY

DUNNING_WINDOW = DUNNING_DAYS * DAY  # METRICS.md default, equal to the simulated Stripe retry period
MRR_HEADER = ("account_id", "month", "mrr_cents", "contract_mrr_cents", "paid_seats", "plans")
ACCOUNT_HEADER = (
    "account_id", "customer_id", "company_name", "industry", "employees", "country", "signup_at",
    "latent_health", "n_users", "first_project_at", "teammate_invited_at", "integration_installed_at",
    "key_feature_n_at", "true_activation_date", "first_paid_month", "status_at_end", "mrr_at_end_cents",
    "true_churn_date", "churn_reason", "reactivated_at",
)
_RECURRING = {cat.plan_price_id(p, i) for p in cat.PLANS.values() for i in ("month", "year")} | {cat.ADDON_PRICE}


@dataclass(frozen=True)
class CountedLine:
    start: int
    end: int
    months: int  # 1 (monthly) or 12 (annual)
    amount: int
    discount: int
    quantity: int
    price: str
    status: str

    def counts_at(self, ts: int) -> bool:
        if not self.start <= ts < self.end or self.status == "void":
            return False
        return self.status in ("paid", "draft") or ts < self.start + DUNNING_WINDOW


def recurring_lines(invoices: list[dict[str, Any]], prices: dict[str, dict[str, Any]]) -> list[CountedLine]:
    out = []
    for inv in invoices:
        for line in inv["lines"]["data"]:
            price = line["pricing"]["price_details"]["price"]
            if price not in _RECURRING:
                continue
            interval = prices[price]["recurring"]["interval"]
            out.append(CountedLine(
                start=line["period"]["start"], end=line["period"]["end"], months=12 if interval == "year" else 1,
                amount=line["amount"], discount=sum(d["amount"] for d in line["discount_amounts"]),
                quantity=line["quantity"], price=price, status=inv["status"],
            ))
    return out


def _cents(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".")


def mrr_rows(account: str, lines: list[CountedLine], month_ends: list[tuple[str, int]]) -> list[tuple[object, ...]]:
    rows = []
    for label, ts in month_ends:
        live = [ln for ln in lines if ln.counts_at(ts)]
        if not live:
            continue
        contract = sum(ln.amount / ln.months for ln in live)
        mrr = sum((ln.amount - ln.discount) / ln.months for ln in live)
        seats = sum(ln.quantity for ln in live if ln.price != cat.ADDON_PRICE)
        plans = "+".join(sorted({ln.price.removeprefix("price_") for ln in live}))
        rows.append((account, label, _cents(mrr), _cents(contract), seats, plans))
    return rows


@dataclass(frozen=True)
class BillingTruth:
    first_paid_month: str | None
    status_at_end: str  # paying | past_due | trialing | free | discounted_to_zero | churned | never_paid
    mrr_at_end: float
    churn_date: str | None  # end of the last paid service period, for churned payers
    churn_reason: str | None


def billing_truth(
    life: Life, lines: list[CountedLine], month_ends: list[tuple[str, int]], now: int, day_of: Callable[[int], str]
) -> BillingTruth:
    paying_months = [label for label, ts in month_ends if sum(ln.amount - ln.discount for ln in lines if ln.counts_at(ts)) > 0]
    end_lines = [ln for ln in lines if ln.counts_at(now - 1)]
    mrr_end = sum((ln.amount - ln.discount) / ln.months for ln in end_lines)
    paid = [ln for ln in lines if ln.status == "paid" and ln.amount - ln.discount > 0]
    mains = [s for s in life.subs if s.kind == "main"]
    last = mains[-1]
    current = next((p for p in last.periods if p.start <= now - 1 < p.end), None)
    ended = last.ended_at is not None and last.ended_at <= now  # a later end is not known yet
    reason = None
    if mrr_end > 0:
        status = "past_due" if any(ln.status in ("open", "uncollectible") for ln in end_lines) else "paying"
        if ended:  # canceled mid-period: still paying at month end, churns when the paid period ends
            reason = last.reason
    elif not ended and current is not None and current.trial:
        status = "trialing"
    elif not paid:
        status = "never_paid"
        reason = last.reason if ended else None
    elif not ended and current is not None and current.plan == cat.FREE.key:
        status, reason = "free", "downgraded_to_free"
    elif not ended:
        status, reason = "discounted_to_zero", "full_discount"
    else:
        status, reason = "churned", last.reason
    # The end of the last paid service period; after the end date for a mid-period
    # cancellation (status still paying: the month-end MRR counts it).
    lost = status in ("free", "churned", "discounted_to_zero") or (reason is not None and status != "never_paid")
    churn_date = day_of(max(ln.end for ln in paid)) if lost and paid else None
    if churn_date and status == "churned" and last.cancel_mode == "dunning" and last.ended_at is not None:
        churn_date = day_of(last.ended_at)  # delinquent churn: when the dunning window closed
    return BillingTruth(
        first_paid_month=paying_months[0] if paying_months else None,
        status_at_end=status,
        mrr_at_end=mrr_end,
        churn_date=churn_date,
        churn_reason=reason,
    )
