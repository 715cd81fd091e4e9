"""Customer feedback exports: monthly NPS survey responses and helpdesk tickets.

Both follow the latent health: healthy accounts answer 9-10 and rarely write in;
unhealthy ones score low and open tickets, often about the same pain point again and
again (the "support-driven" segment). Only seats of accounts that use the product in
that month respond or write in. Vectorised per month over users.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from retention.simulate import catalogue as cat
from retention.simulate.accounts import NEVER, Accounts, account_id
from retention.simulate.lifecycle import Life
from retention.simulate.timeline import DAY, Clock, iso

NPS_HEADER = ("response_id", "account_id", "user_id", "email", "score", "comment", "responded_at")
NPS_RESPONSE_P = 0.07  # share of active seats answering the monthly survey
COMMENT_P = 0.45
TICKET_STATUSES_OPEN = ("open", "pending")
SUBJECTS = {
    "billing": "Question about our last invoice",
    "login": "Cannot sign in",
    "integration_sync": "Integration stopped syncing",
    "performance": "Dashboards are slow to load",
    "data_import": "CSV import fails",
    "permissions": "Teammate cannot see our projects",
    "reporting": "Report numbers look wrong",
    "feature_request": "Feature request",
    "bug": "Something is broken",
}


@dataclass(frozen=True)
class Windows:
    """Usage windows per account as arrays (start, end), at most ``k`` per account."""

    start: np.ndarray  # (n, k) unix seconds, NEVER when unused
    end: np.ndarray

    @classmethod
    def from_lives(cls, lives: list[Life]) -> Windows:
        k = max((len(life.windows) for life in lives), default=1) or 1
        start = np.full((len(lives), k), NEVER, dtype=np.int64)
        end = np.full((len(lives), k), NEVER, dtype=np.int64)
        for i, life in enumerate(lives):
            for w, (s, e, _) in enumerate(life.windows):
                start[i, w], end[i, w] = s, e
        return cls(start, end)

    def overlap(self, lo: int, hi: int) -> np.ndarray:
        """Seconds of [lo, hi) each account spends inside a usage window."""
        s = np.clip(self.start, lo, hi)
        e = np.clip(self.end, lo, hi)
        return np.maximum(e - s, 0).sum(axis=1)

    def churn_soon(self, ts: int, within: int) -> np.ndarray:
        """Accounts whose (last) usage window ends within ``within`` seconds after ``ts``."""
        return ((self.end > ts) & (self.end <= ts + within) & (self.start <= ts)).any(axis=1)


class Feedback:
    """Draws NPS responses and support tickets month by month."""

    def __init__(self, accounts: Accounts, lives: list[Life], clock: Clock, seed: int, rng: np.random.Generator):
        self.acc, self.clock, self.seed, self.rng = accounts, clock, seed, rng
        self.windows = Windows.from_lives(lives)
        # The pain point an unhealthy account keeps writing about.
        self.pain_topic = rng.integers(0, len(cat.SUPPORT_TOPICS), accounts.n)
        self.user_email = [accounts.user_email(r) for r in range(len(accounts.user_account))]
        self.user_ids = [accounts.user_id(r) for r in range(len(accounts.user_account))]

    def months(self) -> Iterator[tuple[str, int, int]]:
        starts = self.clock.month_starts()
        for label, lo, hi in zip(self.clock.months(), starts, [*starts[1:], self.clock.end_ts], strict=True):
            yield label, lo, hi

    def _mood(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(share of the month each account is in use, effective health) for a month."""
        share = self.windows.overlap(lo, hi) / max(hi - lo, 1)
        mood = self.acc.health * np.where(self.windows.churn_soon(lo, 60 * DAY), 0.55, 1.0)
        return share, mood

    def nps_rows(self, label: str, lo: int, hi: int) -> list[tuple[object, ...]]:
        rng, acc = self.rng, self.acc
        share, mood = self._mood(lo, hi)
        ua = acc.user_account
        eligible = (share[ua] > 0) & (acc.user_invite_ts < hi - DAY)
        answer = eligible & (rng.random(len(ua)) < NPS_RESPONSE_P * share[ua])
        rows_idx = np.flatnonzero(answer)
        score = np.clip(np.rint(rng.normal(1.5 + 9.0 * mood[ua[rows_idx]], 1.4)), 0, 10).astype(int)
        with_comment = rng.random(rows_idx.size) < COMMENT_P
        pick = rng.integers(0, 1 << 30, rows_idx.size)
        when = rng.integers(0, 1 << 30, rows_idx.size)
        rows = []
        for n, (row, s, c, p, w) in enumerate(
            zip(rows_idx.tolist(), score.tolist(), with_comment.tolist(), pick.tolist(), when.tolist(), strict=True)
        ):
            a = int(ua[row])
            start = max(lo, int(acc.user_invite_ts[row]) + DAY)
            responded = start + w % max(hi - start, 1)
            comment = None
            if c:
                kind = "promoter" if s >= 9 else "passive" if s >= 7 else "detractor"
                options = cat.NPS_COMMENTS[kind]
                comment = options[p % len(options)]
            rows.append((
                f"nps_{label.replace('-', '')}_{n + 1:06d}", account_id(a), self.user_ids[row],
                self.user_email[row], s, comment, iso(responded),
            ))
        rows.sort(key=lambda r: (r[6], r[0]))
        return rows

    def tickets(self, label: str, lo: int, hi: int) -> list[dict[str, object]]:
        rng, acc = self.rng, self.acc
        now = self.clock.end_ts
        share, mood = self._mood(lo, hi)
        seats = np.diff(acc.user_offset)
        lam = share * (0.08 + 1.6 * (1.0 - mood) ** 2) * np.sqrt(seats)
        counts = rng.poisson(lam)
        a_idx = np.repeat(np.arange(acc.n), counts)
        n = a_idx.size
        repeat = rng.random(n) < (0.1 + 0.75 * (1.0 - acc.health[a_idx]))
        topic = np.where(repeat, self.pain_topic[a_idx], rng.integers(0, len(cat.SUPPORT_TOPICS), n))
        first = np.maximum(lo, acc.signup_ts[a_idx] + 3600)
        created = first + (rng.random(n) * np.maximum(hi - first, 1)).astype(np.int64)
        hours = rng.exponential(6.0 + 60.0 * (1.0 - acc.health[a_idx]), n)
        resolved = created + (hours * 3600).astype(np.int64) + 300
        who = rng.integers(0, 1 << 30, n)
        state = rng.random(n)
        out = []
        for k in range(n):
            a = int(a_idx[k])
            lo_u, hi_u = int(acc.user_offset[a]), int(acc.user_offset[a + 1])
            invited = [r for r in range(lo_u, hi_u) if acc.user_invite_ts[r] <= created[k]] or [lo_u]
            row = invited[int(who[k]) % len(invited)]
            done = int(resolved[k]) < now
            name = cat.SUPPORT_TOPICS[int(topic[k])]
            out.append({
                "ticket_id": f"{label.replace('-', '')}{k + 1:05d}",
                "account_id": account_id(a),
                "user_id": self.user_ids[row],
                "requester_email": self.user_email[row],
                "topic": name,
                "subject": SUBJECTS[name],
                "status": ("solved" if state[k] < 0.7 else "closed") if done else TICKET_STATUSES_OPEN[int(state[k] < 0.5)],
                "created_at": iso(int(created[k])),
                "resolved_at": iso(int(resolved[k])) if done else None,
            })
        out.sort(key=lambda t: (t["created_at"], t["ticket_id"]))
        return out
