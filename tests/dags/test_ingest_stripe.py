"""End to end: ``airflow dags test ingest_stripe`` against the local Stripe server and Postgres."""

from __future__ import annotations

import subprocess

import pytest

from fakes.stripe_dataset import build_dataset
from retention import runtime, warehouse
from retention.hooks.stripe import connection_json
from retention.simulate.stripe_server import serve

KEY = "sk_test_dag_key_4242"
TABLES = ("customers", "products", "prices", "coupons", "discounts", "subscriptions", "invoices")


@pytest.mark.slow
def test_dags_test_loads_every_object_and_reruns_and_backfills_change_nothing(fresh_db, airflow_env, tmp_path):
    dataset = build_dataset(tmp_path / "company", customers=6)
    with serve(dataset.root, api_key=KEY, rate_429=0.1, rate_500=0.1, seed=3, retry_after=0) as server:
        env = airflow_env(fresh_db)
        env["AIRFLOW_CONN_STRIPE_DEFAULT"] = connection_json(server.base_url, KEY)

        def run(logical_date: str) -> subprocess.CompletedProcess:
            cmd = [runtime.airflow_bin(), "dags", "test", "ingest_stripe", logical_date]
            return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)

        first = run("2024-01-03")  # a Wednesday: incremental plan, but the empty tables force a full load
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        with warehouse.connect(fresh_db) as conn:
            counts = {t: conn.execute(f"select count(*) from raw.stripe_{t}").fetchone()[0] for t in TABLES}
            history = {t: conn.execute(f"select count(*) from raw.stripe_{t}_history").fetchone()[0] for t in TABLES}
            stamps = conn.execute("select max(_extracted_at) from raw.stripe_invoices").fetchone()[0]
        assert counts == {t: len(dataset.objects[t]) for t in TABLES}
        assert history == counts

        def unchanged(proc: subprocess.CompletedProcess) -> None:
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            with warehouse.connect(fresh_db) as conn:
                for t in TABLES:
                    assert conn.execute(f"select count(*) from raw.stripe_{t}").fetchone()[0] == counts[t], t
                    assert conn.execute(f"select count(*) from raw.stripe_{t}_history").fetchone()[0] == history[t], t
                assert conn.execute("select max(_extracted_at) from raw.stripe_invoices").fetchone()[0] == stamps

        second = run("2024-01-04")  # the next day: through the Events API
        unchanged(second)
        unchanged(run("2024-01-04"))  # a rerun of the same interval
        backfill = run("2024-01-02")  # a backfill of an earlier interval
        unchanged(backfill)
    assert "stripe invoices: full_refresh extraction (first load" in first.stdout  # empty table: first load is full
    # Later runs, backfills included, apply Stripe's events since the previous run (none here).
    for later in (second, backfill):
        assert "stripe invoices: events since" in later.stdout
        assert "'events_read': 0, 'objects_changed': 0" in later.stdout
    assert server.stats.rate_limited + server.stats.server_errors > 0
    assert KEY not in first.stdout + first.stderr + second.stdout + second.stderr + backfill.stdout + backfill.stderr
