"""The signed webhook destination against the local receiver, in its own process, with faults."""

from __future__ import annotations

import logging
import re
import time
from datetime import date
from pathlib import Path

import httpx
import orjson
import pytest

from retention.hooks.http import HttpHookError
from retention.hooks.webhook import connection_json
from retention.hooks.webhook_signature import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from retention.local_servers import serve
from retention.sync.destinations.base import Destination, Record, SyncContext
from retention.sync.destinations.webhook import WebhookDestination, batch_delivery_id

CANARY = "canary-secret-4b1d93e2"
URL_SECRET = "hooks/CANARYPATH93e2"
README = Path(__file__).parents[3] / "README.md"
CTX = SyncContext("at_risk_hook", run_id=1, as_of=date(2026, 12, 1), mode="upsert", segments=("at_risk",))
ALL_FAULTS = ["429_seconds", "429_date", "500", "slow", "reset", "partial", "500_after", "slow_after", "reset_after"]


def records(n: int, prefix: str = "acct") -> list[Record]:
    return [
        Record(
            key=f"{prefix}_{i}", action="add", payload={"email": f"person{i}@example.com", "mrr": i * 10},
            payload_hash=f"h{i}", delivery_id=f"d_{prefix}_{i}", segments=("at_risk",),
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def receiver():
    with serve("webhook", secret=CANARY, reject_keys=["acct_bad"]) as running:
        yield running


@pytest.fixture
def connect(receiver, monkeypatch):
    receiver.control.reset()

    def make(secret: str = CANARY, **extra) -> WebhookDestination:
        extra = {"rate_limit_per_s": 1000, "burst": 20, "timeout": 0.4, "retry_base_delay": 0.01, **extra}
        monkeypatch.setenv("AIRFLOW_CONN_HOOK_TEST", connection_json(f"{receiver.base_url}/{URL_SECRET}", secret, **extra))
        destination = WebhookDestination("hook_test", {})
        destination.open(CTX)
        return destination

    return make


def test_it_is_a_destination():
    assert isinstance(WebhookDestination("any", {}), Destination)
    with pytest.raises(ValueError, match="takes no options, not \\['batch_size'\\]"):
        WebhookDestination("any", {"batch_size": 5})


def test_signed_batches_are_verified_and_every_row_confirmed(receiver, connect):
    destination = connect()
    batch = records(10)
    results = destination.send(batch)
    assert [r.key for r in results] == [r.key for r in batch]
    assert all(r.ok and r.http_status == 200 for r in results)
    (request,) = receiver.control.requests()
    headers = request["headers"]
    assert headers[DELIVERY_HEADER.lower()] == batch_delivery_id(CTX.sync_name, batch) == request["body"]["delivery_id"]
    assert headers[SIGNATURE_HEADER.lower()].startswith("v1=")
    body = request["body"]
    assert (body["sync"], body["as_of"], body["mode"]) == ("at_risk_hook", "2026-12-01", "upsert")
    assert body["records"][3] == {"delivery_id": "d_acct_3", "key": "acct_3", "action": "add",
                                  "payload": {"email": "person3@example.com", "mrr": 30}, "segments": ["at_risk"],
                                  "previous_segments": []}
    assert receiver.control.view("summary")["refused"] == 0


def test_a_body_rejecting_some_records_fails_only_those_rows(receiver, connect):
    destination = connect()
    batch = records(3)[:1] + [Record("acct_bad", "add", {"email": "x@example.com"}, "h", "d_bad")] + records(3)[1:]
    receiver.control.faults(rate=1.0, kinds=["partial"], seed=3, partial_share=0.34)
    results = destination.send(batch)
    by_key = {r.key: r for r in results}
    assert not by_key["acct_bad"].ok and not by_key["acct_bad"].retryable
    assert by_key["acct_bad"].error == "webhook receiver rejected the record: rejected_key"
    partial = [r for r in results if not r.ok and r.key != "acct_bad"]
    assert len(partial) == 1 and partial[0].retryable and partial[0].error.endswith("partial_failure")
    accepted = {rec["key"] for rec in receiver.control.view("records").values()}
    assert accepted == {r.key for r in results if r.ok}


def test_retries_of_one_batch_keep_its_delivery_id_and_land_once(receiver, connect):
    destination = connect()
    receiver.control.faults(rate=1.0, kinds=["500_after", "reset_after", "slow_after"], seed=1, count=3, slow_s=1.0)
    batch = records(5)
    assert all(r.ok for r in destination.send(batch))
    deliveries = receiver.control.view("deliveries")
    assert len(deliveries) == 4 and {d["delivery_id"] for d in deliveries} == {batch_delivery_id(CTX.sync_name, batch)}
    summary = receiver.control.view("summary")
    assert (summary["unique_records"], summary["duplicates"]) == (5, 15)


def test_every_record_exactly_once_under_20_percent_faults_of_every_kind(receiver, connect):
    destination = connect()
    receiver.control.faults(rate=0.2, kinds=ALL_FAULTS, seed=2026, retry_after_s=0, slow_s=0.6)
    pending = records(400)
    confirmed: set[str] = set()
    for _run in range(5):  # each pass stands for a later run retrying the failed rows
        failed = []
        for start in range(0, len(pending), 4):
            chunk = pending[start:start + 4]
            for record, result in zip(chunk, destination.send(chunk), strict=True):
                assert record.key == result.key
                if result.ok:
                    confirmed.add(record.key)
                else:
                    failed.append(record)
        pending = failed
        if not pending:
            break
    assert not pending
    accepted = receiver.control.view("records")
    assert sorted(rec["key"] for rec in accepted.values()) == sorted(confirmed) == sorted(f"acct_{i}" for i in range(400))
    counts = receiver.control.log(requests=False)["counts"]
    assert {k for k in counts if k.startswith("fault:")} >= {f"fault:{kind}" for kind in ALL_FAULTS}


def test_wrong_secret_is_one_clear_error_without_the_secret(receiver, connect):
    destination = connect(secret="wrong-" + CANARY)
    with pytest.raises(HttpHookError, match=r"refused the delivery \(401 bad_signature\).*'hook_test'") as caught:
        destination.send(records(2))
    assert CANARY not in str(caught.value)


def test_canary_secret_appears_in_no_log_error_or_request(receiver, connect, caplog):
    caplog.set_level(logging.DEBUG)
    destination = connect(max_attempts=2)
    receiver.control.faults(rate=1.0, kinds=["500"])
    results = destination.send(records(3))
    assert not any(r.ok for r in results)
    receiver.control.faults(rate=1.0, kinds=["partial"])
    results += destination.send(records(3, prefix="b"))
    texts = [caplog.text, *(r.error or "" for r in results)]
    texts.append(orjson.dumps(receiver.control.log()).decode())  # what went over the wire, as the receiver saw it
    for text in texts:
        assert CANARY not in text
    for text in texts[:-1]:
        assert URL_SECRET not in text and "@example.com" not in text
    assert "still failing after 2 attempts (last: 500 server error)" in results[0].error


def test_readme_snippet_verifies_a_delivery_and_rejects_a_replay():
    text = README.read_text()
    match = re.search(r"<!-- webhook-verify -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README lost its webhook verification snippet"
    namespace: dict = {}
    exec(match.group(1), namespace)  # noqa: S102 - the README's own example, run as a reader would
    accept = namespace["accept_delivery"]
    body = b'{"delivery_id": "whb_1", "records": []}'
    ts = int(time.time())
    headers = {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: signature(CANARY, ts, body), DELIVERY_HEADER: "whb_1"}
    seen: set[str] = set()
    assert accept(CANARY, headers, body, seen) is True
    assert accept(CANARY, headers, body, seen) is False                       # the same delivery again
    assert accept(CANARY, {**headers, DELIVERY_HEADER: "whb_2"}, body + b" ", set()) is False  # tampered body
    old = ts - 3600
    stale = {**headers, TIMESTAMP_HEADER: str(old), SIGNATURE_HEADER: signature(CANARY, old, body)}
    assert accept(CANARY, stale, body, set()) is False                        # an old capture, replayed


def test_the_receiver_refuses_forged_stale_and_unsigned_deliveries(receiver):
    receiver.control.reset()
    body = orjson.dumps({"delivery_id": "whb_x", "records": [{"delivery_id": "r1", "key": "acct_1"}]})
    now = int(time.time())

    def post(headers: dict, content: bytes = body) -> tuple[int, str]:
        response = httpx.post(f"{receiver.base_url}/in", content=content, headers={DELIVERY_HEADER: "whb_x", **headers})
        return response.status_code, response.json()["error"]

    signed = {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: signature(CANARY, now, body)}
    old = now - 600
    assert post({}) == (401, "missing_signature")
    assert post(signed, body + b" ") == (401, "bad_signature")
    assert post({**signed, SIGNATURE_HEADER: signature("other", now, body)}) == (401, "bad_signature")
    assert post({TIMESTAMP_HEADER: str(old), SIGNATURE_HEADER: signature(CANARY, old, body)}) == (401, "stale_timestamp")
    assert receiver.control.view("summary")["unique_records"] == 0
    assert httpx.post(f"{receiver.base_url}/in", content=body, headers={DELIVERY_HEADER: "whb_x", **signed}).status_code == 200
