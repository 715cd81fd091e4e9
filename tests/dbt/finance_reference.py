"""An independent Python (pandas) computation of the billing marts from the same Stripe
objects, written from METRICS.md without reading the SQL, for the cross-check test.
Default switches only: $0 and 100%-off are churn, 30-day dunning, no reactivation window."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pandas as pd

DUNNING = timedelta(days=30)
MONTHS_PER_CYCLE = {"month": Fraction(1), "year": Fraction(12), "week": Fraction(12, 52), "day": Fraction(12, 365)}


def _dt(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)


def _cents(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)


def recurring_lines(objects: dict[str, list[dict]]) -> list[dict]:
    prices = {p["id"]: p for p in objects["prices"]}
    accounts = {c["id"]: c["metadata"]["account_id"] for c in objects["customers"]}
    out = []
    for inv in objects["invoices"]:
        if inv["status"] in ("draft", "void"):
            continue
        transitions = inv["status_transitions"]
        due = _dt(inv.get("due_date") or transitions.get("finalized_at") or inv["created"])
        for ln in inv["lines"]["data"]:
            details = ln["parent"].get("subscription_item_details")
            price = prices[ln["pricing"]["price_details"]["price"]]
            recurring = price.get("recurring")
            if ln["parent"]["type"] != "subscription_item_details" or not recurring:
                continue
            if recurring["usage_type"] != "licensed":
                continue
            discount = sum(d["amount"] for d in ln["discount_amounts"])
            if not details["proration"]:
                contract, net = Fraction(ln["amount"]), Fraction(ln["amount"] - discount)
            elif ln["amount"] > 0:
                contract = Fraction(price["unit_amount"] * ln["quantity"])
                net = contract * Fraction(ln["amount"] - discount, ln["amount"])
            else:
                contract = net = Fraction(0)
            cycle = MONTHS_PER_CYCLE[recurring["interval"]] * recurring["interval_count"]
            out.append({
                "id": ln["id"], "account": accounts[inv["customer"]], "sub": details["subscription"],
                "item": details["subscription_item"], "start": _dt(ln["period"]["start"]),
                "end": _dt(ln["period"]["end"]), "amount": ln["amount"], "net_amount": ln["amount"] - discount,
                "due": due, "paid": _dt(transitions.get("paid_at")),
                "contract_mrr": contract / cycle, "mrr": net / cycle,
            })
    return out


def _month_starts(first: datetime, last: datetime) -> list[datetime]:
    months, m = [], datetime(first.year, first.month, 1, tzinfo=timezone.utc)
    while m <= last:
        months.append(m)
        m = datetime(m.year + (m.month == 12), m.month % 12 + 1, 1, tzinfo=timezone.utc)
    return months


def mrr_monthly(objects: dict[str, list[dict]]) -> pd.DataFrame:
    lines = recurring_lines(objects)
    as_of = max(_dt(inv["created"]) for inv in objects["invoices"])
    months = _month_starts(min(ln["start"] for ln in lines), as_of)
    values: dict[tuple[str, datetime], tuple[Fraction, Fraction]] = {}
    for i, month in enumerate(months):
        snap = min(months[i + 1] if i + 1 < len(months) else _month_starts(month, month + timedelta(days=32))[-1], as_of)
        unpaid: dict[str, datetime] = {}
        for ln in lines:
            if ln["due"] <= snap and (ln["paid"] is None or ln["paid"] > snap) and ln["net_amount"] > 0:
                unpaid[ln["sub"]] = min(unpaid.get(ln["sub"], ln["due"]), ln["due"])
        best: dict[str, dict] = {}
        for ln in lines:
            if not (ln["start"] < snap <= ln["end"]):
                continue
            if ln["sub"] in unpaid and snap > unpaid[ln["sub"]] + DUNNING:
                continue
            cur = best.get(ln["item"])
            if cur is None or (ln["start"], ln["amount"], _neg(ln["id"])) > (cur["start"], cur["amount"], _neg(cur["id"])):
                best[ln["item"]] = ln
        for ln in best.values():
            c, m = values.get((ln["account"], month), (Fraction(0), Fraction(0)))
            values[(ln["account"], month)] = (c + ln["contract_mrr"], m + ln["mrr"])

    rows = []
    for account in sorted({a for a, _ in values}):
        first = min(m for a, m in values if a == account)
        prev_paying, prev_mrr, ever = False, Decimal("0.00"), False
        for month in (m for m in months if m >= first):
            contract, mrr = (_cents(v) for v in values.get((account, month), (Fraction(0), Fraction(0))))
            paying = mrr > 0
            if paying and not prev_paying:
                movement = "reactivation" if ever else "new"
            elif prev_paying and not paying:
                movement = "churn"
            elif not paying:
                prev_mrr = Decimal("0.00")
                continue
            else:
                movement = "expansion" if mrr > prev_mrr else "contraction" if mrr < prev_mrr else "retained"
            rows.append({"account_id": account, "month": month.date(), "contract_mrr": contract, "mrr": mrr,
                         "previous_mrr": prev_mrr, "is_paying": paying, "movement": movement,
                         "movement_amount": mrr - prev_mrr})
            ever = ever or paying
            prev_paying, prev_mrr = paying, mrr
    return pd.DataFrame(rows)


def _neg(line_id: str) -> tuple:
    # the SQL breaks ties on the smallest line id; reversing the comparison does the same
    return tuple(-ord(ch) for ch in line_id)


RETENTION_WINDOWS = (("1m", 1), ("t3m", 3), ("t12m", 12))


def _retention(paying: pd.DataFrame, month, k: int, name: str, first_month) -> dict:
    """NRR / GRR over the accounts paying k months before `month`, and the status column."""
    base_month = (pd.Timestamp(month) - pd.DateOffset(months=k)).date()
    base = paying[(paying.month == base_month) & (paying.mrr > 0)]
    now = paying[paying.month == month].set_index("account_id").mrr
    now_for_base = base.account_id.map(now).fillna(Decimal("0.00"))
    base_sum = base.mrr.sum()
    status = "history_too_short" if base_month < first_month else "ok" if len(base) else "no_paying_base"
    return {
        f"nrr_{name}": float(now_for_base.sum() / base_sum) if len(base) else None,
        f"grr_{name}": float(sum(min(a, b) for a, b in zip(now_for_base, base.mrr)) / base_sum) if len(base) else None,
        f"retention_{name}_status": status,
    }


def mrr_movements(monthly: pd.DataFrame, all_months: list) -> pd.DataFrame:
    rows = []
    paying = monthly[monthly.is_paying]
    for month in all_months:
        m = monthly[monthly.month == month]
        moved = lambda kind: m.loc[m.movement == kind, "movement_amount"].sum()  # noqa: E731
        start = m.previous_mrr.sum()
        start_logos = int((~m.movement.isin(["new", "reactivation"])).sum())
        rows.append({
            "month": month, "start_mrr": start, "new_mrr": moved("new"), "reactivation_mrr": moved("reactivation"),
            "expansion_mrr": moved("expansion"), "contraction_mrr": -moved("contraction"),
            "churned_mrr": -moved("churn"), "end_mrr": m.mrr.sum(), "start_logos": start_logos,
            "new_logos": int((m.movement == "new").sum()),
            "reactivated_logos": int((m.movement == "reactivation").sum()),
            "churned_logos": int((m.movement == "churn").sum()), "end_logos": int(m.is_paying.sum()),
            **{col: value for name, k in RETENTION_WINDOWS
               for col, value in _retention(paying, month, k, name, all_months[0]).items()},
        })
    return pd.DataFrame(rows)


def cohort_retention(monthly: pd.DataFrame, all_months: list) -> pd.DataFrame:
    paying = monthly[monthly.is_paying]
    cohort_of = paying.groupby("account_id").month.min()
    rows = []
    for cohort, members in cohort_of.groupby(cohort_of):
        accounts = set(members.index)
        start_mrr = paying[(paying.month == cohort) & paying.account_id.isin(accounts)].mrr.sum()
        for k, month in enumerate(m for m in all_months if m >= cohort):
            now = paying[(paying.month == month) & paying.account_id.isin(accounts)]
            rows.append({"cohort_month": cohort, "months_since": k, "cohort_size": len(accounts),
                         "paying_logos": len(now), "logo_retention": len(now) / len(accounts),
                         "mrr": now.mrr.sum(), "revenue_retention": float(now.mrr.sum() / start_mrr)})
    return pd.DataFrame(rows)
