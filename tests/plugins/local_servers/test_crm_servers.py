"""The local HubSpot, Customer.io and Braze answer as the vendors document: auth, batch limits,
partial-failure bodies, rate-limit headers and 429s (each server in its own process)."""

from __future__ import annotations

import httpx

from retention.local_servers import serve
from support.windows import start_early_in_window


def test_hubspot_contract():
    with serve("hubspot", token="tok", max_per_interval=5, interval_ms=60_000, daily=1000) as server:
        api = httpx.Client(base_url=server.base_url, headers={"Authorization": "Bearer tok"})
        assert httpx.get(f"{server.base_url}/crm/v3/lists/object-type-id/0-1/name/x").json()["category"] == \
            "INVALID_AUTHENTICATION"
        upsert = "/crm/v3/objects/contacts/batch/upsert"
        too_many = {"inputs": [{"id": f"u{i}@x.io", "idProperty": "email", "properties": {}} for i in range(101)]}
        assert api.post(upsert, json=too_many).status_code == 400
        twice = {"inputs": [{"id": "a@x.io", "idProperty": "email", "properties": {}}] * 2}
        assert "Duplicate IDs" in api.post(upsert, json=twice).json()["message"]
        mixed = {"inputs": [
            {"id": "a@x.io", "idProperty": "email", "properties": {"plan": "pro"}, "objectWriteTraceId": "t1"},
            {"id": "not-an-email", "idProperty": "email", "properties": {}, "objectWriteTraceId": "t2"},
        ]}
        answer = api.post(upsert, json=mixed)
        body = answer.json()
        assert answer.status_code == 207 and body["numErrors"] == 1
        assert body["errors"][0]["context"]["objectWriteTraceId"] == ["t2"]
        assert [(r["objectWriteTraceId"], r["new"]) for r in body["results"]] == [("t1", True)]
        assert answer.headers["X-HubSpot-RateLimit-Max"] == "5" and "X-HubSpot-RateLimit-Daily-Remaining" in answer.headers
        record = body["results"][0]["id"]
        created = api.post("/crm/v3/lists", json={"name": "L", "objectTypeId": "0-1", "processingType": "MANUAL"})
        list_id = created.json()["list"]["listId"]
        change = api.put(f"/crm/v3/lists/{list_id}/memberships/add-and-remove",
                         json={"recordIdsToAdd": [record, "999"], "recordIdsToRemove": []}).json()
        assert change == {"recordIdsAdded": [record], "recordIdsRemoved": [], "recordIdsMissing": ["999"]}
        limited = api.post(upsert, json=mixed)  # the 6th authenticated request in the window
        assert limited.status_code == 429 and limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"


def test_customerio_contract():
    with serve("customerio", site_id="site", api_key="key") as server:
        api = httpx.Client(base_url=server.base_url, auth=("site", "key"))
        assert httpx.put(f"{server.base_url}/api/v1/customers/a", json={}).json() == {
            "meta": {"error": "Unauthorized request"}}
        assert api.put("/api/v1/customers/acct_1", json={"plan": "pro"}).status_code == 200
        refused = api.put("/api/v1/customers/acct_2", json={"note": "x" * 1001})
        assert refused.status_code == 400 and "'note'" in refused.json()["meta"]["error"]
        ids = {"ids": [f"acct_{i}" for i in range(1001)]}
        assert api.post("/api/v1/segments/7/add_customers", json=ids).status_code == 400
        assert api.post("/api/v1/segments/7/add_customers", json={"ids": ["acct_1", "acct_3"]}).status_code == 200
        assert api.post("/api/v1/segments/7/add_customers?id_type=email", json={"ids": ["a@x.io"]}).status_code == 400
        views = server.control.log(requests=False)["views"]
        assert views["segments"] == {"7": ["acct_1", "acct_3"]}  # add_customers creates unknown people
        assert "acct_2" not in views["people"]


def test_braze_contract():
    # 5 requests per 60 s window; the 6 calls below start with at least 40 s of it left
    with serve("braze", api_key="key", rate_limit_per_s=5 / 60, rate_limit_window_s=60) as server:
        api = httpx.Client(base_url=server.base_url, headers={"Authorization": "Bearer key"})
        start_early_in_window(60, budget_s=40)
        objects = [{"external_id": "u1", "plan": "pro", "segs": {"add": ["a", "b"]}},
                   {"external_id": "u2", "email": "not-an-email"},
                   {"plan": "no identifier"}]
        answer = api.post("/users/track", json={"attributes": objects})
        assert answer.status_code == 201 and answer.json()["attributes_processed"] == 1
        assert [(e["index"], e["type"].split(":")[0]) for e in answer.json()["errors"]] == [
            (1, "EMAIL_BAD_FORMAT"), (2, "MISSING_IDENTIFIER")]
        assert all(h in answer.headers for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"))
        for _ in range(4):
            api.post("/users/track", json={"attributes": [{"external_id": "u1", "segs": {"remove": ["a"]}}]})
        limited = api.post("/users/track", json={"attributes": [{"external_id": "u1"}]})
        assert limited.status_code == 429
        assert server.control.view("users")["u1"]["attributes"]["segs"] == ["b"]
        too_many = {"attributes": [{"external_id": f"u{i}"} for i in range(50)],
                    "events": [{"external_id": "u1", "name": "e"}] * 26}
        server.control.limits(None)
        assert api.post("/users/track", json=too_many).status_code == 400  # 76 objects in total
