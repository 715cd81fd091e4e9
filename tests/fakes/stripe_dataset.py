"""A tiny Stripe billing dataset for tests, built from Stripe's own example objects.

``stripe_fixtures3_subset.json`` holds the customer, product, price, coupon, discount,
subscription and invoice objects of ``stripe/openapi`` ``fixtures3.json`` (MIT, see
``stripe-LICENSE``). :func:`build_dataset` copies them, varying ids, ``created`` and
links, and writes ``<root>/stripe/<object>.jsonl`` in the simulator's layout.

Shape (``customers=n``): 2 products, 3 prices, 2 coupons; per customer one subscription
(status cycling through :data:`SUB_STATUSES`) and two invoices; every third subscription
carries one discount
(on the subscription, its invoices and their lines). Customers 1 and 2 share one ``created`` second, so paging must
order ties by id.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import orjson

FIXTURES = json.loads((Path(__file__).with_name("stripe_fixtures3_subset.json")).read_text())
API_KEY = "sk_test_extract_key"  # the local Stripe server's key in tests
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
DAY = 86_400
HOUR = 3_600
SUB_STATUSES = ("active", "canceled", "past_due", "trialing")
FILES = ("customers", "products", "prices", "coupons", "discounts", "subscriptions", "invoices")


@dataclass
class StripeDataset:
    root: Path
    objects: dict[str, list[dict]] = field(default_factory=lambda: {name: [] for name in FILES})

    def write(self) -> None:
        """(Re)write every ``stripe/<object>.jsonl``."""
        folder = self.root / "stripe"
        folder.mkdir(parents=True, exist_ok=True)
        for name, objs in self.objects.items():
            (folder / f"{name}.jsonl").write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in objs))

    def get(self, name: str, object_id: str) -> dict:
        return next(o for o in self.objects[name] if o["id"] == object_id)

    def ids(self, name: str, **where) -> set[str]:
        return {o["id"] for o in self.objects[name] if all(o.get(k) == v for k, v in where.items())}

    def newest_first(self, name: str) -> list[str]:
        return [o["id"] for o in sorted(self.objects[name], key=lambda o: (o["created"], o["id"]), reverse=True)]


def _obj(kind: str, **changes) -> dict:
    obj = copy.deepcopy(FIXTURES[kind])
    obj.update(changes)
    return obj


def build_dataset(root: Path, customers: int = 6) -> StripeDataset:
    ds = StripeDataset(Path(root))
    o = ds.objects
    for i, name in enumerate(("Basic", "Pro")):
        o["products"].append(_obj("product", id=f"prod_{name.lower()}", name=name, created=T0 - 30 * DAY + i,
                                  default_price=None))
    for i, (product, amount) in enumerate((("prod_basic", 2000), ("prod_pro", 5000), ("prod_pro", 50000))):
        interval = "year" if i == 2 else "month"
        price = _obj("price", id=f"price_{i}", product=product, unit_amount=amount, unit_amount_decimal=str(amount),
                     created=T0 - 29 * DAY + i, transform_quantity=None)
        price["recurring"] = {**price["recurring"], "interval": interval}
        o["prices"].append(price)
    o["coupons"].append(_obj("coupon", id="COUPON20", percent_off=20.0, amount_off=None, created=T0 - 20 * DAY))
    o["coupons"].append(_obj("coupon", id="COUPON5USD", percent_off=None, amount_off=500, created=T0 - 20 * DAY + 1))

    for i in range(customers):
        created = T0 + (i if i != 2 else 1) * DAY  # customers 1 and 2 tie on created
        cus = f"cus_{i:04d}"
        o["customers"].append(_obj("customer", id=cus, created=created, email=f"billing{i}@example.com",
                                   name=f"Account {i}", discount=None, metadata={"account_id": f"acc_{i:06d}"}))
        sub_id = f"sub_{i:04d}"
        price = o["prices"][i % 3]
        item = copy.deepcopy(FIXTURES["subscription"]["items"]["data"][0])
        item.update(id=f"si_{i:04d}", subscription=sub_id, price=copy.deepcopy(price), quantity=1 + i % 4,
                    created=created + HOUR)
        discount_ids = []
        if i % 3 == 0:
            discount_ids = [f"di_{i:04d}"]
            o["discounts"].append(_obj("discount", id=f"di_{i:04d}", customer=cus, subscription=sub_id,
                                       start=created + HOUR, end=None,
                                       source={"coupon": "COUPON20", "type": "coupon"}))
        status = SUB_STATUSES[i % len(SUB_STATUSES)]
        o["subscriptions"].append(_obj(
            "subscription", id=sub_id, customer=cus, created=created + HOUR, start_date=created + HOUR,
            status=status, discounts=discount_ids, latest_invoice=f"in_{i:04d}_1",
            items={**FIXTURES["subscription"]["items"], "data": [item], "url": f"/v1/subscription_items?subscription={sub_id}"},
            canceled_at=created + 40 * DAY if status == "canceled" else None,
            ended_at=created + 40 * DAY if status == "canceled" else None,
            cancel_at=None,
        ))
        for k in range(2):
            inv_id = f"in_{i:04d}_{k}"
            line = copy.deepcopy(FIXTURES["invoice"]["lines"]["data"][0])
            line.update(id=f"il_{i:04d}_{k}", invoice=inv_id, amount=price["unit_amount"], subscription=sub_id,
                        discounts=list(discount_ids))
            o["invoices"].append(_obj(
                "invoice", id=inv_id, customer=cus, created=created + HOUR + k * 2 * DAY, status="paid",
                amount_due=price["unit_amount"], amount_paid=price["unit_amount"], amount_remaining=0,
                discounts=discount_ids, subscription=sub_id,
                lines={**FIXTURES["invoice"]["lines"], "data": [line], "url": f"/v1/invoices/{inv_id}/lines"},
            ))
    ds.write()
    return ds

