"""Hand-built billing histories, one account per rule of METRICS.md (see EXPECTED)."""

from __future__ import annotations

from datetime import date

from finance_raw import StripeData, line, one_off_line


def _add_months(day: str, n: int) -> str:
    d = date.fromisoformat(day)
    y, m = divmod(d.month - 1 + n, 12)
    return date(d.year + y, m + 1, d.day).isoformat()


def renew(
    s: StripeData, cus: str, sub: str, price: str, start: str, cycles: int, amount: int, *,
    every: int = 1, quantity: int = 1, discount: int = 0, item: str | None = None,
) -> None:
    """`cycles` paid invoices, one per `every` months from `start`."""
    for i in range(cycles):
        begin, end = _add_months(start, i * every), _add_months(start, (i + 1) * every)
        s.invoice(cus, begin, [line(sub, price, begin, end, amount=amount, quantity=quantity,
                                    discount=discount, item=item)])


def build() -> StripeData:
    s = StripeData()
    monthly100 = s.price("price_m100", 10000)
    s.price("price_m50", 5000)
    s.price("price_m30", 3000)
    s.price("price_m20", 2000)
    s.price("price_m40", 4000)
    s.price("price_m80", 8000)
    s.price("price_free", 0)
    s.price("price_seat", 1000)
    s.price("price_y1200", 120000, "year")
    s.price("price_y600", 60000, "year")
    s.price("price_q300", 30000, "month", 3)
    s.price("price_w25", 2500, "week")
    s.price("price_setup", 50000, None)
    s.price("price_api_calls", 1, "month", usage_type="metered")

    # acc_001: $100/month for 14 months; one-off setup fee and metered usage never count.
    c = s.customer("acc_001")
    renew(s, c, "sub_001", monthly100, "2024-01-01", 13, 10000)
    s.invoice(c, "2025-02-01", [
        line("sub_001", monthly100, "2025-02-01", "2025-03-01", amount=10000),
        one_off_line("price_setup", "2025-02-01", 50000),
        line("sub_001", "price_api_calls", "2025-01-01", "2025-02-01", amount=777, item="si_001_usage"),
    ])
    # acc_002: annual $1,200 -> $100/month from March 2024 to the as-of month.
    c = s.customer("acc_002")
    renew(s, c, "sub_002", "price_y1200", "2024-03-10", 1, 120000, every=12)
    # acc_003: $50 with 20% off from Feb, cancelled at the end of the June period.
    c = s.customer("acc_003")
    renew(s, c, "sub_003", "price_m50", "2024-02-05", 5, 5000, discount=1000)
    # acc_004: annual $600 with $120 off the year -> $40/month.
    c = s.customer("acc_004")
    renew(s, c, "sub_004", "price_y600", "2024-04-01", 1, 60000, discount=12000, every=12)
    # acc_005: 14-day trial ($0 invoice), then $30/month from Jan 24 for 3 months.
    c = s.customer("acc_005")
    s.invoice(c, "2024-01-10", [line("sub_005", "price_m30", "2024-01-10", "2024-01-24", amount=0)])
    renew(s, c, "sub_005", "price_m30", "2024-01-24", 3, 3000)
    # acc_006: a trial that never converts -> never a customer.
    c = s.customer("acc_006")
    s.invoice(c, "2024-02-01", [line("sub_006", "price_m30", "2024-02-01", "2024-02-15", amount=0)])
    # acc_007: 3 seats Jan-Mar, 5 seats from April, then 5 -> 8 seats mid-June (proration).
    c = s.customer("acc_007")
    renew(s, c, "sub_007", "price_seat", "2024-01-01", 3, 3000, quantity=3)
    renew(s, c, "sub_007", "price_seat", "2024-04-01", 3, 5000, quantity=5)
    s.invoice(c, "2024-06-15", [
        line("sub_007", "price_seat", "2024-06-15", "2024-07-01", amount=-2500, quantity=5, proration=True),
        line("sub_007", "price_seat", "2024-06-15", "2024-07-01", amount=4000, quantity=8, proration=True),
    ])
    renew(s, c, "sub_007", "price_seat", "2024-07-01", 2, 8000, quantity=8)
    # acc_008: billed on the 15th; April and May invoices never paid. Inside the dunning
    # window at the April snapshot (16 days), delinquent at the May snapshot (47 days).
    c = s.customer("acc_008")
    renew(s, c, "sub_008", "price_m50", "2024-01-15", 3, 5000)
    for start, end in (("2024-04-15", "2024-05-15"), ("2024-05-15", "2024-06-15")):
        s.invoice(c, start, [line("sub_008", "price_m50", start, end, amount=5000)], status="open", paid=None)
    # acc_009: March invoice paid 40 days late: delinquent churn in March, back in April.
    c = s.customer("acc_009")
    renew(s, c, "sub_009", "price_m50", "2024-01-01", 2, 5000)
    s.invoice(c, "2024-03-01", [line("sub_009", "price_m50", "2024-03-01", "2024-04-01", amount=5000)],
              paid="2024-04-10")
    s.invoice(c, "2024-04-01", [line("sub_009", "price_m50", "2024-04-01", "2024-05-01", amount=5000)],
              paid="2024-04-10")
    renew(s, c, "sub_009", "price_m50", "2024-05-01", 1, 5000)
    # acc_010: weekly plan for two weeks in May: joins and leaves inside the month.
    c = s.customer("acc_010")
    for start, end in (("2024-05-06", "2024-05-13"), ("2024-05-13", "2024-05-20")):
        s.invoice(c, start, [line("sub_010", "price_w25", start, end, amount=2500)])
    # acc_011: two subscriptions; cancelling B after April is a contraction, not churn.
    c = s.customer("acc_011")
    renew(s, c, "sub_011a", monthly100, "2024-01-01", 8, 10000)
    renew(s, c, "sub_011b", "price_m50", "2024-01-01", 4, 5000)
    # acc_012: $40 Jan-Mar, then a $0 price from April: churn in April (default).
    c = s.customer("acc_012")
    renew(s, c, "sub_012", "price_m40", "2024-01-01", 3, 4000)
    renew(s, c, "sub_012", "price_free", "2024-04-01", 3, 0)
    # acc_013: $80, 100%-off coupon in March-April (churn), full price again in May.
    c = s.customer("acc_013")
    renew(s, c, "sub_013", "price_m80", "2024-01-01", 2, 8000)
    renew(s, c, "sub_013", "price_m80", "2024-03-01", 2, 8000, discount=8000)
    renew(s, c, "sub_013", "price_m80", "2024-05-01", 2, 8000)
    # acc_014: $20 Jan-Feb, gone Mar-May, back Jun-Aug: reactivation after a gap.
    c = s.customer("acc_014")
    renew(s, c, "sub_014", "price_m20", "2024-01-01", 2, 2000)
    renew(s, c, "sub_014b", "price_m20", "2024-06-01", 3, 2000)
    # acc_015: billed on the 20th, cancelled on May 25 at period end: paid through
    # June 20, so June is the churn month.
    c = s.customer("acc_015")
    renew(s, c, "sub_015", "price_m30", "2024-01-20", 5, 3000)
    # acc_016: only a void invoice -> never a customer.
    c = s.customer("acc_016")
    s.invoice(c, "2024-03-01", [line("sub_016", monthly100, "2024-03-01", "2024-04-01", amount=10000)],
              status="void", paid=None)
    # acc_017: quarterly $300 -> $100/month, two quarters from Feb.
    c = s.customer("acc_017")
    renew(s, c, "sub_017", "price_q300", "2024-02-01", 2, 30000, every=3)
    return s


# (account, month) -> (mrr, movement), worked out by hand from the rules (not by the code).
EXPECTED: dict[tuple[str, str], tuple[float, str]] = {
    ("acc_001", "2024-01-01"): (100.00, "new"),
    ("acc_001", "2025-02-01"): (100.00, "retained"),
    ("acc_002", "2024-03-01"): (100.00, "new"),
    ("acc_002", "2025-02-01"): (100.00, "retained"),
    ("acc_003", "2024-02-01"): (40.00, "new"),
    ("acc_003", "2024-06-01"): (40.00, "retained"),
    ("acc_003", "2024-07-01"): (0.00, "churn"),
    ("acc_004", "2024-04-01"): (40.00, "new"),
    ("acc_004", "2025-02-01"): (40.00, "retained"),
    ("acc_005", "2024-01-01"): (30.00, "new"),
    ("acc_005", "2024-03-01"): (30.00, "retained"),
    ("acc_005", "2024-04-01"): (0.00, "churn"),
    ("acc_007", "2024-03-01"): (30.00, "retained"),
    ("acc_007", "2024-04-01"): (50.00, "expansion"),
    ("acc_007", "2024-06-01"): (80.00, "expansion"),
    ("acc_007", "2024-07-01"): (80.00, "retained"),
    ("acc_007", "2024-09-01"): (0.00, "churn"),
    ("acc_008", "2024-04-01"): (50.00, "retained"),
    ("acc_008", "2024-05-01"): (0.00, "churn"),
    ("acc_009", "2024-02-01"): (50.00, "retained"),
    ("acc_009", "2024-03-01"): (0.00, "churn"),
    ("acc_009", "2024-04-01"): (50.00, "reactivation"),
    ("acc_009", "2024-06-01"): (0.00, "churn"),
    ("acc_011", "2024-04-01"): (150.00, "retained"),
    ("acc_011", "2024-05-01"): (100.00, "contraction"),
    ("acc_011", "2024-09-01"): (0.00, "churn"),
    ("acc_012", "2024-03-01"): (40.00, "retained"),
    ("acc_012", "2024-04-01"): (0.00, "churn"),
    ("acc_013", "2024-03-01"): (0.00, "churn"),
    ("acc_013", "2024-05-01"): (80.00, "reactivation"),
    ("acc_014", "2024-03-01"): (0.00, "churn"),
    ("acc_014", "2024-06-01"): (20.00, "reactivation"),
    ("acc_015", "2024-05-01"): (30.00, "retained"),
    ("acc_015", "2024-06-01"): (0.00, "churn"),
    ("acc_017", "2024-02-01"): (100.00, "new"),
    ("acc_017", "2024-08-01"): (0.00, "churn"),
}
NEVER_PAYING = ("acc_006", "acc_010", "acc_016")
