"""StripeHook: connection handling, retry arithmetic, and retries against injected faults."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from fakes.stripe_dataset import build_dataset
from retention.hooks.stripe import RetryPolicy, StripeHook, StripeHookError, connection_json, parse_retry_after
from retention.simulate.stripe_server import serve

KEY = "sk_test_hook_key_123456"
NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def use_connection(monkeypatch: pytest.MonkeyPatch, host: str, password: str | None = None, **fields) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_STRIPE_DEFAULT", connection_json(host, password, **fields))


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_backoff_doubles_from_base_and_is_capped():
    policy = RetryPolicy(base_delay=0.5, max_delay=5.0)
    assert [policy.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        (format_datetime(NOW + timedelta(seconds=42), usegmt=True), 42.0),
        ("Fri, 01 Mar 2024 11:59:00 GMT", -60.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after_seconds_and_http_date(header, expected):
    assert parse_retry_after(header, now=NOW) == expected


def test_429_delay_honours_retry_after_clamped_between_zero_and_cap():
    policy = RetryPolicy(base_delay=0.5, max_retry_after=60.0)
    assert policy.delay_for_429(1, "7", now=NOW) == 7.0
    assert policy.delay_for_429(1, "3600", now=NOW) == 60.0
    assert policy.delay_for_429(1, "Fri, 01 Mar 2024 11:00:00 GMT", now=NOW) == 0.0  # date in the past
    assert policy.delay_for_429(3, "garbage", now=NOW) == 2.0  # unreadable: exponential backoff


@pytest.mark.parametrize("form", ["url", "host_port_schema"])
def test_base_url_from_connection_host(tmp_path, monkeypatch, form):
    ds = build_dataset(tmp_path, customers=1)
    with serve(ds.root, api_key=KEY) as server:
        if form == "url":
            use_connection(monkeypatch, host=server.base_url + "/", password=KEY)
        else:
            host, port = server.base_url.removeprefix("http://").split(":")
            use_connection(monkeypatch, host=host, port=int(port), schema="http", password=KEY)
        assert StripeHook().get("/v1/customers", {})["data"][0]["id"] == "cus_0000"


def test_connection_without_key_says_what_to_set(monkeypatch):
    use_connection(monkeypatch, host="http://127.0.0.1:9")
    with pytest.raises(StripeHookError, match="has no password: set it to the Stripe secret API key"):
        StripeHook().client


def test_retries_injected_429_and_500_until_the_page_arrives(tmp_path, monkeypatch):
    ds = build_dataset(tmp_path, customers=3)
    sleeps = Sleeps()
    with serve(ds.root, api_key=KEY, rate_429=0.3, rate_500=0.3, seed=11, retry_after=2) as server:
        use_connection(monkeypatch, host=server.base_url, password=KEY)
        hook = StripeHook(retry_policy=RetryPolicy(max_attempts=20, base_delay=0.25, max_delay=1.0), sleep=sleeps)
        pages = [hook.get("/v1/customers", {"limit": 100}) for _ in range(10)]
    assert all([o["id"] for o in p["data"]] == ds.newest_first("customers") for p in pages)
    faults = server.stats.rate_limited + server.stats.server_errors
    assert server.stats.rate_limited > 0 and server.stats.server_errors > 0
    assert len(sleeps) == hook.retries_done == faults
    assert sleeps.count(2.0) == server.stats.rate_limited  # every 429 waited its Retry-After
    assert set(sleeps) <= {2.0, 0.25, 0.5, 1.0}


def test_gives_up_after_max_attempts_with_a_clear_error(tmp_path, monkeypatch):
    ds = build_dataset(tmp_path, customers=1)
    sleeps = Sleeps()
    with serve(ds.root, api_key=KEY, rate_500=1.0) as server:
        use_connection(monkeypatch, host=server.base_url, password=KEY)
        hook = StripeHook(retry_policy=RetryPolicy(max_attempts=4, base_delay=0.1), sleep=sleeps)
        with pytest.raises(StripeHookError, match="still failing after 4 attempts"):
            hook.get("/v1/customers", {})
    assert sleeps == [0.1, 0.2, 0.4]
    assert server.stats.server_errors == 4


def test_wrong_key_fails_at_once_without_leaking_it(tmp_path, monkeypatch):
    ds = build_dataset(tmp_path, customers=1)
    sleeps = Sleeps()
    with serve(ds.root, api_key=KEY) as server:
        use_connection(monkeypatch, host=server.base_url, password="sk_test_not_the_key_777")
        with pytest.raises(StripeHookError, match="rejected the API key") as err:
            StripeHook(sleep=sleeps).get("/v1/customers", {})
    assert "sk_test_not_the_key_777" not in str(err.value) and sleeps == []


def test_list_pages_follows_cursors_to_the_end(tmp_path, monkeypatch):
    ds = build_dataset(tmp_path, customers=60)  # 120 invoices: two pages of 100
    with serve(ds.root, api_key=KEY) as server:
        use_connection(monkeypatch, host=server.base_url, password=KEY)
        pages = list(StripeHook().list_pages("/v1/invoices", {}))
    assert [len(p) for p in pages] == [100, 20]
    assert [o["id"] for p in pages for o in p] == ds.newest_first("invoices")


def test_connection_errors_back_off_then_fail_clearly(monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    use_connection(monkeypatch, host=f"http://127.0.0.1:{port}", password=KEY)
    sleeps = Sleeps()
    hook = StripeHook(retry_policy=RetryPolicy(max_attempts=3, base_delay=0.2), sleep=sleeps)
    with pytest.raises(StripeHookError, match=r"still failing after 3 attempts \(connection error"):
        hook.get("/v1/customers", {})
    assert sleeps == [0.2, 0.4]
