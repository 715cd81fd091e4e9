"""The Slack digest: one Block Kit message per run, within Slack's limits.

It says, for the as-of date: how many members each segment has and the change since the
last digest; the top at-risk accounts by MRR with the reasons they were selected; a link
to the report when there is one. Long lists are cut with "and N more" so the message
stays inside Slack's limits (50 blocks, 3,000 characters a section, 10 fields a section,
150 characters a header); ``retention.local_servers.slack.block_problems`` is the check.
No email or personal name ever goes in: accounts are named by their account name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

SECTION_LIMIT = 3000
FIELDS_PER_SECTION = 10
MAX_SEGMENT_FIELDS = 40  # four sections of ten; beyond that, "and N more"
HEADER_LIMIT = 150


@dataclass(frozen=True)
class SegmentCount:
    segment: str
    members: int
    previous: int | None  # members in the last digest; None when there was none

    @property
    def change(self) -> str:
        if self.previous is None:
            return "new"
        delta = self.members - self.previous
        return "no change" if delta == 0 else f"{delta:+,d}"


@dataclass(frozen=True)
class AtRiskAccount:
    account_name: str
    mrr: Decimal
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Digest:
    as_of: date
    title: str
    segments: tuple[SegmentCount, ...]
    at_risk: tuple[AtRiskAccount, ...] = ()
    at_risk_total: int = 0  # how many at-risk accounts there are (at_risk holds the top ones)
    report_url: str | None = None

    def counts(self) -> dict[str, int]:
        return {s.segment: s.members for s in self.segments}


def escape(text: str) -> str:
    """Slack mrkdwn control characters (&, <, >) escaped, as Slack's formatting guide asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def money(value: Decimal | float | int) -> str:
    return f"${Decimal(value):,.0f}"


def fallback_text(digest: Digest) -> str:
    total = sum(s.members for s in digest.segments)
    return (f"{digest.title} for {digest.as_of.isoformat()}: {total:,d} members in "
            f"{len(digest.segments)} segments, {digest.at_risk_total:,d} accounts at risk.")


def build_blocks(digest: Digest) -> list[dict[str, Any]]:
    header = f"{digest.title} · {digest.as_of.isoformat()}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(header, HEADER_LIMIT)}},
    ]
    if not digest.segments:
        blocks.append(_section("No segment has members today."))
    fields = [
        {"type": "mrkdwn", "text": _cut(f"*{escape(s.segment)}*\n{s.members:,d} ({s.change})", 2000)}
        for s in digest.segments[:MAX_SEGMENT_FIELDS]
    ]
    for start in range(0, len(fields), FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[start:start + FIELDS_PER_SECTION]})
    hidden = len(digest.segments) - MAX_SEGMENT_FIELDS
    if hidden > 0:
        blocks.append(_section(f"and {hidden:,d} more segments"))
    blocks.append({"type": "divider"})
    blocks.append(_section(_at_risk_text(digest)))
    if digest.report_url:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": _cut(f"<{digest.report_url}|Open the retention report>", SECTION_LIMIT)},
        ]})
    return blocks


def _at_risk_text(digest: Digest) -> str:
    title = f"*Top at-risk accounts by MRR* ({digest.at_risk_total:,d} at risk)"
    if not digest.at_risk:
        return f"{title}\nNone today."
    lines = [
        f"• *{escape(a.account_name)}*: {money(a.mrr)} MRR: {escape('; '.join(a.reasons))}"
        for a in digest.at_risk
    ]
    return _join_with_more(title, [_cut(line, 500) for line in lines], digest.at_risk_total, SECTION_LIMIT)


def _join_with_more(title: str, lines: Sequence[str], total: int, limit: int) -> str:
    """Title and as many lines as fit in ``limit``, then "and N more" for the rest of ``total``."""
    shown: list[str] = []
    for i, line in enumerate(lines):
        rest = total - (i + 1)
        candidate = "\n".join([title, *shown, line] + ([f"and {rest:,d} more"] if rest > 0 else []))
        if len(candidate) > limit:
            break
        shown.append(line)
    rest = total - len(shown)
    return "\n".join([title, *shown] + ([f"and {rest:,d} more"] if rest > 0 else []))


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SECTION_LIMIT)}}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
