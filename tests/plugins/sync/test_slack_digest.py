"""The Slack digest through the real engine, against the local Slack in its own process."""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
import segments as seg

from retention import warehouse
from retention.local_servers.base import serve
from retention.local_servers.slack import block_problems
from retention.sync import engine
from retention.sync.config import SyncSpec
from retention.sync.digest import AtRiskAccount, Digest, SegmentCount, build_blocks
from retention.sync.errors import SyncError

WEBHOOK_SECRET = "canaryhooksecret7d1e"
BOT_TOKEN = "xoxb-canary-bot-token-3a9c"
CONN_ID = "slack_digest_test"


@pytest.fixture(scope="module")
def slack():
    with serve("slack", token=BOT_TOKEN, webhook_secret=WEBHOOK_SECRET, channels=["C0RETENTION"],
               per_channel_per_s=100) as server:
        yield server


def connect(monkeypatch, slack, url: str, *, webhook: bool = True, channel: str = "C0RETENTION", **extra) -> None:
    """The digest's Slack connection, and the warehouse connection the digest keeps its send log in."""
    conn = ({"conn_type": "retention_slack", "password": f"{slack.base_url}/services/TLOCAL/BLOCAL/{WEBHOOK_SECRET}",
             "extra": extra}
            if webhook else
            {"conn_type": "retention_slack", "host": f"{slack.base_url}/api", "password": BOT_TOKEN,
             "extra": {"channel": channel, **extra}})
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse.airflow_connection_json(url))


def digest_spec(options: dict | None = None) -> SyncSpec:
    return SyncSpec.model_validate({
        "name": "team_digest",
        "source": {"segments": []},
        "destination": {"kind": "slack_digest", "conn_id": CONN_ID,
                        "options": {"report_url": "https://reports.example.org/retention", **(options or {})}},
        "identity": {"column": "member_key", "kind": "account_id"},
        "mapping": {"account_id": "account_id", "account_name": "account_name", "mrr": "mrr", "reason": "reason"},
        "mode": "membership",
    })


def messages(slack) -> list[dict]:
    return slack.control.view("slack")["messages"]


def rows_for(day: date, n_dropped: int, n_inactive: int) -> list[dict]:
    rows = [seg.member(f"acct_{i:05d}", "health_dropped", as_of_date=day, mrr=100 * i, reason=f"health -{i}")
            for i in range(1, n_dropped + 1)]
    rows += [seg.member(f"acct_{i:05d}", "inactive", as_of_date=day, mrr=10 * i, reason="no key event in 14 days")
             for i in range(100, 100 + n_inactive)]
    return rows


def test_one_digest_per_day_with_change_since_last_and_never_twice(slack, fresh_db, monkeypatch, caplog):
    slack.control.reset()
    connect(monkeypatch, slack, fresh_db)
    day1 = seg.AS_OF
    seg.build(fresh_db, rows_for(day1, 12, 3), as_of=day1)
    engine.run_sync(fresh_db, digest_spec())
    assert len(messages(slack)) == 1
    first = messages(slack)[0]
    assert block_problems(first["blocks"]) == []
    fields = [f["text"] for b in first["blocks"] if b["type"] == "section" for f in b.get("fields", [])]
    assert fields == ["*health_dropped*\n12 (new)", "*inactive*\n3 (new)"]
    at_risk = next(b["text"]["text"] for b in first["blocks"] if "Top at-risk" in b.get("text", {}).get("text", ""))
    lines = at_risk.splitlines()
    assert lines[0] == "*Top at-risk accounts by MRR* (15 at risk)"
    assert lines[1] == "• *Account 12*: $1,200 MRR: health_dropped: health -12"  # by MRR, highest first
    assert lines[-1] == "and 5 more" and len(lines) == 12  # top 10, the rest counted
    assert "https://reports.example.org/retention" in json.dumps(first["blocks"])
    assert "@example.com" not in json.dumps(first)  # no email ever goes to the channel

    # a rerun the same day (and a task retry) posts nothing
    engine.run_sync(fresh_db, digest_spec())
    assert len(messages(slack)) == 1

    # the next day: one new digest, with the change since the last one
    day2 = day1 + timedelta(days=1)
    seg.build(fresh_db, rows_for(day2, 10, 5), as_of=day2)
    engine.run_sync(fresh_db, digest_spec())
    assert len(messages(slack)) == 2
    fields = [f["text"] for b in messages(slack)[1]["blocks"] if b["type"] == "section" for f in b.get("fields", [])]
    assert fields == ["*health_dropped*\n10 (-2)", "*inactive*\n5 (+2)"]
    assert WEBHOOK_SECRET not in caplog.text


def test_a_timeout_after_slack_accepted_never_posts_twice(slack, fresh_db, monkeypatch, caplog):
    slack.control.reset()
    connect(monkeypatch, slack, fresh_db, timeout=0.5)
    seg.build(fresh_db, rows_for(seg.AS_OF, 4, 1))
    # Slack takes the message, then the answer comes after the client gave up.
    slack.control.faults(rate=1.0, kinds=["slow_after"], slow_s=2.0, count=1)
    spec = digest_spec()
    engine.run_sync(fresh_db, spec)
    engine.run_sync(fresh_db, spec)  # the rerun (or the task's retry) sees the send log: not posted again
    assert len(messages(slack)) == 1
    status = seg.table(fresh_db, "select status from activation.sync_send_log where sync_name = 'team_digest'")
    assert status == [("unknown",)]
    assert "may have been posted" in caplog.text
    assert WEBHOOK_SECRET not in caplog.text


def test_ok_false_is_a_refusal_and_a_later_run_posts_it_once(slack, fresh_db, monkeypatch):
    slack.control.reset()
    seg.build(fresh_db, rows_for(seg.AS_OF, 2, 2))
    connect(monkeypatch, slack, fresh_db, webhook=False, channel="C0WRONG")
    with pytest.raises(SyncError):
        engine.run_sync(fresh_db, digest_spec())
    assert messages(slack) == []
    assert seg.table(fresh_db, "select status from activation.sync_send_log") == [("rejected",)]
    errors = " ".join(str(r) for r in seg.table(fresh_db, "select error from activation.sync_runs"))
    assert BOT_TOKEN not in errors

    connect(monkeypatch, slack, fresh_db, webhook=False)
    engine.run_sync(fresh_db, digest_spec())
    engine.run_sync(fresh_db, digest_spec())
    assert len(messages(slack)) == 1 and messages(slack)[0]["via"] == "chat.postMessage"


def test_digest_blocks_stay_within_slack_limits_and_cut_long_lists():
    segments = tuple(SegmentCount(f"segment_{i:02d}", i * 7, i) for i in range(60))
    accounts = tuple(AtRiskAccount(f"Account <{i}> & Co " + "x" * 80, Decimal(100_000 - i), ("reason " * 60,))
                     for i in range(200))
    digest = Digest(as_of=seg.AS_OF, title="Retention digest " + "t" * 200, segments=segments, at_risk=accounts,
                    at_risk_total=200, report_url="https://reports.example.org/r")
    blocks = build_blocks(digest)
    assert block_problems(blocks) == []
    text = json.dumps(blocks)
    assert "and 20 more segments" in text
    at_risk = next(b["text"]["text"] for b in blocks if "Top at-risk" in b.get("text", {}).get("text", ""))
    shown = at_risk.count("\n• ")
    assert 0 < shown < 200 and at_risk.endswith(f"and {200 - shown} more")
    assert "&lt;0&gt; &amp; Co" in at_risk  # mrkdwn control characters escaped


def test_faults_of_every_kind_never_post_a_digest_twice(slack, fresh_db, monkeypatch, caplog):
    """Five days, each run twice, with half the requests faulted: at most one message a day,
    exactly one for every day the send log says ok, and no secret anywhere."""
    caplog.set_level(logging.DEBUG)
    slack.control.reset()
    connect(monkeypatch, slack, fresh_db, webhook=False, timeout=0.5, max_attempts=3, retry_base_delay=0.05)
    slack.control.faults(rate=0.5, kinds=["429_seconds", "429_date", "500", "slow", "reset", "500_after",
                                          "slow_after", "reset_after"], seed=4, retry_after_s=0.1, slow_s=0.8)
    errors = []
    days = [seg.AS_OF + timedelta(days=d) for d in range(5)]
    for day in days:
        seg.build(fresh_db, rows_for(day, 3, 2), as_of=day)
        for _ in range(2):
            try:
                engine.run_sync(fresh_db, digest_spec())
            except SyncError as exc:
                errors.append(str(exc))
    slack.control.faults()
    posted = Counter(m["text"].split(" for ")[1].split(":")[0] for m in messages(slack))
    assert max(posted.values()) == 1  # never twice
    status = dict(seg.table(fresh_db, "select key, status from activation.sync_send_log"))
    assert set(status.values()) <= {"ok", "unknown", "rejected"}
    assert {k.removeprefix("digest:") for k, v in status.items() if v == "ok"} <= set(posted)
    assert len(posted) >= 1 and sum(1 for e in slack.control.requests(bodies=False) if e["fault"]) >= 4
    texts = [caplog.text, *errors, json.dumps(slack.control.requests(), default=str)]
    texts += [str(r) for r in seg.table(fresh_db, "select * from activation.sync_runs")]
    for text in texts:
        assert BOT_TOKEN not in text and WEBHOOK_SECRET not in text


def test_sigkill_after_slack_took_the_digest_then_rerun_posts_nothing(slack, fresh_db, monkeypatch):
    slack.control.reset()
    connect(monkeypatch, slack, fresh_db, timeout=60)
    seg.build(fresh_db, rows_for(seg.AS_OF, 3, 1))
    slack.control.faults(rate=1.0, kinds=["slow_after"], slow_s=60, count=1)  # taken, answer withheld
    seg.run_killed_when(fresh_db, digest_spec(), lambda: bool(messages(slack)), "posted the digest")
    slack.control.faults()
    engine.run_sync(fresh_db, digest_spec())
    assert len(messages(slack)) == 1
    assert seg.table(fresh_db, "select status from activation.sync_send_log") == [("sending",)]
