"""The ground truth agrees with the files, and latent health drives behaviour."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from statistics import mean

import pytest

from retention.simulate import catalogue as cat
from sim_files import clean_events, read_jsonl

N_REPORTS = 3  # SimulationConfig.report_milestone_n default


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def truth(company: Path) -> dict[str, dict[str, str]]:
    return {row["account_id"]: row for row in read_csv(company / "ground_truth" / "accounts.csv")}


def test_milestones_are_the_first_times_in_the_events(company: Path, truth: dict[str, dict[str, str]]) -> None:
    first: dict[tuple[str, str], str] = {}
    reports: dict[str, list[str]] = defaultdict(list)
    for e in clean_events(company):
        if e["type"] != "track":
            continue
        key = (e["context"]["groupId"], e["event"])
        first[key] = min(first.get(key, e["timestamp"]), e["timestamp"])
        if e["event"] == cat.REPORT_CREATED:
            reports[e["context"]["groupId"]].append(e["timestamp"])
    columns = {
        "first_project_at": cat.PROJECT_CREATED,
        "teammate_invited_at": cat.TEAMMATE_INVITED,
        "integration_installed_at": cat.INTEGRATION_INSTALLED,
    }
    activated = 0
    for account, row in truth.items():
        for column, event in columns.items():
            assert row[column] == first.get((account, event), ""), (account, column)
        nth = sorted(reports[account])[N_REPORTS - 1] if len(reports[account]) >= N_REPORTS else ""
        assert row["key_feature_n_at"] == nth, account
        milestones = [row[c] for c in (*columns, "key_feature_n_at")]
        if all(milestones):
            activated += 1
            assert row["true_activation_date"] == max(milestones)[:10]
        else:
            assert row["true_activation_date"] == ""
    assert 0 < activated < len(truth)


def test_accounts_match_stripe_customers(company: Path, truth: dict[str, dict[str, str]]) -> None:
    customers = {c["metadata"]["account_id"]: c for c in read_jsonl(company / "stripe" / "customers.jsonl")}
    assert set(customers) == set(truth)
    for account, row in truth.items():
        assert customers[account]["id"] == row["customer_id"]
        assert customers[account]["name"] == row["company_name"]


def test_end_mrr_agrees_with_live_subscriptions(company: Path, truth: dict[str, dict[str, str]]) -> None:
    """Truth MRR comes from invoices; the subscriptions as Stripe returns them must say the same."""
    mrr = read_csv(company / "ground_truth" / "mrr_monthly.csv")
    last_month = max(r["month"] for r in mrr)
    contract_end = {r["account_id"]: float(r["contract_mrr_cents"]) for r in mrr if r["month"] == last_month}
    from_subs: dict[str, float] = defaultdict(float)
    customers = {c["id"]: c["metadata"]["account_id"] for c in read_jsonl(company / "stripe" / "customers.jsonl")}
    for sub in read_jsonl(company / "stripe" / "subscriptions.jsonl"):
        if sub["status"] in ("active", "past_due"):
            for item in sub["items"]["data"]:
                price = item["price"]
                if price["recurring"]["usage_type"] == "licensed":
                    months = 12 if price["recurring"]["interval"] == "year" else 1
                    from_subs[customers[sub["customer"]]] += price["unit_amount"] * item["quantity"] / months
    # Canceled mid-period accounts still pay at month end (a true_churn_date after it): no live subscription.
    paying = [a for a, row in truth.items() if row["status_at_end"] in ("free", "discounted_to_zero")
              or (row["status_at_end"] in ("paying", "past_due") and not row["churn_reason"])]
    end_date = json.loads((company / "simulation.json").read_text())["end_date"]
    for row in truth.values():
        if row["status_at_end"] in ("paying", "past_due") and row["churn_reason"]:
            assert row["true_churn_date"] > end_date and contract_end[row["account_id"]] > 0
    assert paying
    for account in paying:
        assert contract_end.get(account, 0.0) == pytest.approx(from_subs.get(account, 0.0), abs=0.01), account


def test_latent_health_drives_activation_churn_nps_and_support(company: Path, truth: dict[str, dict[str, str]]) -> None:
    rows = sorted(truth.values(), key=lambda r: float(r["latent_health"]))
    third = len(rows) // 3
    low, high = rows[:third], rows[-third:]

    def rate(group: list[dict[str, str]], pred) -> float:
        return sum(1 for r in group if pred(r)) / len(group)

    assert rate(high, lambda r: r["true_activation_date"]) > rate(low, lambda r: r["true_activation_date"]) + 0.2
    lost = {"churned", "never_paid", "free", "discounted_to_zero"}
    assert rate(low, lambda r: r["status_at_end"] in lost) > rate(high, lambda r: r["status_at_end"] in lost)

    health = {a: float(r["latent_health"]) for a, r in truth.items()}
    scores = [(health[r["account_id"]], int(r["score"])) for f in sorted((company / "nps").glob("*.csv")) for r in read_csv(f)]
    assert mean(s for h, s in scores if h >= 0.6) > mean(s for h, s in scores if h < 0.4) + 2
    tickets = [t for f in sorted((company / "support").glob("*.jsonl")) for t in read_jsonl(f)]
    per_account = defaultdict(list)
    for t in tickets:
        per_account[t["account_id"]].append(t["topic"])
    unhealthy = [a for a in truth if health[a] < 0.4]
    healthy = [a for a in truth if health[a] >= 0.6]
    assert mean(len(per_account[a]) for a in unhealthy) > mean(len(per_account[a]) for a in healthy)
    repeated = [a for a, topics in per_account.items() if len(topics) - len(set(topics)) >= 2]
    assert repeated and mean(health[a] for a in repeated) < mean(health.values())


def test_manifest_counts_match_the_files(company: Path) -> None:
    counts = json.loads((company / "simulation.json").read_text())["counts"]
    for name, n in counts["stripe"].items():
        assert len(read_jsonl(company / "stripe" / f"{name}.jsonl")) == n
    assert sum(1 for _ in clean_events(company)) == counts["events"]["records"]


def test_users_belong_to_their_accounts(company: Path, truth: dict[str, dict[str, str]]) -> None:
    users = {u["user_id"]: u for u in read_csv(company / "ground_truth" / "users.csv")}
    owners = [u for u in users.values() if u["is_owner"] == "True"]
    assert sorted(u["account_id"] for u in owners) == sorted(truth)
    for owner in owners:
        assert owner["user_id"].endswith("_01") and owner["role"] == "admin"
        assert owner["invited_at"] == truth[owner["account_id"]]["signup_at"]
    for e in clean_events(company):
        user = users[e["userId"]]
        assert user["account_id"] == e["context"]["groupId"]
        assert e["timestamp"] >= user["invited_at"]
        if e["type"] == "identify":
            assert e["traits"]["email"] == user["email"] and e["traits"]["role"] == user["role"]


def test_churn_month_is_the_first_month_end_without_mrr(company: Path, truth: dict[str, dict[str, str]]) -> None:
    """accounts.csv and mrr_monthly.csv tell the same story for every churned account."""
    months: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for r in read_csv(company / "ground_truth" / "mrr_monthly.csv"):
        months[r["account_id"]].append((r["month"], float(r["mrr_cents"])))
    churned = [r for r in truth.values() if r["status_at_end"] == "churned" and not r["reactivated_at"]]
    assert any(r["churn_reason"] == "payment_failed" for r in churned)
    for row in churned:
        last_paying = max(m for m, mrr in months[row["account_id"]] if mrr > 0)
        year, month = map(int, row["true_churn_date"][:7].split("-"))
        previous = f"{year - (month == 1)}-{(month - 2) % 12 + 1:02d}"
        assert last_paying == previous, row["account_id"]
