"""Product events, one UTC day at a time (never more than a day in memory).

Usage is drawn per day, vectorised over accounts: a Poisson count per account from its
latent health, active seats, weekday, usage windows (trial, subscription, reactivation),
a decline before voluntary churn and a lower level on the $0 plan. Lifecycle moments
(sign-up, invites, first use of a feature, plan changes) are scheduled records. Both
become Segment ``track`` / ``identify`` / ``group`` messages.

Milestone times for the ground truth are tracked from the events actually written, so
the truth always agrees with the files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import orjson

from retention.simulate import catalogue as cat
from retention.simulate.accounts import NEVER, Accounts, account_id
from retention.simulate.lifecycle import Life
from retention.simulate.timeline import DAY, Clock

CODE = {name: n for n, name in enumerate(cat.ALL_EVENTS)}
N_USAGE = len(cat.USAGE_EVENTS)
N_KEY = len(cat.KEY_FEATURES)
LIBRARY = {"name": "analytics-node", "version": "2.1.0"}
DECLINE_DAYS = 60
FREE_PLAN_USAGE = 0.35
_OPT = orjson.OPT_SORT_KEYS


# Scheduled message kinds.
K_IDENTIFY, K_GROUP, K_INVITE, K_PLAN, K_FIRST_USE = range(5)
PLAN_KEYS: tuple[str, ...] = tuple(cat.PLANS)
PLAN_INDEX = {key: n for n, key in enumerate(PLAN_KEYS)}
PLAN_RANK = np.array([cat.PLANS[key].rank for key in PLAN_KEYS])


@dataclass(frozen=True)
class Schedule:
    """Lifecycle messages sorted by time: the user row sending each, and two arguments
    (invitee row; plan indexes; key feature index and property seed)."""

    ts_ms: np.ndarray
    kind: np.ndarray
    row: np.ndarray
    arg: np.ndarray
    arg2: np.ndarray


@dataclass(frozen=True)
class Record:
    """One Segment message ready to write, with what fault injection needs to know."""

    received_ms: int
    line: bytes
    kind: str  # track | identify | group
    account: int


def _iso_ms(ms: np.ndarray) -> list[str]:
    return [s + "Z" for s in np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms").tolist()]


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    h = rng.bytes(16 * n).hex()
    return [
        f"{h[i:i + 8]}-{h[i + 8:i + 12]}-4{h[i + 13:i + 16]}-a{h[i + 17:i + 20]}-{h[i + 20:i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


class EventGenerator:
    def __init__(
        self, accounts: Accounts, lives: list[Life], clock: Clock, rate: float, report_n: int,
        rng: np.random.Generator,
    ):
        self.acc, self.clock, self.rate, self.report_n, self.rng = accounts, clock, rate, report_n, rng
        n = accounts.n
        self.win_start = np.full((n, 2), NEVER, dtype=np.int64)
        self.win_end = np.full((n, 2), NEVER, dtype=np.int64)
        self.win_decline = np.zeros((n, 2), dtype=bool)
        self.free_from = np.full((n, 2), NEVER, dtype=np.int64)
        self.free_to = np.full((n, 2), NEVER, dtype=np.int64)
        for i, life in enumerate(lives):
            for w, (start, end, declines) in enumerate(life.windows[:2]):
                self.win_start[i, w], self.win_end[i, w], self.win_decline[i, w] = start, end, declines
            for w, (start, end) in enumerate(life.free_spans[:2]):
                self.free_from[i, w], self.free_to[i, w] = start, end
        self.lives = lives
        # A teammate can act after accepting the invite (one hour later); the owner at sign-up.
        self.user_active_from = accounts.user_invite_ts + np.where(accounts.user_number == 1, 0, 3600)
        self.identify_ts = self.user_active_from
        # Milestone tracking (ground truth): first time of each milestone event, ms.
        self.first_ms = {name: np.full(n, NEVER, dtype=np.int64) for name in (
            cat.PROJECT_CREATED, cat.TEAMMATE_INVITED, cat.INTEGRATION_INSTALLED)}
        self.report_count = np.zeros(n, dtype=np.int64)
        self.report_n_ms = np.full(n, NEVER, dtype=np.int64)
        self.event_counts = np.zeros(len(cat.ALL_EVENTS), dtype=np.int64)  # track records per event name
        self._schedule = self._scheduled_records()

    # -- usage windows ---------------------------------------------------------------------
    def in_window(self, a: np.ndarray, ts: np.ndarray) -> np.ndarray:
        ts = ts[:, None]
        return ((self.win_start[a] <= ts) & (ts < self.win_end[a])).any(axis=1)

    def _intensity(self, day_start: int) -> tuple[np.ndarray, np.ndarray]:
        """(expected usage events, active seats) per account for the day."""
        mid = day_start + DAY // 2
        alive = ((self.win_start < day_start + DAY) & (self.win_end > day_start)).any(axis=1)
        rows = np.flatnonzero(alive)
        active_users = np.add.reduceat((self.user_active_from <= mid).astype(np.int64), self.acc.user_offset[:-1])
        if rows.size == 0:
            return np.zeros(self.acc.n), active_users
        lam = self.acc.base_rate * self.rate * np.power(np.maximum(active_users, 1), 0.85)
        weekday = (day_start // DAY + 3) % 7  # 0 = Monday
        lam *= 0.25 if weekday >= 5 else 1.0
        tenure = np.clip((mid - self.acc.signup_ts) / (180 * DAY), 0, 1)
        lam *= 1.0 + 0.3 * self.acc.health * tenure
        # Decline towards a voluntary churn.
        left = (self.win_end - mid) / (DECLINE_DAYS * DAY)
        current = (self.win_start <= mid) & (mid < self.win_end)
        factor = np.where(self.win_decline & current, np.clip(left, 0.15, 1.0), 1.0).min(axis=1)
        lam *= factor
        on_free = ((self.free_from <= mid) & (mid < self.free_to)).any(axis=1)
        lam *= np.where(on_free, FREE_PLAN_USAGE, 1.0)
        out = np.zeros(self.acc.n)
        out[rows] = lam[rows]
        return out, active_users

    # -- scheduled lifecycle records -------------------------------------------------------
    def _scheduled_records(self) -> Schedule:
        """Sign-ups, invites, user joins, first uses and plan changes, as compact arrays
        (a few bytes each: payloads are built only when their day is written)."""
        acc, n = self.acc, self.acc.n
        parts: list[tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]] = []

        def add(ts: np.ndarray, kind: int, row: np.ndarray, arg: np.ndarray, arg2: np.ndarray | int = 0) -> None:
            ts = np.asarray(ts, dtype=np.int64)
            parts.append((ts, kind, np.asarray(row, dtype=np.int64), np.asarray(arg, dtype=np.int64),
                          np.broadcast_to(np.asarray(arg2, dtype=np.int64), ts.shape)))

        rows = np.arange(len(acc.user_account))
        owner = acc.user_offset[acc.user_account]
        joined = self.in_window(acc.user_account, acc.user_invite_ts)
        teammate = joined & (rows != owner)
        add(acc.user_invite_ts[teammate], K_INVITE, owner[teammate], rows[teammate])
        add(self.identify_ts[joined], K_IDENTIFY, rows[joined], rows[joined])
        owners = acc.user_offset[:-1]
        first_plan = [PLAN_INDEX[life.subs[0].periods[0].plan] for life in self.lives]
        add(acc.signup_ts + 1, K_GROUP, owners, np.array(first_plan, dtype=np.int64))
        changes: list[tuple[int, int, int, int]] = []  # (ts, account, old, new)
        regroups: list[tuple[int, int, int]] = []  # (ts, account, plan)
        for i, life in enumerate(self.lives):
            for ts, old, new in life.plan_changes:
                if ts < self.clock.end_ts:
                    changes.append((ts, i, PLAN_INDEX[old], PLAN_INDEX[new]))
                    regroups.append((ts + 1, i, PLAN_INDEX[new]))
            if life.reactivated_at is not None:
                main = [sub for sub in life.subs if sub.kind == "main"][-1]
                regroups.append((life.reactivated_at + 1, i, PLAN_INDEX[main.periods[0].plan]))
        if changes:
            ts, who, old, new = (np.array(c, dtype=np.int64) for c in zip(*changes, strict=True))
            add(ts + 5, K_PLAN, owners[who], old, new)
        if regroups:
            ts, who, plan = (np.array(c, dtype=np.int64) for c in zip(*regroups, strict=True))
            add(ts + 5, K_GROUP, owners[who], plan)
        for f in range(N_KEY):
            adopt = acc.adopt_ts[:, f]
            used = (adopt != NEVER) & self.in_window(np.arange(n), adopt)
            add(adopt[used], K_FIRST_USE, owners[used], np.full(int(used.sum()), f), self.rng.integers(0, 1 << 30, int(used.sum())))

        ts = np.concatenate([p[0] for p in parts])
        # Stay clear of midnight, so the message is received on the day it happened.
        ts = np.minimum(ts, (ts // DAY + 1) * DAY - 10) * 1000
        order = np.argsort(ts, kind="stable")
        return Schedule(
            ts_ms=ts[order],
            kind=np.concatenate([np.full(p[0].size, p[1], dtype=np.int8) for p in parts])[order],
            row=np.concatenate([p[2] for p in parts])[order],
            arg=np.concatenate([p[3] for p in parts])[order],
            arg2=np.concatenate([p[4] for p in parts])[order],
        )

    def _scheduled_code(self, kind: np.ndarray, arg: np.ndarray, arg2: np.ndarray) -> np.ndarray:
        """Track event code (index in cat.ALL_EVENTS) of scheduled messages, -1 for identify/group."""
        code = np.full(kind.size, -1, dtype=np.int64)
        code[kind == K_INVITE] = CODE[cat.TEAMMATE_INVITED]
        first = kind == K_FIRST_USE
        code[first] = arg[first]  # key features lead cat.ALL_EVENTS
        plan = kind == K_PLAN
        up = PLAN_RANK[arg2[plan]] > PLAN_RANK[arg[plan]]
        code[plan] = np.where(up, CODE[cat.PLAN_UPGRADED], CODE[cat.PLAN_DOWNGRADED])
        return code

    def _scheduled_payload(self, kind: int, row: int, arg: int, arg2: int, code: int) -> tuple[str, dict]:
        acc = self.acc
        if kind == K_IDENTIFY:
            return "identify", {"traits": {
                "email": acc.user_email(row), "name": acc.user_name(row), "role": cat.ROLES[acc.user_role[row]]}}
        if kind == K_GROUP:
            return "group", {"traits": self._group_traits(int(acc.user_account[row]), PLAN_KEYS[arg])}
        name = cat.ALL_EVENTS[code]
        if kind == K_INVITE:
            props = {"invitee_email": acc.user_email(arg), "invitee_user_id": acc.user_id(arg)}
        elif kind == K_PLAN:
            props = {"from_plan": PLAN_KEYS[arg], "to_plan": PLAN_KEYS[arg2]}
        else:
            props = self._props(name, arg2, int(acc.user_account[row]))
        return "track", {"event": name, "properties": props}

    def _group_traits(self, a: int, plan: str) -> dict:
        acc = self.acc
        return {
            "name": acc.name[a], "industry": cat.INDUSTRIES[acc.industry[a]],
            "employees": cat.EMPLOYEE_BANDS[acc.band[a]], "plan": plan,
            "country": cat.COUNTRIES[acc.country[a]],
        }

    def _props(self, name: str, r: int, a: int) -> dict:
        if name == cat.INTEGRATION_INSTALLED:
            return {"integration": cat.INTEGRATIONS[r % len(cat.INTEGRATIONS)]}
        if name == cat.REPORT_CREATED:
            return {"report_type": cat.REPORT_TYPES[r % len(cat.REPORT_TYPES)]}
        if name == cat.CAMPAIGN_SENT:
            size = 50 * (1 + int(self.acc.band[a])) ** 2
            return {"channel": cat.CHANNELS[r % len(cat.CHANNELS)], "recipients": size + r % (size * 4)}
        if name == cat.PROJECT_CREATED:
            return {"template": ("blank", "onboarding", "campaign", "analytics")[r % 4]}
        return {}

    # -- days ------------------------------------------------------------------------------
    def files(self, max_lines: int) -> Iterator[tuple[int, list[Record]]]:
        """Yield (day index, records) per event file: a day's messages in order of receipt,
        at most ``max_lines`` per file. Only one file's messages exist as Python objects at
        a time; the rest of the day is a few numpy arrays, so memory does not grow with scale."""
        sched = self._schedule
        bounds = np.searchsorted(sched.ts_ms, [self.clock.day_ts(d) * 1000 for d in range(self.clock.n_days + 1)])
        for day in range(self.clock.n_days):
            for records in self._day(self.clock.day_ts(day), slice(bounds[day], bounds[day + 1]), max_lines):
                yield day, records

    def _usage(self, start: int) -> tuple[np.ndarray, ...]:
        """Random usage of one day: (account, timestamp ms, user row, usage event index, property seed)."""
        rng, acc = self.rng, self.acc
        lam, active_users = self._intensity(start)
        a = np.repeat(np.arange(acc.n), rng.poisson(lam))
        n = a.size
        # Time of day: mostly office hours, the rest spread over the day.
        hours = np.where(rng.random(n) < 0.8, np.clip(rng.normal(14.0, 3.0, n), 0, 23.9), rng.uniform(0, 23.9, n))
        ts_ms = (start * 1000 + hours * 3_600_000).astype(np.int64)
        # Users: any teammate active by midday (users are in invitation order).
        off = acc.user_offset
        user = off[a] + np.floor(rng.random(n) * np.maximum(active_users[a], 1)).astype(np.int64)
        keep = self.in_window(a, ts_ms // 1000) & (self.user_active_from[user] * 1000 <= ts_ms)
        # Event type: the account's taste over the features it has adopted before today.
        adopted = np.ones((acc.n, N_USAGE), dtype=bool)
        adopted[:, :N_KEY] = acc.adopt_ts < start
        cum = np.cumsum((acc.feature_pref * adopted)[a], axis=1)
        pick = rng.random(n) * cum[:, -1]
        code = (cum < pick[:, None]).sum(axis=1)
        r = rng.integers(0, 1 << 30, n)
        return a[keep], ts_ms[keep], user[keep], code[keep], r[keep]

    def _day(self, start: int, today: slice, max_lines: int) -> Iterator[list[Record]]:
        rng, acc, sched = self.rng, self.acc, self._schedule
        a, ts_ms, user, code, r = self._usage(start)
        n_usage = a.size
        s_kind, s_arg, s_arg2 = sched.kind[today], sched.arg[today], sched.arg2[today]
        sched_code = self._scheduled_code(s_kind, s_arg, s_arg2)
        # Usage events first, then the scheduled ones; codes index cat.ALL_EVENTS (-1: not a track).
        all_ts = np.concatenate([ts_ms, sched.ts_ms[today]])
        all_user = np.concatenate([user, sched.row[today]])
        all_code = np.concatenate([code, sched_code])
        sent = all_ts + rng.integers(50, 2_500, all_ts.size)
        received = sent + rng.integers(50, 2_500, all_ts.size)
        track = all_code >= 0
        self._track_milestones(acc.user_account[all_user[track]], all_code[track], all_ts[track])
        np.add.at(self.event_counts, all_code[track], 1)
        order = np.argsort(received, kind="stable")
        for lo in range(0, order.size, max_lines):
            idx = order[lo : lo + max_lines]
            ts_s, sent_s, recv_s = _iso_ms(all_ts[idx]), _iso_ms(sent[idx]), _iso_ms(received[idx])
            ids = _uuids(rng, idx.size)
            records = []
            for pos, k in enumerate(idx.tolist()):
                row = int(all_user[k])
                account = int(acc.user_account[row])
                if k < n_usage:
                    name = cat.USAGE_EVENTS[code[k]]
                    kind, payload = "track", {"event": name, "properties": self._props(name, int(r[k]), account)}
                else:
                    j = k - n_usage
                    kind, payload = self._scheduled_payload(
                        int(s_kind[j]), row, int(s_arg[j]), int(s_arg2[j]), int(sched_code[j]))
                msg = {
                    "anonymousId": None,
                    "context": {"groupId": account_id(account), "library": LIBRARY},
                    "messageId": ids[pos],
                    "receivedAt": recv_s[pos],
                    "sentAt": sent_s[pos],
                    "timestamp": ts_s[pos],
                    "type": kind,
                    "userId": acc.user_id(row),
                    "version": 2,
                    **payload,
                }
                if kind == "group":
                    msg["groupId"] = account_id(account)
                records.append(Record(int(received[k]), orjson.dumps(msg, option=_OPT) + b"\n", kind, account))
            yield records

    def _track_milestones(self, a: np.ndarray, code: np.ndarray, ms: np.ndarray) -> None:
        for name, first in self.first_ms.items():
            mask = code == CODE[name]
            np.minimum.at(first, a[mask], ms[mask])
        mask = code == CODE[cat.REPORT_CREATED]
        if not mask.any():
            return
        ra, rms = a[mask], ms[mask]
        before = self.report_count.copy()
        np.add.at(self.report_count, ra, 1)
        crossing = np.flatnonzero((before < self.report_n) & (self.report_count >= self.report_n))
        for acc in crossing.tolist():
            times = np.sort(rms[ra == acc])
            self.report_n_ms[acc] = times[self.report_n - before[acc] - 1]
