"""The daily Stripe run through the Events API, against the local Stripe server.

The server turns every change it sees in its files into Stripe's events (``customer.deleted``,
``customer.subscription.deleted`` for a cancellation, ``invoice.paid``, ...); the daily run
applies them to ``raw.stripe_*`` whatever the age of the object."""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg
import pytest

from fakes.stripe_dataset import API_KEY as KEY, DAY, T0, StripeDataset, build_dataset
from retention.extract import stripe_state
from retention.extract.stripe import STRIPE_OBJECTS, ExtractPlan, StripeExtractCutShort, ingest
from retention.hooks.stripe import StripeHook
from retention.simulate.stripe_server import serve

DAILY = ExtractPlan(full_refresh_weekday=None)


@pytest.fixture
def dataset(tmp_path: Path) -> StripeDataset:
    ds = build_dataset(tmp_path, customers=6)
    ds.get("invoices", "in_0001_1").update(status="open", amount_paid=0, amount_remaining=5000)
    ds.get("invoices", "in_0004_1").update(status="open", amount_paid=0, amount_remaining=2000)
    ds.write()
    return ds


def daily_run(hook: StripeHook, conn: psycopg.Connection, plan: ExtractPlan = DAILY) -> dict[str, dict]:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return {name: ingest(hook, conn, name, plan, today - timedelta(days=1), today) for name in STRIPE_OBJECTS}


def raw(conn: psycopg.Connection, table: str) -> dict[str, dict]:
    return {r[0]: r[1] for r in conn.execute(f"select id, data from raw.{table}")}


def test_the_daily_run_applies_every_change_to_old_objects(dataset, conn, hook_for):
    with serve(dataset.root, api_key=KEY) as server:
        h = hook_for(server.base_url)
        first = daily_run(h, conn)
        assert {r["mode"] for r in first.values()} == {"full_refresh"}  # empty tables

        # Changes to objects created months before "today", as Stripe would record them.
        sub = dataset.get("subscriptions", "sub_0000")
        sub.update(status="canceled", canceled_at=T0 + 90 * DAY, ended_at=T0 + 90 * DAY)
        dataset.get("invoices", "in_0001_1").update(status="paid", amount_paid=5000, amount_remaining=0)
        dataset.get("invoices", "in_0004_1").update(status="void", amount_remaining=0)
        dataset.objects["customers"] = [c for c in dataset.objects["customers"] if c["id"] != "cus_0005"]
        dataset.get("prices", "price_1").update(active=False, nickname="Pro (retired)")
        upgraded = dataset.get("subscriptions", "sub_0001")  # a plan change onto another price
        upgraded["items"]["data"][0]["price"] = copy.deepcopy(dataset.get("prices", "price_2"))
        dataset.objects["discounts"].append(dict(copy.deepcopy(dataset.get("discounts", "di_0000")),
                                                 id="di_0002", subscription="sub_0002", customer="cus_0002"))
        dataset.get("subscriptions", "sub_0002")["discounts"] = ["di_0002"]
        dataset.write()
        httpx.get(f"{server.base_url}/v1/customers", headers={"Authorization": f"Bearer {KEY}"})  # noticed
        sub["metadata"] = {"cancel_reason": "price"}  # a second change of the same object: the newest wins
        dataset.write()

        second = daily_run(h, conn)
        third = daily_run(h, conn)  # a rerun: the same events again, nothing changes
    assert {r["mode"] for r in second.values()} == {"events"}
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    ends = conn.execute("select distinct interval_end from raw.stripe_extract_state").fetchall()
    assert ends == [(today,)]  # the data interval the run was for: what the marts can be read up to
    changed = {name: r["events"]["objects_changed"] for name, r in second.items()}
    assert changed == {"customers": 1, "products": 0, "prices": 1, "coupons": 0, "subscriptions": 4, "invoices": 2}
    assert second["customers"]["events"]["deleted"] == 1

    subs, invoices = raw(conn, "stripe_subscriptions"), raw(conn, "stripe_invoices")
    assert subs["sub_0000"]["status"] == "canceled" and subs["sub_0000"]["canceled_at"] == T0 + 90 * DAY
    assert subs["sub_0000"]["metadata"] == {"cancel_reason": "price"}
    assert subs["sub_0001"]["items"]["data"][0]["price"]["id"] == "price_2"
    assert subs["sub_0002"]["discounts"] == ["di_0002"] and "di_0002" in raw(conn, "stripe_discounts")
    assert invoices["in_0001_1"]["status"] == "paid" and invoices["in_0004_1"]["status"] == "void"
    customers = raw(conn, "stripe_customers")
    assert customers["cus_0005"]["deleted"] is True and len(customers) == 6  # kept, marked deleted
    assert not any(c.get("deleted") for i, c in customers.items() if i != "cus_0005")
    prices = raw(conn, "stripe_prices")
    assert prices["price_1"]["active"] is False and "deleted" not in prices["price_1"]
    # History keeps both versions of each changed object.
    statuses = [r[0] for r in conn.execute(
        "select data->>'status' from raw.stripe_invoices_history where id = 'in_0004_1' order by _extracted_at")]
    assert statuses == ["open", "void"]

    for result in third.values():
        assert result["mode"] == "events"
        for counts in result["tables"].values():
            assert counts["inserted"] == counts["updated"] == counts["history_added"] == 0, result
    assert server.stats.requests > 0


def test_a_cursor_older_than_the_event_retention_falls_back_to_a_full_refresh(dataset, conn, hook_for, caplog):
    with serve(dataset.root, api_key=KEY) as server:
        h = hook_for(server.base_url)
        daily_run(h, conn)
        stale = datetime.now(timezone.utc) - timedelta(days=31)
        stripe_state.save(conn, "customers", stale, "events", 0, None)
        # deleted while no events were read: the full refresh no longer lists it
        dataset.objects["customers"] = [c for c in dataset.objects["customers"] if c["id"] != "cus_0005"]
        dataset.write()
        with caplog.at_level(logging.INFO, logger="retention.extract.stripe"):
            result = ingest(h, conn, "customers", DAILY, None, None)
        again = ingest(h, conn, "customers", ExtractPlan(full_refresh=True), None, None)
    assert result["mode"] == "full_refresh" and "30-day event retention" in result["reason"]
    assert "older than Stripe's 30-day event retention" in caplog.text
    assert stripe_state.cursor(conn, "customers") > stale + timedelta(days=30)  # read up to now
    customers = raw(conn, "stripe_customers")
    assert customers["cus_0005"]["deleted"] is True and customers["cus_0005"]["email"]  # its last state, kept
    assert result["marked_deleted"] == 1 and result["tables"]["stripe_customers"]["updated"] == 1
    assert "1 no longer listed by Stripe, marked deleted (e.g. cus_0005)" in caplog.text
    assert sum(not c.get("deleted") for c in customers.values()) == len(dataset.objects["customers"])
    assert again["marked_deleted"] == 0 and again["tables"]["stripe_customers"]["updated"] == 0  # rerun: no change


def test_the_server_serves_events_for_30_days_only_and_pages_them_newest_first(dataset):
    now = [float(T0 + 400 * DAY)]
    with serve(dataset.root, api_key=KEY, clock=lambda: now[0]) as server:
        client = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {KEY}"})
        assert client.get("/v1/events").json()["data"] == []  # what the server started with is history
        for i in range(3):
            dataset.get("customers", "cus_0000")["name"] = f"Renamed {i}"
            dataset.write()
            client.get("/v1/customers", params={"limit": 1})  # the server notices the change
            now[0] += 10 * DAY
        del dataset.objects["customers"][0]
        dataset.write()
        page = client.get("/v1/events", params={"limit": 2, "type": "customer.*"}).json()
        assert [e["type"] for e in page["data"]] == ["customer.deleted", "customer.updated"] and page["has_more"]
        assert page["data"][1]["data"]["previous_attributes"] == {"name": "Renamed 1"}
        rest = client.get("/v1/events", params={"limit": 2, "starting_after": page["data"][-1]["id"]}).json()
        assert len(rest["data"]) == 2 and not rest["has_more"]
        assert client.get("/v1/events", params={"types[]": ["invoice.paid"]}).json()["data"] == []
        now[0] += 5 * DAY  # the first update is now 35 days old: past Stripe's retention
        assert len(client.get("/v1/events").json()["data"]) == 3
        oldest = rest["data"][-1]["id"]
        assert client.get(f"/v1/events/{oldest}").status_code == 404


def test_an_invoice_with_25_lines_is_stored_with_every_line(tmp_path, conn, hook_for):
    ds = build_dataset(tmp_path, customers=3)
    invoice = ds.get("invoices", "in_0000_0")  # on a subscription with a discount (on every line)
    template = invoice["lines"]["data"][0]
    invoice["lines"]["data"] = [dict(copy.deepcopy(template), id=f"il_big_{n:02d}", amount=100 + n) for n in range(25)]
    ds.write()
    with serve(ds.root, api_key=KEY) as server:
        h = hook_for(server.base_url)
        api = httpx.get(f"{server.base_url}/v1/invoices/in_0000_0", headers={"Authorization": f"Bearer {KEY}"})
        assert len(api.json()["lines"]["data"]) == 10 and api.json()["lines"]["has_more"]  # as Stripe embeds them
        ingest(h, conn, "invoices", DAILY, None, None)  # first load: a full listing
        stored = raw(conn, "stripe_invoices")["in_0000_0"]["lines"]
        assert [line["id"] for line in stored["data"]] == [f"il_big_{n:02d}" for n in range(25)]
        assert stored["has_more"] is False
        assert {d for line in stored["data"] for d in line["discounts"]} == {"di_0000"}  # ids, objects in raw

        invoice["status"] = "void"  # the same invoice through an event: lines listed again
        ds.write()
        result = ingest(h, conn, "invoices", DAILY, None, None)
    assert result["mode"] == "events" and result["tables"]["stripe_invoices"]["updated"] == 1
    stored = raw(conn, "stripe_invoices")["in_0000_0"]
    assert stored["status"] == "void" and len(stored["lines"]["data"]) == 25 and not stored["lines"]["has_more"]


def test_a_customer_without_the_metadata_key_is_loaded_and_reported(dataset, conn, hook_for, caplog):
    dataset.get("customers", "cus_0003")["metadata"] = {}
    dataset.write()
    with serve(dataset.root, api_key=KEY) as server, caplog.at_level(logging.WARNING):
        result = ingest(hook_for(server.base_url), conn, "customers", DAILY, None, None)
    assert result["customers_without_account_id"] == 1
    assert "cus_0003" in raw(conn, "stripe_customers")
    assert "1 without metadata.account_id" in caplog.text and "cus_0003" in caplog.text
    assert "billing3@example.com" not in caplog.text

    # once the mapping seed lists it (dbt loads seeds into config), it is mapped, not reported
    conn.execute("create schema if not exists config")
    conn.execute("create table config.stripe_customer_accounts (customer_id text, account_id text)")
    conn.execute("insert into config.stripe_customer_accounts values ('cus_0003', 'acc_3')")
    with serve(dataset.root, api_key=KEY) as server:
        assert ingest(hook_for(server.base_url), conn, "customers", DAILY, None, None)["customers_without_account_id"] == 0


def test_a_full_refresh_that_looks_cut_short_writes_nothing(tmp_path, conn, hook_for):
    ds = build_dataset(tmp_path, customers=30)
    with serve(ds.root, api_key=KEY) as server:
        h = hook_for(server.base_url)
        ingest(h, conn, "customers", DAILY, None, None)
        before = raw(conn, "stripe_customers")
        ds.objects["customers"] = ds.objects["customers"][:20]  # the listing now stops at 20 of 30
        ds.get("customers", "cus_0000")["name"] = "Changed"
        ds.write()
        with pytest.raises(StripeExtractCutShort, match="listed 20 customers where raw.stripe_customers holds 30"):
            ingest(h, conn, "customers", ExtractPlan(full_refresh=True), None, None)
        assert raw(conn, "stripe_customers") == before  # not even the changed name
        relaxed = ingest(h, conn, "customers", ExtractPlan(full_refresh=True, max_count_drop=0.5), None, None)
    assert relaxed["listed"] == 20 and relaxed["live_rows_before"] == 30


def test_the_metadata_key_is_the_dbt_projects_setting(monkeypatch, tmp_path):
    from retention.extract.stripe import account_id_metadata_key

    assert account_id_metadata_key() == "account_id"  # the committed dbt_project.yml
    (tmp_path / "dbt_project").mkdir()
    (tmp_path / "dbt_project" / "dbt_project.yml").write_text("vars:\n  finance_account_id_metadata_key: org_id\n")
    monkeypatch.setenv("RETENTION_HOME", str(tmp_path))
    assert account_id_metadata_key() == "org_id"
