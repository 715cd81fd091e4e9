"""The local Intercom answers as Intercom does: spec validation, 409 with the id, search lag, 10 s windows, errors."""

from __future__ import annotations

import time

import httpx
import pytest

from retention.local_servers.base import serve
from retention.local_servers.specs import (
    INTERCOM_FULL, INTERCOM_OPERATIONS, INTERCOM_SUBSET, SLACK_FULL, SLACK_OPERATIONS, SLACK_SUBSET, derive_subset,
    load_full, load_subset,
)
from support.windows import start_early_in_window

TOKEN = "local-test-token"


@pytest.fixture(scope="module")
def server():
    with serve("intercom", token=TOKEN, search_lag_s=0.5, rate_limit_per_s=3, rate_limit_window_s=10) as s:
        yield s


@pytest.fixture
def api(server):
    server.control.reset()
    with httpx.Client(base_url=server.base_url,
                      headers={"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"}) as client:
        yield client


def test_requests_are_validated_against_intercoms_description(api):
    bad = api.post("/contacts", json={"email": 5})
    assert bad.status_code == 400
    assert bad.json()["errors"] == [{"code": "parameter_invalid", "message": "email: type 'string'"}]
    assert api.post("/contacts/search", json={"pagination": {"per_page": 5}}).status_code == 400  # query required
    assert api.get("/tags", headers={"Intercom-Version": "9.9"}).status_code == 400
    assert api.post("/tags", json={"name": "a", "users": [{"id": "x"}]}).json()["errors"][0]["code"] == "not_found"
    assert httpx.get(f"{api.base_url}/tags").json()["errors"] == [{"code": "unauthorized", "message": "Access Token Invalid"}]


def test_a_duplicate_create_answers_409_with_the_id_and_search_lags(api):
    created = api.post("/contacts", json={"external_id": "u1", "email": "U1@example.com"}).json()
    again = api.post("/contacts", json={"email": "u1@example.com"})
    assert again.status_code == 409
    assert again.json()["errors"][0] == {"code": "conflict",
                                         "message": f"A contact matching those details already exists with id={created['id']}"}
    query = {"query": {"field": "external_id", "operator": "IN", "value": ["u1", "u2"]}}
    assert api.post("/contacts/search", json=query).json()["total_count"] == 0  # not searchable yet
    time.sleep(0.6)
    found = api.post("/contacts/search", json=query).json()
    assert [c["id"] for c in found["data"]] == [created["id"]]


def test_custom_attributes_must_exist_first(api):
    refused = api.put("/contacts/x", json={"custom_attributes": {"mrr": 1}})
    assert refused.status_code == 404
    contact = api.post("/contacts", json={"external_id": "u2"}).json()
    refused = api.put(f"/contacts/{contact['id']}", json={"custom_attributes": {"mrr": 1.5}})
    assert refused.json()["errors"][0] == {"code": "parameter_not_found", "message": "Custom attribute 'mrr' does not exist"}
    assert api.post("/data_attributes", json={"name": "mrr", "model": "contact", "data_type": "float"}).status_code == 200
    assert api.post("/data_attributes", json={"name": "mrr", "model": "contact", "data_type": "float"}).status_code == 400
    assert api.put(f"/contacts/{contact['id']}", json={"custom_attributes": {"mrr": 1.5}}).status_code == 200


def test_rate_limit_in_ten_second_windows(api, server):
    start_early_in_window(10, budget_s=6)  # the 31 calls must fall in one window
    answers = [api.get("/tags") for _ in range(31)]
    ok, limited = answers[0], answers[-1]
    assert ok.headers["X-RateLimit-Limit"] == "30"
    reset = int(ok.headers["X-RateLimit-Reset"])
    assert reset % 10 == 0 and 0 < reset - time.time() <= 10
    assert limited.status_code == 429
    assert limited.json()["errors"][0]["code"] == "rate_limit_exceeded"
    assert limited.headers["X-RateLimit-Remaining"] == "0"


def test_committed_subsets_match_the_vendor_files():
    for full, subset, operations in ((INTERCOM_FULL, INTERCOM_SUBSET, INTERCOM_OPERATIONS),
                                     (SLACK_FULL, SLACK_SUBSET, SLACK_OPERATIONS)):
        assert load_subset(subset) == derive_subset(load_full(full), operations), subset.name
