"""The local Stripe server, driven through the official ``stripe`` SDK (unchanged)."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import stripe

from fakes.stripe_dataset import DAY, T0, StripeDataset, build_dataset
from retention.simulate.stripe_server import FaultInjector, RunningStripeServer, serve

KEY = "sk_test_local_server_key"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> StripeDataset:
    return build_dataset(tmp_path_factory.mktemp("stripe"), customers=8)


@pytest.fixture(scope="module")
def server(dataset: StripeDataset) -> Iterator[RunningStripeServer]:
    with serve(dataset.root, api_key=KEY) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: RunningStripeServer) -> stripe.StripeClient:
    return stripe.StripeClient(KEY, base_addresses={"api": server.base_url})


def ids(page) -> list[str]:
    return [o.id for o in page.data]


def test_list_is_newest_first_with_stripe_list_envelope(client, dataset):
    page = client.v1.customers.list(params={"limit": 3})
    assert page.object == "list" and page.url == "/v1/customers"
    assert ids(page) == dataset.newest_first("customers")[:3]
    assert page.has_more is True


def test_default_limit_is_10(client, dataset):
    page = client.v1.invoices.list()
    assert len(page.data) == 10 and page.has_more is True
    assert ids(page) == dataset.newest_first("invoices")[:10]


def test_starting_after_pages_through_everything_once_ties_ordered_by_id(client, dataset):
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"starting_after": cursor} if cursor else {})}
        page = client.v1.customers.list(params=params)
        seen += ids(page)
        if not page.has_more:
            break
        cursor = page.data[-1].id
    assert seen == dataset.newest_first("customers")
    # customers 1 and 2 share one created second: the larger id comes first
    assert seen.index("cus_0002") == seen.index("cus_0001") - 1
    assert [o.id for o in client.v1.customers.list(params={"limit": 2}).auto_paging_iter()] == seen


def test_ending_before_returns_the_page_just_newer_than_the_cursor(client, dataset):
    order = dataset.newest_first("customers")
    cursor = order[5]
    page = client.v1.customers.list(params={"limit": 2, "ending_before": cursor})
    assert ids(page) == order[3:5]
    assert page.has_more is True
    page = client.v1.customers.list(params={"limit": 10, "ending_before": cursor})
    assert ids(page) == order[:5] and page.has_more is False


def test_created_filters(client, dataset):
    def created_ids(**bounds) -> set[str]:
        page = client.v1.customers.list(params={"limit": 100, "created": bounds})
        return set(ids(page))

    created = {o["id"]: o["created"] for o in dataset.objects["customers"]}
    t = T0 + 3 * DAY
    assert created_ids(gte=t) == {i for i, c in created.items() if c >= t}
    assert created_ids(gt=t) == {i for i, c in created.items() if c > t}
    assert created_ids(lt=t) == {i for i, c in created.items() if c < t}
    assert created_ids(lte=t) == {i for i, c in created.items() if c <= t}
    assert created_ids(gte=T0 + DAY, lt=t) == {i for i, c in created.items() if T0 + DAY <= c < t}
    exact = client.v1.customers.list(params={"created": T0 + DAY})
    assert set(ids(exact)) == {"cus_0001", "cus_0002"}


def test_subscriptions_exclude_canceled_unless_status_says_otherwise(client, dataset):
    def all_ids(**params) -> set[str]:
        return {s.id for s in client.v1.subscriptions.list(params={"limit": 100, **params}).auto_paging_iter()}

    canceled = dataset.ids("subscriptions", status="canceled")
    assert canceled
    assert all_ids() == dataset.ids("subscriptions") - canceled
    assert all_ids(status="all") == dataset.ids("subscriptions")
    assert all_ids(status="canceled") == canceled
    assert all_ids(status="active") == dataset.ids("subscriptions", status="active")


def test_equality_filters(client, dataset):
    invoices = client.v1.invoices.list(params={"customer": "cus_0003", "limit": 100})
    assert set(ids(invoices)) == dataset.ids("invoices", customer="cus_0003")
    prices = client.v1.prices.list(params={"product": "prod_pro"})
    assert set(ids(prices)) == dataset.ids("prices", product="prod_pro")
    assert ids(client.v1.customers.list(params={"email": "billing2@example.com"})) == ["cus_0002"]
    assert len(client.v1.products.list(params={"active": True}).data) == 2
    assert client.v1.products.list(params={"active": False}).data == []
    with pytest.raises(stripe.InvalidRequestError, match="Invalid status"):
        client.v1.subscriptions.list(params={"status": "gone"})


def test_expand_discounts_and_customer_on_list(client, dataset):
    page = client.v1.subscriptions.list(
        params={"status": "all", "limit": 100, "expand": ["data.discounts", "data.customer"]}
    )
    by_id = {s.id: s for s in page.data}
    discounted = by_id["sub_0003"]
    assert discounted.discounts[0].object == "discount"
    assert discounted.discounts[0].to_dict() == dataset.get("discounts", "di_0003")
    assert discounted.customer.object == "customer" and discounted.customer.id == "cus_0003"
    # without expand: ids, exactly as stored
    plain = client.v1.subscriptions.retrieve("sub_0003")
    assert plain.discounts == ["di_0003"] and plain.customer == "cus_0003"


def test_expand_nested_path_and_retrieve_with_expand(client):
    page = client.v1.prices.list(params={"expand": ["data.product"]})
    assert all(p.product.object == "product" for p in page.data)
    inv = client.v1.invoices.retrieve("in_0000_0", params={"expand": ["customer", "lines.data.discounts"]})
    assert inv.customer.id == "cus_0000"
    assert inv.discounts == ["di_0000"]  # not asked for: stays an id
    assert inv.lines.data[0].discounts[0].id == "di_0000"
    assert inv.lines.data[0].discounts[0].object == "discount"


def test_expand_rejects_unexpandable_and_unprefixed_list_paths(client):
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        client.v1.customers.retrieve("cus_0000", params={"expand": ["email"]})
    with pytest.raises(stripe.InvalidRequestError, match="must start with 'data.'"):
        client.v1.subscriptions.list(params={"expand": ["customer"]})
    with pytest.raises(stripe.InvalidRequestError, match="more than 4 levels"):
        client.v1.subscriptions.list(params={"expand": ["data.items.data.price.product"]})


def test_retrieve_by_id_and_404_resource_missing(client, dataset):
    assert client.v1.coupons.retrieve("COUPON20").to_dict() == dataset.get("coupons", "COUPON20")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.retrieve("cus_missing")
    assert err.value.http_status == 404
    assert err.value.code == "resource_missing"
    assert err.value.json_body["error"]["type"] == "invalid_request_error"
    assert err.value.request_id.startswith("req_")


@pytest.mark.parametrize("bad", [0, 101, "ten"])
def test_limit_outside_1_to_100_is_a_400(client, bad):
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.list(params={"limit": bad})
    assert err.value.http_status == 400 and err.value.param == "limit"


def test_bad_cursor_and_unknown_parameter_are_400(client):
    with pytest.raises(stripe.InvalidRequestError, match="No such customer"):
        client.v1.customers.list(params={"starting_after": "cus_nope"})
    with pytest.raises(stripe.InvalidRequestError, match="unknown parameter: colour"):
        client.v1.customers.list(params={"colour": "blue"})
    with pytest.raises(stripe.InvalidRequestError, match="only specify one"):
        client.v1.customers.list(params={"starting_after": "cus_0001", "ending_before": "cus_0003"})


def test_wrong_or_missing_key_is_401_with_stripe_error(server):
    with pytest.raises(stripe.AuthenticationError) as err:
        stripe.StripeClient("sk_test_wrong_key_9999", base_addresses={"api": server.base_url}).v1.customers.list()
    assert err.value.http_status == 401
    assert "sk_test_wrong_key_9999" not in str(err.value)  # masked like Stripe does
    request = urllib.request.Request(f"{server.base_url}/v1/customers")
    with pytest.raises(urllib.error.HTTPError) as http:
        urllib.request.urlopen(request)
    body = orjson.loads(http.value.read())
    assert http.value.code == 401 and body["error"]["type"] == "invalid_request_error"
    assert "did not provide an API key" in body["error"]["message"]
    assert http.value.headers["Request-Id"].startswith("req_")


def test_basic_auth_with_key_as_user_is_accepted(server):
    token = base64.b64encode(f"{KEY}:".encode()).decode()
    request = urllib.request.Request(f"{server.base_url}/v1/coupons", headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request) as response:
        assert orjson.loads(response.read())["object"] == "list"


def test_injected_429_has_rate_limit_error_and_retry_after(dataset):
    with serve(dataset.root, api_key=KEY, rate_429=1.0, retry_after=7) as running:
        client = stripe.StripeClient(KEY, base_addresses={"api": running.base_url})
        with pytest.raises(stripe.RateLimitError) as err:
            client.v1.customers.list()
    assert err.value.http_status == 429
    assert err.value.json_body["error"]["type"] == "rate_limit_error"
    assert err.value.headers["Retry-After"] == "7"
    assert running.stats.rate_limited == 1


def test_fault_draws_are_deterministic_per_seed():
    def sequence(seed: int) -> list[int | None]:
        faults = FaultInjector(rate_429=0.2, rate_500=0.2, seed=seed)
        return [e.status if (e := faults.draw()) else None for _ in range(200)]

    first = sequence(3)
    assert first == sequence(3) != sequence(4)
    assert 20 < first.count(429) < 60 and 20 < first.count(500) < 60


def test_files_are_reread_when_they_change(tmp_path: Path):
    ds = build_dataset(tmp_path, customers=2)
    with serve(ds.root, api_key=KEY) as running:
        client = stripe.StripeClient(KEY, base_addresses={"api": running.base_url})
        assert client.v1.customers.retrieve("cus_0001").name == "Account 1"
        ds.get("customers", "cus_0001")["name"] = "Renamed"
        ds.write()
        assert client.v1.customers.retrieve("cus_0001").name == "Renamed"


def test_malformed_file_fails_at_start_with_file_and_line(tmp_path: Path):
    ds = build_dataset(tmp_path, customers=2)
    with (ds.root / "stripe" / "customers.jsonl").open("ab") as fh:
        fh.write(b'{"id": "cus_x", "object": "customer"}\n')
    with pytest.raises(ValueError, match=r"customers.jsonl:3: expected a Stripe customer"):
        with serve(ds.root, api_key=KEY):
            pass


def test_cli_requires_the_key_from_the_environment(dataset, monkeypatch, capsys):
    from retention.cli import main

    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    assert main(["stripe-server", "--data", str(dataset.root), "--port", "0"]) == 2
    assert "set STRIPE_API_KEY" in capsys.readouterr().err
