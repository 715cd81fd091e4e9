"""The shared HTTP hook base: wait arithmetic, the token bucket, and retries against a real local server."""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import orjson
import pytest

from retention.hooks.http import (
    HttpHook,
    HttpHookError,
    RetryPolicy,
    TokenBucket,
    parse_retry_after,
    seconds_until_reset,
)
from retention.local_servers import serve

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
EPOCH = NOW.timestamp()
TOKEN = "canary-token-7f3a9c"
URL_SECRET = "T0CANARY/B0SECRET/xyzzy"


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        ("0", 0.0),
        (format_datetime(NOW + timedelta(seconds=42), usegmt=True), 42.0),
        (format_datetime(NOW - timedelta(seconds=60), usegmt=True), -60.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after_both_forms(header, expected):
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (str(int(EPOCH) + 30), "epoch", 30.0),   # reset - now, not now - reset
        (str(int(EPOCH) - 5), "epoch", -5.0),    # just passed
        ("30", "seconds", 30.0),
        ("1.5", "seconds", 1.5),
        ("never", "epoch", None),
        (None, "epoch", None),
    ],
)
def test_seconds_until_reset(value, kind, expected):
    assert seconds_until_reset(value, kind, NOW) == expected


def test_429_wait_prefers_retry_after_then_reset_then_backoff_and_is_capped():
    policy = RetryPolicy(base_delay=0.5, max_wait=60.0)
    reset = {"X-RateLimit-Reset": str(int(EPOCH) + 20)}

    def wait(attempt, headers, kind="epoch"):
        return policy.wait_for_429(attempt, headers, reset_header="X-RateLimit-Reset", reset_kind=kind, now=NOW)

    assert wait(1, {"Retry-After": "7", **reset}) == 7.0
    assert wait(1, {"Retry-After": format_datetime(NOW + timedelta(seconds=9), usegmt=True)}) == 9.0
    assert wait(1, reset) == 20.0
    assert wait(1, {"x-ratelimit-reset": "12"}, kind="seconds") == 12.0  # header names are case-insensitive
    assert wait(3, {}) == 2.0                                            # nothing usable: backoff
    assert wait(3, {"Retry-After": "garbage"}) == 2.0
    # every computed wait is capped, and a past time waits nothing
    assert wait(1, {"Retry-After": "86400"}) == 60.0
    assert wait(1, {"Retry-After": format_datetime(NOW - timedelta(hours=1), usegmt=True)}) == 0.0
    assert wait(1, {"X-RateLimit-Reset": "1"}) == 0.0                   # a stale epoch
    assert wait(1, {"X-RateLimit-Reset": str(int(EPOCH * 1000))}) == 60.0  # milliseconds by mistake
    assert wait(1, {"X-RateLimit-Reset": "1700000000"}, kind="seconds") == 60.0  # an epoch read as seconds


def test_backoff_doubles_and_is_capped():
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_token_bucket_allows_its_burst_then_paces_at_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=4.0, capacity=2, clock=clock, sleep=clock.sleep)
    start = clock.now
    times = []
    for _ in range(10):
        bucket.acquire()
        times.append(round(clock.now - start, 6))
    assert times[:2] == [0.0, 0.0]
    assert times[2:] == [0.25 * n for n in range(1, 9)]
    clock.now += 10  # idle: the burst comes back, but no more than the capacity
    waits = [bucket.reserve() for _ in range(3)]
    assert waits[:2] == [0.0, 0.0] and waits[2] > 0


def test_token_bucket_pause_holds_every_caller_and_allows_no_burst_after():
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, capacity=5, clock=clock, sleep=clock.sleep)
    bucket.pause(3.0)
    assert bucket.reserve() == pytest.approx(3.0)
    assert bucket.reserve() == pytest.approx(3.1)


def test_threads_sharing_a_bucket_stay_within_its_rate():
    bucket = TokenBucket(rate=50.0, capacity=1)
    calls: list[float] = []

    def worker() -> None:
        for _ in range(5):
            bucket.acquire()
            calls.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 20
    assert max(calls) - start >= 19 / 50  # 20 calls at 50/s, whichever thread makes them


def test_shared_bucket_is_one_per_destination():
    a = TokenBucket.shared("test:dest-a", 5.0)
    assert TokenBucket.shared("test:dest-a", 5.0) is a
    assert TokenBucket.shared("test:dest-b", 5.0) is not a


# --------------------------------------------------------------------------- against a real server


class PlainHook(HttpHook):
    conn_name_attr = "plain_conn_id"
    default_conn_name = "plain_default"
    conn_type = "retention_test_plain"
    hook_name = "test"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(min(seconds, 2.0))


@pytest.fixture(scope="module")
def server():
    # The webhook receiver stands in for any vendor: faults and limits act before its route.
    with serve("webhook", secret="not-used-here") as running:
        yield running


@pytest.fixture
def hook(server, monkeypatch):
    server.control.reset()
    conn = {
        "conn_type": "retention_test_plain",
        "host": f"{server.base_url}/services/{URL_SECRET}",
        "password": TOKEN,
        "extra": {"rate_limit_per_s": 1000, "burst": 50, "timeout": 0.5, "retry_base_delay": 0.01, "max_attempts": 4},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PLAIN_TEST", orjson.dumps(conn).decode())
    made = PlainHook("plain_test", sleep=Sleeps())
    yield made
    made.close()


def received(server) -> list[dict]:
    return server.control.requests(bodies=False)


def test_idempotent_call_is_retried_through_500_timeout_and_reset(server, hook):
    for kind in ("500", "slow", "reset"):
        server.control.reset()
        server.control.faults(rate=1.0, kinds=[kind], count=2, slow_s=1.0)
        response = hook.request("POST", "", json={"x": 1}, idempotent=True)
        assert response.status_code == 401  # reached the receiver's route (it wants a signature)
        assert [r["fault"] for r in received(server)] == [kind, kind, None]
    assert hook.retries_done == 6


@pytest.mark.parametrize("kind", ["500", "slow", "reset", "500_after", "reset_after"])
def test_unsafe_call_is_not_repeated_after_a_5xx_timeout_or_reset(server, hook, kind):
    server.control.faults(rate=1.0, kinds=[kind], slow_s=1.0)
    with pytest.raises(HttpHookError) as caught:
        hook.request("POST", "/v1/messages", json={"text": "hello"}, idempotent=False)
    assert caught.value.outcome_unknown
    assert "not safe to repeat" in str(caught.value)
    assert len(received(server)) == 1


@pytest.mark.parametrize("kind", ["429_seconds", "429_date"])
def test_429_is_retried_even_for_unsafe_calls_after_the_wait_it_asks_for(server, hook, kind):
    server.control.faults(rate=1.0, kinds=[kind], count=1, retry_after_s=1)
    response = hook.request("POST", "/v1/messages", json={"text": "hello"}, idempotent=False)
    assert response.status_code == 401
    assert len(received(server)) == 2
    (waited,) = hook._sleep
    assert 0.0 <= waited <= 1.0 if kind == "429_date" else waited == 1.0


def test_enforced_server_rate_is_honoured_with_its_reset_headers(server, hook):
    server.control.limits(rate_limit_per_s=5)
    statuses = [hook.request("GET", "/thing", idempotent=True).status_code for _ in range(12)]
    assert statuses == [405] * 12  # every call got through in the end (the receiver only takes POST)
    log = received(server)
    limited = [r for r in log if r["status"] == 429]
    assert limited, "the hook's own budget was set above the server's: some calls must have been limited"
    assert all(0 < s <= 1.0 for s in hook._sleep)


def test_exhausted_retries_and_errors_carry_no_secret(server, hook, caplog):
    caplog.set_level(logging.DEBUG)
    server.control.faults(rate=1.0, kinds=["500"])
    with pytest.raises(HttpHookError) as caught:
        hook.request("POST", "", json={"email": "person@example.com"}, idempotent=True)
    message = str(caught.value)
    assert "still failing after 4 attempts" in message and "plain_test" in message
    assert len(received(server)) == 4
    for text in (message, caplog.text, repr(caught.value.__cause__), repr(caught.value.__context__)):
        assert TOKEN not in text and URL_SECRET not in text and "person@example.com" not in text
    # the token does reach the server (it authenticates), but its log never keeps it
    assert all("authorization" not in r["headers"] for r in received(server))


def test_a_call_that_never_connected_is_retried_even_when_unsafe(monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = {"conn_type": "retention_test_plain", "host": f"http://127.0.0.1:{port}",
            "extra": {"max_attempts": 3, "retry_base_delay": 0.01}}
    monkeypatch.setenv("AIRFLOW_CONN_PLAIN_CLOSED", orjson.dumps(conn).decode())
    hook = PlainHook("plain_closed", sleep=Sleeps())
    with pytest.raises(HttpHookError, match="still failing after 3 attempts \\(last: could not connect\\)") as caught:
        hook.request("POST", "/v1/messages", json={"text": "hi"}, idempotent=False)
    assert not caught.value.outcome_unknown and hook.retries_done == 2


def test_missing_connection_or_host_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_PLAIN_UNDEFINED", raising=False)
    with pytest.raises(HttpHookError, match="'plain_undefined' is not defined: add it .* AIRFLOW_CONN_PLAIN_UNDEFINED$"):
        PlainHook("plain_undefined").request("GET", "/", idempotent=True)
    monkeypatch.setenv("AIRFLOW_CONN_PLAIN_NOHOST", orjson.dumps({"conn_type": "retention_test_plain"}).decode())
    with pytest.raises(HttpHookError, match="'plain_nohost' has no host"):
        PlainHook("plain_nohost").request("GET", "/", idempotent=True)
