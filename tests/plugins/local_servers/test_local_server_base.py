"""The local server base: its own process, fault kinds, enforced rate, request log, control API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime

import httpx
import orjson
import pytest

from retention.hooks.webhook_signature import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from retention.local_servers import serve
from support.windows import start_early_in_window

SECRET = "receiver-secret"


def delivery(batch: str, keys: list[str]) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps({"delivery_id": batch, "records": [{"delivery_id": f"{batch}-{k}", "key": k} for k in keys]})
    ts = int(time.time())
    headers = {DELIVERY_HEADER: batch, TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: signature(SECRET, ts, body)}
    return body, headers


@pytest.fixture(scope="module")
def server():
    with serve("webhook", secret=SECRET) as running:
        yield running


@pytest.fixture
def client(server):
    server.control.reset()
    with httpx.Client(base_url=server.base_url, timeout=0.5) as c:
        yield c


def post(client: httpx.Client, batch: str = "b1", keys: tuple[str, ...] = ("a", "b")) -> httpx.Response:
    body, headers = delivery(batch, list(keys))
    return client.post("/in", content=body, headers={**headers, "Authorization": "Bearer hidden"})


def test_runs_in_its_own_process_and_stops_with_the_block():
    with pytest.raises(RuntimeError, match="boom"):
        with serve("webhook", secret=SECRET) as running:
            assert running.process.pid != os.getpid()
            assert httpx.get(f"{running.base_url}/__control/health").json()["vendor"] == "webhook"
            raise RuntimeError("boom")
    assert running.process.poll() is not None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{running.base_url}/__control/health")


def test_a_server_that_cannot_start_says_why():
    with pytest.raises(RuntimeError, match="needs the option secret"):
        with serve("webhook"):
            pass
    with pytest.raises(ValueError, match="unknown local server 'nope'"):
        with serve("nope"):
            pass


def test_cli_refuses_an_unknown_vendor_in_one_line():
    done = subprocess.run([sys.executable, "-m", "retention.local_servers", "nope"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown local server 'nope'" in done.stderr.strip().splitlines()[-1]


def test_fault_kinds_answer_as_documented(server, client):
    control = server.control
    control.faults(rate=1.0, kinds=["429_seconds"], retry_after_s=2)
    assert (r := post(client)).status_code == 429 and r.headers["retry-after"] == "2"
    control.faults(rate=1.0, kinds=["429_date"], retry_after_s=2)
    r = post(client)
    assert r.status_code == 429
    ahead = parsedate_to_datetime(r.headers["retry-after"]).timestamp() - time.time()
    assert 0 < ahead <= 2.5
    control.faults(rate=1.0, kinds=["500"])
    assert (r := post(client)).status_code == 500 and r.json() == {"error": "internal_error", "status": 500}
    control.faults(rate=1.0, kinds=["slow"], slow_s=1.0)
    with pytest.raises(httpx.ReadTimeout):
        post(client)
    control.faults(rate=1.0, kinds=["reset"])
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        post(client)
    log = control.requests()
    assert [r["fault"] for r in log] == ["429_seconds", "429_date", "500", "slow", "reset"]
    assert not any(r["processed"] for r in log)
    assert control.view("summary")["unique_records"] == 0


def test_after_processing_faults_fail_the_client_but_the_server_kept_the_request(server, client):
    server.control.faults(rate=1.0, kinds=["500_after"])
    assert post(client, batch="b0").status_code == 500
    for n, kind in ((1, "slow_after"), (2, "reset_after")):
        server.control.faults(rate=1.0, kinds=[kind], slow_s=1.0)
        with pytest.raises((httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)):
            post(client, batch=f"b{n}")
    log = server.control.requests()
    assert [(r["fault"], r["processed"], r["answered"]) for r in log] == [
        ("500_after", True, 200), ("slow_after", True, 200), ("reset_after", True, 200)]
    assert server.control.view("summary")["unique_records"] == 6


def test_faults_are_deterministic_for_a_seed_and_limited_to_paths_and_count(server, client):
    def run() -> list:
        server.control.reset()
        server.control.faults(rate=0.5, kinds=["500", "429_seconds"], seed=11, retry_after_s=0)
        for i in range(20):
            post(client, batch=f"s{i}")
        return [r["fault"] for r in server.control.requests(bodies=False)]

    first = run()
    assert first == run()
    assert 4 <= sum(f is not None for f in first) <= 16
    server.control.reset()
    server.control.faults(rate=1.0, kinds=["500"], paths=["/other"])
    assert post(client).status_code == 200
    server.control.faults(rate=1.0, kinds=["500"], count=1)
    assert [post(client, batch=f"c{i}").status_code for i in range(3)] == [500, 200, 200]


def test_bad_fault_plans_are_refused(server):
    with pytest.raises(ValueError, match="unknown fault kinds"):
        server.control.faults(rate=0.5, kinds=["teapot"])
    with pytest.raises(ValueError, match="needs at least one kind"):
        server.control.faults(rate=0.5)


def test_enforced_rate_answers_429_with_retry_after_and_reset_headers(server, client):
    server.control.limits(rate_limit_per_s=5)
    start_early_in_window(1, budget_s=0.9)
    answers = [post(client, batch=f"r{i}") for i in range(8)]
    ok = [a for a in answers if a.status_code == 200]
    limited = [a for a in answers if a.status_code == 429]
    assert 5 <= len(ok) <= 7 and limited  # a window boundary may still fall inside a slow burst
    for a in limited:
        assert a.headers["retry-after"] == "1"
        assert a.headers["x-ratelimit-remaining"] == "0"
        assert time.time() - 1 < int(a.headers["x-ratelimit-reset"]) <= time.time() + 2
    assert ok[0].headers["x-ratelimit-limit"] == "5"


def test_log_records_requests_without_credentials_and_reset_clears_it(server, client):
    post(client)
    (entry,) = server.control.requests()
    assert entry["method"] == "POST" and entry["path"] == "/in" and entry["status"] == 200
    assert entry["body"]["delivery_id"] == "b1"
    assert "authorization" not in entry["headers"]
    assert "body" not in server.control.requests(bodies=False)[0]
    server.control.reset()
    assert server.control.requests() == []
    assert server.control.view("summary")["unique_records"] == 0
