"""Small hand-built product raw data (docs/DATA_CONTRACTS.md section 2) plus the dbt runner
the product tests share.

Raw tables come from the ingestion DDL (retention.load.schema), Stripe billing from the
finance test helper (finance_raw), so dbt builds the real mrr_monthly from it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from finance_raw import StripeData
from finance_scenarios import renew

from retention import warehouse
from retention.load import landed, schema

REPO = Path(__file__).resolve().parents[2]
DBT_PROJECT = REPO / "dbt_project"
KEY_EVENTS = ("Project Created", "Integration Installed", "Report Created", "Campaign Sent", "Automation Created")
PRODUCT_SEEDS = (
    "product_event_catalogue", "product_milestones", "product_milestone_events",
    "product_health_weights", "product_segment_rules", "billing_products", "account_owners",
)
PRODUCT_PATHS = (
    "path:models/staging/product", "path:models/intermediate/product", "path:models/intermediate/lifecycle",
    "path:models/intermediate/segments", "path:models/marts/product",
)


def at(day: date | str, hour: int = 12) -> datetime:
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime(d.year, d.month, d.day, hour, tzinfo=timezone.utc)


@dataclass
class ProductData:
    """Rows for raw.events / identifies / groups / nps_responses / support_tickets."""

    events: list[tuple] = field(default_factory=list)
    identifies: list[tuple] = field(default_factory=list)
    groups: list[tuple] = field(default_factory=list)
    nps: list[tuple] = field(default_factory=list)
    tickets: list[tuple] = field(default_factory=list)
    _seq: int = 0

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def track(self, account: str, user: str, event: str, when: datetime, **properties) -> None:
        n = self._next()
        self.events.append((
            f"m{n:07d}", "track", event, user, None, account, when, when + timedelta(seconds=5),
            json.dumps(properties), json.dumps({"groupId": account}), 1, n,
        ))

    def account(self, account: str, signup: str, name: str, plan: str, users: int) -> list[str]:
        ids = [f"usr_{account[4:]}_{i:02d}" for i in range(1, users + 1)]
        self.groups.append((f"g{self._next():07d}", ids[0], account, at(signup, 9),
                            json.dumps({"name": name, "plan": plan, "created_at": f"{signup}T09:00:00Z"}), 1, self._seq))
        for i, u in enumerate(ids):
            self.identifies.append((f"i{self._next():07d}", u, account, at(signup, 9) + timedelta(minutes=i),
                                    json.dumps({"email": f"{u}@example.com", "name": f"User {u}"}), 1, self._seq))
        return ids

    def nps_response(self, account: str, user: str, score: int, when: str) -> None:
        n = self._next()
        self.nps.append((f"r{n:05d}", account, user, f"{user}@example.com", score, None, at(when), 1, n))

    def ticket(self, account: str, user: str, topic: str, when: str) -> None:
        n = self._next()
        self.tickets.append((f"t{n:05d}", account, user, f"{user}@example.com", topic, "help", "open",
                             at(when), None, 1, n))

    def load(self, url: str) -> None:
        with warehouse.connect(url) as conn:
            schema.ensure_schema(conn)
            months = {date(e[6].year, e[6].month, 1) for e in self.events}
            schema.ensure_month_partitions(conn, months)
            with conn.cursor() as cur:
                for table, rows in (
                    ("events", self.events), ("identifies", self.identifies), ("groups", self.groups),
                    ("nps_responses", self.nps), ("support_tickets", self.tickets),
                ):
                    if rows:
                        marks = ", ".join(["%s"] * len(rows[0]))
                        cur.executemany(f"insert into raw.{table} values ({marks})", rows)
            # what the loader records in each file's transaction: the earliest day loaded
            for source, rows, column in (("events", self.events, 6), ("nps", self.nps, 6), ("support", self.tickets, 7)):
                if rows:
                    landed.record_changed(conn, source, min(r[column] for r in rows).astimezone(timezone.utc).date())


def build_world(seed: int = 7) -> tuple[ProductData, StripeData]:
    """Twelve seat-priced accounts over Jan-Jun 2024 (some decline and churn) plus three
    hand-made edge accounts. Deterministic for a given seed."""
    rng = random.Random(seed)
    p, s = ProductData(), StripeData()
    s.price("price_seat", 1000, product="prod_starter")  # per-seat in the seed billing_products
    for i in range(1, 13):
        acc = f"acc_{i:06d}"
        signup = date(2024, 1, 1) + timedelta(days=i)
        seats = 2 + i % 5
        users = p.account(acc, signup.isoformat(), f"Company {i}", "starter", seats)
        churns = i % 3 == 0
        cycles = 3 if churns else 6
        renew(s, s.customer(acc), f"sub_{i:03d}", "price_seat", signup.isoformat(), cycles, 1000 * seats, quantity=seats)
        end = signup + timedelta(days=30 * cycles)
        health = rng.uniform(0.2, 0.8) if churns else rng.uniform(0.35, 1.0)
        p.track(acc, users[0], "Project Created", at(signup))
        if health > 0.3:
            p.track(acc, users[0], "Teammate Invited", at(signup, 13), invitee_email="x@example.com")
        day = signup
        while day < min(end, date(2024, 6, 30) + timedelta(days=1)):
            fade = max(0.05, 1 - (day - signup).days / (30 * cycles)) if churns else 1.0
            for u in users:
                if rng.random() < health * fade:
                    event = rng.choice(KEY_EVENTS[: 2 + round(health * 3)])
                    props = {"recipients": rng.randint(10, 200)} if event == "Campaign Sent" else {}
                    p.track(acc, u, event, at(day, rng.randint(8, 18)), **props)
                if rng.random() < 0.3:
                    p.track(acc, u, "Signed In", at(day, 8))
            day += timedelta(days=1)
        if i % 4 == 0:
            p.nps_response(acc, users[-1], rng.randint(0, 10), "2024-06-15")
        if i % 2 == 0:
            p.nps_response(acc, users[0], rng.randint(0, 10), "2024-06-20")
    return p, s


def dbt(url: str, *args: str, target: Path, check: bool = True, project: Path = DBT_PROJECT) -> subprocess.CompletedProcess:
    """Run dbt against database ``url`` with its own target/log dirs (engineers share the project)."""
    env = dict(os.environ)
    env.update(warehouse.dbt_env(url))
    env["DBT_TARGET_PATH"] = str(target)
    env["DBT_LOG_PATH"] = str(target)
    cmd = [str(Path(sys.executable).parent / "dbt"), *args, "--project-dir", str(project),
           "--profiles-dir", str(project)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")
    return proc


def build_product(url: str, target: Path, *extra: str) -> None:
    """Seeds (the parents' too), parents (finance included) without their tests, then our
    seeds, models and tests."""
    vars_ = ["--vars", json.dumps({"product_as_of_date": "2024-06-30"})]
    dbt(url, "seed", "--select", *PRODUCT_SEEDS, *(f"+{p}" for p in PRODUCT_PATHS), *vars_, target=target)
    dbt(url, "run", "--select", *(f"+{p}" for p in PRODUCT_PATHS), "--exclude", *PRODUCT_PATHS, *vars_, target=target)
    dbt(url, "build", "--select", *PRODUCT_PATHS, *PRODUCT_SEEDS, *vars_, *extra, target=target)
