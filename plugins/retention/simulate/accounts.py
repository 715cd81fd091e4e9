"""Accounts, their users (seats) and the latent health that drives everything else.

All draws are vectorised with numpy; the result is a handful of arrays indexed by account
(position ``i`` is ``acc_{i+1:06d}``) and by user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from retention.simulate import catalogue as cat
from retention.simulate.timeline import DAY, Clock

NEVER = np.iinfo(np.int64).max  # "never happens" for timestamp arrays


def account_id(i: int) -> str:
    return f"acc_{i + 1:06d}"


def user_id(i: int, n: int) -> str:
    return f"usr_{i + 1:06d}_{n:02d}"


@dataclass
class Accounts:
    signup_ts: np.ndarray  # int64 unix seconds, ascending
    health: np.ndarray  # float in (0, 1): the latent health
    band: np.ndarray  # index into cat.EMPLOYEE_BANDS
    industry: np.ndarray  # index into cat.INDUSTRIES
    country: np.ndarray  # index into cat.COUNTRIES
    name: list[str]
    domain: list[str]
    # Planned adoption time of each key feature (cat.KEY_FEATURES order), NEVER if never.
    adopt_ts: np.ndarray  # shape (n, len(KEY_FEATURES)) int64
    feature_pref: np.ndarray  # shape (n, len(USAGE_EVENTS)) relative taste per usage event
    base_rate: np.ndarray  # mean usage events per active seat per weekday
    # Users: sorted by account then number; user 1 is the owner.
    user_account: np.ndarray  # int64 account index
    user_number: np.ndarray  # 1-based within the account
    user_invite_ts: np.ndarray  # owner: signup time
    user_first: np.ndarray  # index into cat.FIRST_NAMES
    user_last: np.ndarray  # index into cat.LAST_NAMES
    user_role: np.ndarray  # index into cat.ROLES
    user_offset: np.ndarray  # first user row of each account, shape (n + 1,)

    @property
    def n(self) -> int:
        return len(self.signup_ts)

    def user_email(self, row: int) -> str:
        first = cat.FIRST_NAMES[self.user_first[row]].lower()
        last = cat.LAST_NAMES[self.user_last[row]].lower()
        return f"{first}.{last}{self.user_number[row]}@{self.domain[self.user_account[row]]}"

    def user_name(self, row: int) -> str:
        return f"{cat.FIRST_NAMES[self.user_first[row]]} {cat.LAST_NAMES[self.user_last[row]]}"

    def user_id(self, row: int) -> str:
        return user_id(int(self.user_account[row]), int(self.user_number[row]))

    def planned_activation_ts(self) -> np.ndarray:
        """When the account is expected to have met every milestone (NEVER if not)."""
        key = self.adopt_ts[:, [0, 1, 2]]  # project, integration, reports
        invites = self.first_invite_ts()
        reports_done = np.where(key[:, 2] == NEVER, NEVER, key[:, 2] + 5 * DAY)
        stacked = np.column_stack([key[:, 0], key[:, 1], reports_done, invites])
        return np.where((stacked == NEVER).any(axis=1), NEVER, stacked.max(axis=1))

    def first_invite_ts(self) -> np.ndarray:
        first = np.full(self.n, NEVER, dtype=np.int64)
        second = self.user_number == 2
        first[self.user_account[second]] = self.user_invite_ts[second]
        return first


def _signup_times(n: int, clock: Clock, growth: float, rng: np.random.Generator) -> np.ndarray:
    months = clock.month_starts()
    weights = (1.0 + growth) ** np.arange(len(months))
    counts = rng.multinomial(n, weights / weights.sum())
    times = []
    for (start, end), k in zip(zip(months, [*months[1:], clock.end_ts]), counts, strict=True):
        times.append(rng.integers(start, end, size=k, dtype=np.int64))
    return np.sort(np.concatenate(times))


def _company_names(n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    a = rng.integers(0, len(cat.NAME_PARTS_A), n)
    b = rng.integers(0, len(cat.NAME_PARTS_B), n)
    names, domains = [], []
    for i in range(n):
        name = f"{cat.NAME_PARTS_A[a[i]]} {cat.NAME_PARTS_B[b[i]]}"
        names.append(f"{name} {i + 1}" if n > 400 else name)
        slug = re.sub(r"[^a-z0-9]+", "", name.lower())
        domains.append(f"{slug}{i + 1}.example.com")
    return names, domains


def generate_accounts(n: int, clock: Clock, growth: float, rng: np.random.Generator) -> Accounts:
    signup = _signup_times(n, clock, growth, rng)
    health = rng.beta(2.2, 1.8, n)
    band = rng.choice(len(cat.EMPLOYEE_BANDS), size=n, p=cat.EMPLOYEE_BAND_P)
    industry = rng.integers(0, len(cat.INDUSTRIES), n)
    country = rng.integers(0, len(cat.COUNTRIES), n)
    names, domains = _company_names(n, rng)

    # Key feature adoption: healthier accounts adopt more features, sooner.
    n_key = len(cat.KEY_FEATURES)
    ease = np.array([0.85, 0.6, 0.75, 0.45, 0.35])  # project, integration, report, campaign, automation
    p_adopt = np.clip(ease[None, :] + 1.2 * (health[:, None] - 0.5) + rng.normal(0, 0.05, (n, n_key)), 0.02, 0.99)
    adopts = rng.random((n, n_key)) < p_adopt
    mean_delay_days = 0.3 + 25.0 * (1.0 - health)[:, None] * np.array([0.3, 1.0, 0.6, 1.3, 1.6])[None, :]
    delay = (rng.exponential(1.0, (n, n_key)) * mean_delay_days * DAY).astype(np.int64) + 600
    adopt_ts = np.where(adopts, signup[:, None] + delay, NEVER)

    feature_pref = rng.gamma(2.0, 0.5, (n, len(cat.USAGE_EVENTS))) * np.array(cat.USAGE_WEIGHTS)[None, :]
    base_rate = np.exp(rng.normal(0, 0.35, n)) * (0.35 + 1.3 * health)

    # Seats: the owner plus teammates invited over the first weeks; healthy accounts grow.
    seats_mean = np.array(cat.SEATS_MEAN_BY_BAND)[band] * (0.5 + health)
    n_users = 1 + rng.poisson(np.maximum(seats_mean - 1, 0.2))
    user_account = np.repeat(np.arange(n, dtype=np.int64), n_users)
    user_offset = np.concatenate([[0], np.cumsum(n_users)]).astype(np.int64)
    user_number = (np.arange(len(user_account)) - user_offset[user_account] + 1).astype(np.int64)
    # The first teammate comes soon for engaged accounts; later ones further apart.
    invite_scale = (1.0 + 25.0 * (1.0 - health))[user_account] * (1.0 + 0.5 * np.maximum(user_number - 2, 0)) * DAY
    gaps = rng.exponential(1.0, len(user_account)) * invite_scale + 3600
    gaps[user_number == 1] = 0
    # Cumulative gaps within each account: invites arrive one after another.
    cum = np.cumsum(gaps)
    cum -= np.repeat(cum[user_offset[:-1]], n_users)
    user_invite_ts = signup[user_account] + cum.astype(np.int64)

    return Accounts(
        signup_ts=signup,
        health=health,
        band=band,
        industry=industry,
        country=country,
        name=names,
        domain=domains,
        adopt_ts=adopt_ts.astype(np.int64),
        feature_pref=feature_pref,
        base_rate=base_rate,
        user_account=user_account,
        user_number=user_number,
        user_invite_ts=user_invite_ts,
        user_first=rng.integers(0, len(cat.FIRST_NAMES), len(user_account)),
        user_last=rng.integers(0, len(cat.LAST_NAMES), len(user_account)),
        # The owner (first user) administers the account; teammates get any role.
        user_role=np.where(user_number == 1, cat.ROLES.index("admin"), rng.integers(0, len(cat.ROLES), len(user_account))),
        user_offset=user_offset,
    )
