"""Each account's commercial life: trial, conversion, renewals, changes, dunning, churn.

The life is simulated forward (possibly past the end date) and then *observed* at
``now`` = the clock's exclusive end: only what happened before ``now`` reaches the
Stripe objects, the events and the ground truth. Everything downstream (Stripe objects,
usage intensity, plan-change events, ground truth MRR) is derived from these records, so
billing and behaviour cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retention.simulate import catalogue as cat
from retention.simulate.accounts import NEVER, Accounts
from retention.simulate.timeline import DAY, Clock, add_months

FINALIZE_DELAY = 3600  # seconds a renewal invoice stays a draft
DUNNING_DAYS = 30  # failed renewals are retried for this long, then the subscription is canceled
VOLUNTARY_REASONS = ("unused", "too_expensive", "switched_service", "missing_features")


@dataclass(slots=True)
class Discount:
    coupon: cat.Coupon
    start: int
    end: int | None  # repeating coupons end; once/forever have no end (Stripe: null)
    index: int  # per-account sequence, for ids


@dataclass(slots=True)
class Period:
    start: int
    end: int
    plan: str
    interval: str  # month | year
    seats: int
    trial: bool = False
    paid_at: int | None = None  # None: payment failed and never recovered
    failed_until: int | None = None  # dunning end when the first attempt failed
    void_first: bool = False  # a wrong invoice was issued and voided before the right one
    one_off: bool = False  # an onboarding invoice item rides on this invoice
    metered_qty: int | None = None  # usage (thousands of API calls) of the previous period
    metered_period: tuple[int, int] | None = None


@dataclass(slots=True)
class Sub:
    index: int  # per-account sequence, for ids
    kind: str  # main | addon
    created: int
    trial_end: int | None = None
    periods: list[Period] = field(default_factory=list)
    canceled_at: int | None = None  # when cancellation was requested
    ended_at: int | None = None  # when the subscription ended
    cancel_mode: str | None = None  # period_end | immediate | dunning | trial
    reason: str | None = None
    discounts: list[Discount] = field(default_factory=list)
    metered: bool = False


@dataclass(slots=True)
class Life:
    subs: list[Sub] = field(default_factory=list)
    plan_changes: list[tuple[int, str, str]] = field(default_factory=list)  # (ts, from, to)
    windows: list[tuple[int, int, bool]] = field(default_factory=list)  # usage (start, end, declines)
    free_spans: list[tuple[int, int]] = field(default_factory=list)  # on the $0 plan
    manual_invoices: list[int] = field(default_factory=list)  # creation times of one-off invoices
    reactivated_at: int | None = None


def _initial_plan(band: int, rng: np.random.Generator) -> cat.Plan:
    p = np.array([[0.7, 0.25, 0.05], [0.45, 0.45, 0.1], [0.2, 0.55, 0.25], [0.1, 0.45, 0.45], [0.05, 0.35, 0.6]])
    return cat.PAID_PLANS[int(rng.choice(3, p=p[band]))]


class LifeSimulator:
    """Simulates one account at a time; all randomness comes from ``rng`` in a fixed order."""

    def __init__(self, accounts: Accounts, clock: Clock, trial_days: int, rng: np.random.Generator):
        self.acc = accounts
        self.now = clock.end_ts
        self.trial_days = trial_days
        self.rng = rng
        self.activation = accounts.planned_activation_ts()

    def seats_at(self, i: int, ts: int, slack: int) -> int:
        lo, hi = self.acc.user_offset[i], self.acc.user_offset[i + 1]
        invited = int(np.count_nonzero(self.acc.user_invite_ts[lo:hi] <= ts))
        return max(1, invited + slack)

    def monthly_hazard(self, i: int, ts: int) -> float:
        h = float(self.acc.health[i])
        hazard = 0.006 + 0.09 * (1.0 - h) ** 2
        if self.activation[i] > ts:
            hazard *= 3.0
        return hazard

    def simulate(self, i: int) -> Life:
        rng, acc = self.rng, self.acc
        h = float(acc.health[i])
        life = Life()
        signup = int(acc.signup_ts[i])
        plan = _initial_plan(int(acc.band[i]), rng)
        interval = "year" if rng.random() < 0.08 + 0.2 * h else "month"
        slack = int(rng.integers(0, 3)) if h < 0.5 else 0
        sub = Sub(index=0, kind="main", created=signup, metered=plan is cat.SCALE and rng.random() < 0.6)
        life.subs.append(sub)
        start = signup
        if rng.random() < 0.85:  # most sign up for a trial
            trial_end = signup + self.trial_days * DAY
            sub.trial_end = trial_end
            sub.periods.append(
                Period(signup, trial_end, plan.key, interval, self.seats_at(i, signup, 0), trial=True, paid_at=signup)
            )
            activated = self.activation[i] <= trial_end
            p_convert = (0.5 + 0.45 * h) if activated else (0.2 + 0.45 * h)
            if rng.random() >= p_convert:
                sub.canceled_at = sub.ended_at = trial_end
                sub.cancel_mode, sub.reason = "trial", "trial_not_converted"
                life.windows.append((signup, trial_end + int(rng.integers(0, 6 * DAY)), False))
                return life
            start = trial_end
        self._add_conversion_discount(i, sub, start, life)
        usage_start = signup
        while True:
            ended, plan, interval = self._run_subscription(i, sub, start, plan, interval, slack, life)
            usage_end = ended if sub.ended_at is None else min(ended, sub.ended_at)
            life.windows.append((usage_start, usage_end, sub.reason in VOLUNTARY_REASONS))
            if sub.ended_at is None or sub.reason not in VOLUNTARY_REASONS or life.reactivated_at is not None:
                break
            if rng.random() >= 0.3 * h:
                break
            again = sub.ended_at + int(rng.integers(20 * DAY, 150 * DAY))
            if again >= self.now:
                break
            life.reactivated_at = usage_start = start = again
            sub = Sub(index=len(life.subs), kind="main", created=again, metered=sub.metered)
            life.subs.append(sub)
        self._end_addons_with_main(life)
        if rng.random() < 0.2:  # an onboarding package sold on a one-off, manually sent invoice
            life.manual_invoices.append(signup + int(rng.integers(3 * DAY, 120 * DAY)))
        return life

    @staticmethod
    def _end_addons_with_main(life: Life) -> None:
        """An add-on cannot outlive the account's last main subscription."""
        last_main = [s for s in life.subs if s.kind == "main"][-1]
        if last_main.ended_at is None:
            return
        for sub in life.subs:
            if sub.kind == "addon" and (sub.ended_at is None or sub.ended_at > last_main.ended_at):
                sub.periods = [p for p in sub.periods if p.start < last_main.ended_at]
                sub.canceled_at = sub.ended_at = last_main.ended_at
                sub.cancel_mode, sub.reason = "immediate", last_main.reason

    def _add_conversion_discount(self, i: int, sub: Sub, start: int, life: Life) -> None:
        rng = self.rng
        industry = cat.INDUSTRIES[int(self.acc.industry[i])]
        roll = rng.random()
        coupon = None
        if industry == "nonprofit" and roll < 0.6:
            coupon = cat.NONPROFIT
        elif roll < 0.10:
            coupon = cat.WELCOME
        elif roll < 0.17:
            coupon = cat.QUARTER
        elif roll < 0.21:
            coupon = cat.PARTNER
        if coupon is not None:
            sub.discounts.append(self._discount(coupon, start, life))

    def _discount(self, coupon: cat.Coupon, start: int, life: Life) -> Discount:
        index = sum(len(s.discounts) for s in life.subs)
        end = add_months(start, coupon.duration_in_months) if coupon.duration == "repeating" else None
        return Discount(coupon, start, end, index)

    def _run_subscription(
        self, i: int, sub: Sub, anchor: int, plan: cat.Plan, interval: str, slack: int, life: Life
    ) -> tuple[int, cat.Plan, str]:
        """Bill periods from ``anchor`` until the subscription ends or passes ``now``.

        Period bounds are whole months from the billing-cycle anchor, as Stripe bills.
        Returns (when usage of the product ends, ``now`` if it does not; final plan; interval).
        """
        rng, h = self.rng, float(self.acc.health[i])
        elapsed = 0  # months since the anchor
        addon_done = False
        while (start := add_months(anchor, elapsed)) < self.now:
            months = 12 if interval == "year" else 1
            end = add_months(anchor, elapsed + months)
            elapsed += months
            period = Period(start, end, plan.key, interval, self.seats_at(i, start, slack))
            # Stripe finalizes (and charges) a renewal invoice about an hour after drafting it.
            period.paid_at = start + (FINALIZE_DELAY if sub.periods else 0) + int(rng.integers(0, 600))
            if not sub.periods and plan.month_cents and rng.random() < 0.15:
                period.one_off = True
            if sub.metered and sub.periods and not sub.periods[-1].trial:
                prev = sub.periods[-1]
                period.metered_qty = int(rng.poisson(5 + 40 * h * period.seats))
                period.metered_period = (prev.start, prev.end)
            sub.periods.append(period)
            if not plan.month_cents:
                continue  # the $0 plan: no payment, no churn decision
            if rng.random() < 0.01:
                period.void_first = True
            # Payment: a few renewals fail; some recover within the dunning window.
            if rng.random() < 0.03 + 0.06 * (1.0 - h):
                period.failed_until = start + DUNNING_DAYS * DAY
                if rng.random() < 0.55:
                    period.paid_at = start + int(rng.integers(2 * DAY, (DUNNING_DAYS - 1) * DAY))
                else:
                    period.paid_at = None
                    sub.canceled_at = sub.ended_at = period.failed_until
                    sub.cancel_mode, sub.reason = "dunning", "payment_failed"
                    return sub.ended_at, plan, interval
            # Voluntary churn during this period.
            p_churn = 1.0 - (1.0 - self.monthly_hazard(i, start)) ** months
            if rng.random() < p_churn:
                if h > 0.3 and rng.random() < 0.15 and not any(d.coupon is cat.SAVE_OFFER for d in sub.discounts):
                    sub.discounts.append(self._discount(cat.SAVE_OFFER, end, life))  # saved, for now
                elif h < 0.4 and rng.random() < 0.3:
                    # Paid -> $0: the free plan, billed monthly from the same anchor.
                    life.plan_changes.append((end, plan.key, cat.FREE.key))
                    plan, interval = cat.FREE, "month"
                    back = self._free_until(i, end)
                    while (free_start := add_months(anchor, elapsed)) < min(back, self.now):
                        elapsed += 1
                        free = Period(free_start, add_months(anchor, elapsed), plan.key, interval, self.seats_at(i, free_start, 0))
                        free.paid_at = free_start
                        sub.periods.append(free)
                    upgraded = add_months(anchor, elapsed)
                    life.free_spans.append((end, upgraded if back < self.now else NEVER))
                    if back < self.now:
                        life.plan_changes.append((upgraded, cat.FREE.key, cat.STARTER.key))
                        plan = cat.STARTER
                    continue
                else:
                    reason = str(rng.choice(VOLUNTARY_REASONS, p=[0.4, 0.3, 0.15, 0.15] if h < 0.5 else [0.1, 0.35, 0.35, 0.2]))
                    request = start + int(rng.integers(DAY, max(2 * DAY, end - start - DAY)))
                    sub.reason, sub.canceled_at = reason, request
                    if interval == "month" and rng.random() < 0.3:
                        sub.cancel_mode, sub.ended_at = "immediate", request
                    else:
                        sub.cancel_mode, sub.ended_at = "period_end", end
                    return min(request + int(rng.integers(0, 7 * DAY)), sub.ended_at), plan, interval
            # Renewal changes: upgrades and downgrades (seat changes follow invites).
            roll = rng.random()
            if plan.rank < 3 and roll < 0.035 * h * months:
                new = cat.PAID_PLANS[plan.rank]
                life.plan_changes.append((end, plan.key, new.key))
                plan = new
            elif plan.rank > 1 and roll > 1 - 0.03 * (1 - h) * months:
                new = cat.PAID_PLANS[plan.rank - 2]
                life.plan_changes.append((end, plan.key, new.key))
                plan = new
            if slack > 0 and rng.random() < 0.1:
                slack -= 1
            if not addon_done and end < self.now and rng.random() < 0.02 * h * months:
                addon_done = True
                self._addon(life, end)
        return self.now, plan, interval

    def _free_until(self, i: int, free_from: int) -> int:
        """When an account on the $0 plan upgrades again (may be after ``now``)."""
        months = self.rng.geometric(max(0.02, 0.12 * float(self.acc.health[i])))
        return add_months(free_from, int(months))

    def _addon(self, life: Life, anchor: int) -> None:
        """A second subscription (the analytics add-on), sometimes canceled later."""
        sub = Sub(index=len(life.subs), kind="addon", created=anchor)
        life.subs.append(sub)
        elapsed = 0
        while (start := add_months(anchor, elapsed)) < self.now:
            elapsed += 1
            end = add_months(anchor, elapsed)
            sub.periods.append(Period(start, end, "addon", "month", 1, paid_at=start + int(self.rng.integers(0, 600))))
            if self.rng.random() < 0.05:
                sub.canceled_at = start + int(self.rng.integers(DAY, 20 * DAY))
                sub.cancel_mode, sub.ended_at, sub.reason = "period_end", end, "missing_features"
                return
