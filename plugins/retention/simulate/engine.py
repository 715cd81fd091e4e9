"""``simulate(SimulationConfig) -> SimulationResult``: a SaaS company in a box.

Order of work: accounts and their users, each account's commercial life, then the files
that life leaves behind (Stripe objects, Segment events day by day, NPS and support
exports), the ground truth and ``simulation.json``. Each part draws from its own seeded
random stream, so bad-input mode changes nothing but the faults it adds.

Output is written to ``<out>.partial`` and renamed into place at the end: a crash
leaves no half-written company behind, and a rerun replaces the previous one.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from retention.progress import SILENT, Progress
from retention.simulate import catalogue as cat
from retention.simulate import truth
from retention.simulate.accounts import NEVER, Accounts, account_id, generate_accounts
from retention.simulate.config import SimulationConfig, SimulationConfigError
from retention.simulate.events import EventGenerator
from retention.simulate.faults import FaultInjector
from retention.simulate.lifecycle import Life, LifeSimulator
from retention.simulate.output import SegmentWriter, json_bytes, write_csv, write_jsonl
from retention.simulate.stripe_objects import AccountBilling, Customer, catalogue_objects, coupon_objects, stable_id
from retention.simulate.surveys import NPS_HEADER, Feedback
from retention.simulate.timeline import DAY, Clock, iso

log = logging.getLogger(__name__)

SOURCE_ID = "product-app"  # the Segment source the events come from
GENERATOR_VERSION = 1
# Independent random streams (SeedSequence spawn keys), one per part of the company.
STREAMS = {"accounts": 1, "lives": 2, "events": 3, "faults": 4, "feedback": 5}
USERS_HEADER = ("user_id", "account_id", "email", "name", "role", "invited_at", "is_owner")
STRIPE_FILES = ("customers", "products", "prices", "coupons", "discounts", "subscriptions", "invoices")


@dataclass(frozen=True)
class SimulationResult:
    out: Path
    start_date: str
    end_date: str
    counts: dict[str, Any]

    @property
    def manifest(self) -> Path:
        return self.out / "simulation.json"


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, STREAMS[stream]]))


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def _prepare(out: Path) -> Path:
    """A fresh ``<out>.partial`` staging folder; refuses to replace a folder that is not ours."""
    if out.exists() and any(out.iterdir()) and not (out / "simulation.json").exists():
        raise SimulationConfigError(
            f"{out} exists and is not a simulated company (no simulation.json): choose an empty or new --out"
        )
    staging = out.with_name(out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def _publish(staging: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


class _Progress:
    """Logs progress at most every ``every`` seconds (wall time is only logged, never written)."""

    def __init__(self, every: float = 5.0):
        self.every, self.last = every, time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            return True
        return False


def simulate(cfg: SimulationConfig, progress: Progress = SILENT) -> SimulationResult:
    """Write the simulated company into ``cfg.out``; ``progress`` hears of each account's
    life, each account's billing and each day of events (the CLI's bars)."""
    clock = Clock(cfg.start_date, cfg.end_date)
    out = Path(cfg.out)
    staging = _prepare(out)
    log.info(
        "simulating preset=%s seed=%d accounts=%d months=%d (%s..%s) bad_input_rate=%s into %s",
        cfg.preset, cfg.seed, cfg.n_accounts, cfg.n_months, clock.start, clock.end, cfg.bad_input_rate, out,
    )
    accounts = generate_accounts(cfg.n_accounts, clock, cfg.growth_per_month, _rng(cfg.seed, "accounts"))
    life_sim = LifeSimulator(accounts, clock, cfg.trial_days, _rng(cfg.seed, "lives"))
    progress.start("simulate accounts' lives", total=accounts.n, unit="accounts")
    lives = []
    for i in range(accounts.n):
        lives.append(life_sim.simulate(i))
        progress.advance()
    log.info("lives simulated: %d accounts, %d users", accounts.n, len(accounts.user_account))

    counts: dict[str, Any] = {"accounts": accounts.n, "users": int(len(accounts.user_account))}
    progress.start("simulate Stripe billing", total=accounts.n, unit="accounts")
    billing = _write_billing(cfg, clock, accounts, lives, staging, counts, progress)
    progress.start("simulate product events", total=clock.n_days, unit="days")
    events = _write_events(cfg, clock, accounts, lives, staging, counts, progress)
    _write_feedback(cfg, clock, accounts, lives, staging, counts)
    _write_truth(clock, accounts, lives, billing, events, staging, counts)

    manifest = {
        "generator": "retention.simulate",
        "generator_version": GENERATOR_VERSION,
        "preset": cfg.preset,
        "seed": cfg.seed,
        "parameters": cfg.parameters(),
        "start_date": clock.start.isoformat(),
        "end_date": clock.end.isoformat(),
        "observed_until": iso(clock.end_ts),
        "segment_source_id": SOURCE_ID,
        "counts": counts,
    }
    (staging / "simulation.json").write_bytes(json_bytes(manifest))
    _publish(staging, out)
    log.info("simulation written to %s: %s", out, orjson.dumps(counts, option=orjson.OPT_SORT_KEYS).decode())
    return SimulationResult(out=out, start_date=clock.start.isoformat(), end_date=clock.end.isoformat(), counts=counts)


@dataclass
class _BillingTruths:
    customer_ids: list[str]
    per_account: list[truth.BillingTruth]


def _write_billing(
    cfg: SimulationConfig, clock: Clock, accounts: Accounts, lives: list[Life], root: Path, counts: dict[str, Any],
    bar: Progress = SILENT,
) -> _BillingTruths:
    stripe_dir = root / "stripe"
    stripe_dir.mkdir()
    now = clock.end_ts
    catalogue_created = clock.start_ts - 90 * DAY
    products, prices = catalogue_objects(catalogue_created)
    price_objects = {p["id"]: p for p in prices}
    month_ends = list(zip(clock.months(), [ts - 1 for ts in [*clock.month_starts()[1:], now]], strict=True))
    handles = {name: (stripe_dir / f"{name}.jsonl").open("wb") for name in ("customers", "subscriptions", "invoices", "discounts")}
    (root / "ground_truth").mkdir()
    mrr_file = (root / "ground_truth" / "mrr_monthly.csv").open("w", encoding="utf-8", newline="")
    mrr_file.write(",".join(truth.MRR_HEADER) + "\n")
    n = dict.fromkeys(("customers", "subscriptions", "invoices", "discounts"), 0)
    redeemed: dict[str, int] = {}
    status_counts: dict[str, dict[str, int]] = {"subscriptions": {}, "invoices": {}}
    result = _BillingTruths([], [])
    dump = orjson.OPT_SORT_KEYS
    progress = _Progress()
    try:
        for i in range(accounts.n):
            owner = int(accounts.user_offset[i])
            customer = Customer(
                index=i, account_id=account_id(i), id=stable_id("cus", cfg.seed, i), email=accounts.user_email(owner),
                name=accounts.name[i], country=cat.COUNTRIES[int(accounts.country[i])], created=int(accounts.signup_ts[i]),
            )
            builder = AccountBilling(cfg.seed, customer, lives[i], now, price_objects)
            subs = builder.build()
            objects = {
                "customers": [builder.customer_object()], "subscriptions": subs,
                "invoices": builder.invoices, "discounts": builder.discounts,
            }
            for name, objs in objects.items():
                for obj in objs:
                    handles[name].write(orjson.dumps(obj, option=dump) + b"\n")
                n[name] += len(objs)
            for d in builder.discounts:
                redeemed[d["source"]["coupon"]] = redeemed.get(d["source"]["coupon"], 0) + 1
            for name in ("subscriptions", "invoices"):
                for obj in objects[name]:
                    status_counts[name][obj["status"]] = status_counts[name].get(obj["status"], 0) + 1
            lines = truth.recurring_lines(builder.invoices, price_objects)
            for row in truth.mrr_rows(customer.account_id, lines, month_ends):
                mrr_file.write(",".join(map(str, row)) + "\n")
            result.customer_ids.append(customer.id)
            result.per_account.append(truth.billing_truth(lives[i], lines, month_ends, now, _day))
            bar.advance()
            if progress.due():
                log.info("billing: %d/%d accounts", i + 1, accounts.n)
    finally:
        for fh in handles.values():
            fh.close()
        mrr_file.close()
    n["products"] = write_jsonl(stripe_dir / "products.jsonl", products)
    n["prices"] = write_jsonl(stripe_dir / "prices.jsonl", prices)
    n["coupons"] = write_jsonl(stripe_dir / "coupons.jsonl", coupon_objects(catalogue_created, redeemed))
    counts["stripe"] = {name: n[name] for name in STRIPE_FILES}
    counts["stripe_status"] = {k: dict(sorted(v.items())) for k, v in status_counts.items()}
    log.info("stripe objects written: %s", counts["stripe"])
    return result


@dataclass
class _EventTruth:
    first_ms: dict[str, np.ndarray]
    report_n_ms: np.ndarray


def _write_events(
    cfg: SimulationConfig, clock: Clock, accounts: Accounts, lives: list[Life], root: Path, counts: dict[str, Any],
    bar: Progress = SILENT,
) -> _EventTruth:
    gen = EventGenerator(accounts, lives, clock, cfg.spec.events_per_active_seat_day, cfg.report_milestone_n,
                         _rng(cfg.seed, "events"))
    injector = FaultInjector(cfg.bad_input_rate, _rng(cfg.seed, "faults"), accounts.signup_ts, cfg.gzip_level)
    writer = SegmentWriter(root, SOURCE_ID, injector)
    by_kind = {"track": 0, "identify": 0, "group": 0}
    by_event = dict.fromkeys(cat.ALL_EVENTS, 0)
    progress = _Progress()
    days_done = 0
    for day, records in gen.files(cfg.spec.max_lines_per_file):
        writer.write_file(clock.day_ts(day), records)
        for rec in records:
            by_kind[rec.kind] += 1
        bar.advance(day - days_done, rows=len(records))
        days_done = day
        if progress.due():
            log.info("events: day %d/%d, %d records in %d files so far", day + 1, clock.n_days, injector.clean_lines, writer.files)
    bar.advance(clock.n_days - days_done)
    for name, total in zip(cat.ALL_EVENTS, gen.event_counts.tolist(), strict=True):
        by_event[name] = int(total)
    counts["events"] = {
        "records": injector.clean_lines, "files": writer.files, "gzip_bytes": writer.bytes,
        "by_type": by_kind, "by_event": by_event,
    }
    if cfg.bad_input_rate > 0:
        report = injector.report()
        (root / "faults_report.json").write_bytes(json_bytes(report))
        counts["faults"] = report["counts"]
    log.info("events written: %d records in %d files", injector.clean_lines, writer.files)
    return _EventTruth(gen.first_ms, gen.report_n_ms)


def _write_feedback(
    cfg: SimulationConfig, clock: Clock, accounts: Accounts, lives: list[Life], root: Path, counts: dict[str, Any]
) -> None:
    fb = Feedback(accounts, lives, clock, cfg.seed, _rng(cfg.seed, "feedback"))
    n_nps = n_tickets = 0
    for label, lo, hi in fb.months():
        n_nps += write_csv(root / "nps" / f"nps_responses_{label}.csv", NPS_HEADER, fb.nps_rows(label, lo, hi))
        n_tickets += write_jsonl(root / "support" / f"tickets_{label}.jsonl", fb.tickets(label, lo, hi))
    counts["nps_responses"], counts["support_tickets"] = n_nps, n_tickets


def _write_truth(
    clock: Clock, accounts: Accounts, lives: list[Life], billing: _BillingTruths, events: _EventTruth,
    root: Path, counts: dict[str, Any],
) -> None:
    def at(ms: int) -> str | None:
        return None if ms == NEVER else iso(ms / 1000)

    milestones = [
        events.first_ms[cat.PROJECT_CREATED], events.first_ms[cat.TEAMMATE_INVITED],
        events.first_ms[cat.INTEGRATION_INSTALLED], events.report_n_ms,
    ]
    rows = []
    activated = 0
    for i in range(accounts.n):
        reached = [int(m[i]) for m in milestones]
        activation = None if NEVER in reached else _day(max(reached) // 1000)
        activated += activation is not None
        bt = billing.per_account[i]
        lo, hi = int(accounts.user_offset[i]), int(accounts.user_offset[i + 1])
        rows.append((
            account_id(i), billing.customer_ids[i], accounts.name[i], cat.INDUSTRIES[int(accounts.industry[i])],
            cat.EMPLOYEE_BANDS[int(accounts.band[i])], cat.COUNTRIES[int(accounts.country[i])],
            iso(int(accounts.signup_ts[i])), f"{float(accounts.health[i]):.4f}", hi - lo,
            *(at(r) for r in reached), activation, bt.first_paid_month, bt.status_at_end,
            f"{bt.mrr_at_end:.4f}".rstrip("0").rstrip("."), bt.churn_date, bt.churn_reason,
            iso(lives[i].reactivated_at) if lives[i].reactivated_at is not None else None,
        ))
    write_csv(root / "ground_truth" / "accounts.csv", truth.ACCOUNT_HEADER, rows)
    users = [
        (accounts.user_id(r), account_id(int(accounts.user_account[r])), accounts.user_email(r), accounts.user_name(r),
         cat.ROLES[int(accounts.user_role[r])], iso(int(accounts.user_invite_ts[r])), bool(accounts.user_number[r] == 1))
        for r in range(len(accounts.user_account))
    ]
    write_csv(root / "ground_truth" / "users.csv", USERS_HEADER, users)
    statuses: dict[str, int] = {}
    for bt in billing.per_account:
        statuses[bt.status_at_end] = statuses.get(bt.status_at_end, 0) + 1
    counts["ground_truth"] = {"activated_accounts": activated, "status_at_end": dict(sorted(statuses.items()))}

