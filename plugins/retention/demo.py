"""``retention demo``: the whole pipeline end to end on the embedded warehouse.

It is what ``make demo`` runs:

1. start (or reuse) the warehouse: ``WAREHOUSE_URL``, else the embedded Postgres;
2. simulate a SaaS company (``retention simulate``) unless it is already on disk;
3. serve its billing through the local Stripe API server (a random key per run);
4. run each pipeline DAG with ``airflow dags test`` in dependency order, on the
   simulation's last day, with a full first load;
5. print what landed where: row counts, quarantine, marts, and the paths of the results.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from retention import runtime, warehouse
from retention.config import Settings, settings

# Pipeline DAGs in dependency order, with the conf of a first, full load.
DEMO_DAGS: tuple[tuple[str, dict], ...] = (
    ("ingest_stripe", {"full_refresh": True}),
    ("ingest_events", {"full": True}),
    ("transform_dbt", {}),
)

SUMMARY_TABLES = (
    "raw.stripe_customers", "raw.stripe_subscriptions", "raw.stripe_invoices",
    "raw.events", "raw.nps_responses", "raw.support_tickets", "raw.quarantine",
    "marts.mrr_monthly", "marts.mrr_movements", "marts.cohort_retention",
    "marts.account_activation", "marts.account_usage_daily", "marts.account_health_daily",
    "marts.health_backtest", "marts.segment_members",
)


@dataclass(frozen=True)
class DagOutcome:
    dag_id: str
    state: str
    seconds: float


def ensure_simulation(cfg: Settings, preset: str, seed: int, bad_input_rate: float) -> Path:
    """The simulated company's folder, generated only if it is not already on disk."""
    from retention.simulate.config import SimulationConfig
    from retention.simulate.engine import simulate

    out = cfg.data_dir / f"{preset}-seed{seed}"
    sim = SimulationConfig(preset=preset, seed=seed, out=out, bad_input_rate=bad_input_rate)
    manifest = out / "simulation.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("parameters") == sim.parameters():
        print(f"simulation: reusing {out}")
    else:
        print(f"simulation: generating preset {preset!r} (seed {seed}) into {out}")
        simulate(sim)
    return out


def _row_counts(url: str) -> dict[str, int | None]:
    counts: dict[str, int | None] = {}
    with warehouse.connect(url, autocommit=True) as conn:
        for table in SUMMARY_TABLES:
            exists = conn.execute("select to_regclass(%s)", (table,)).fetchone()[0]
            counts[table] = conn.execute(f"select count(*) from {table}").fetchone()[0] if exists else None
    return counts


def run_demo(args: argparse.Namespace) -> int:
    from retention.hooks.stripe import connection_json
    from retention.simulate.stripe_server import serve

    cfg = settings()
    url = warehouse.resolve_url(cfg)
    print(f"warehouse: {warehouse.redact(url)}")
    company = ensure_simulation(cfg, args.preset, args.seed, args.bad_input_rate)
    end_date = json.loads((company / "simulation.json").read_text())["parameters"]["end_date"]

    env = runtime.child_env(url, cfg)
    env["RETENTION_EVENTS_URI"] = str(company)
    api_key = "sk_test_demo_" + secrets.token_hex(12)  # lives only in this process tree
    outcomes: list[DagOutcome] = []
    with serve(company, api_key=api_key) as stripe_api:
        env["AIRFLOW_CONN_STRIPE_DEFAULT"] = connection_json(stripe_api.base_url, api_key)
        for dag_id, conf in DEMO_DAGS:
            started = time.monotonic()
            code = runtime.dags_test(dag_id, env, end_date, conf).returncode
            state = "success" if code == 0 else f"failed (exit {code})"
            outcomes.append(DagOutcome(dag_id, state, time.monotonic() - started))
            if code != 0:
                break

    print_summary(cfg, url, company, end_date, outcomes)
    return 0 if len(outcomes) == len(DEMO_DAGS) and all(o.state == "success" for o in outcomes) else 1


def print_summary(cfg: Settings, url: str, company: Path, end_date: str, outcomes: list[DagOutcome]) -> None:
    print("\n=== retention demo summary ===")
    print(f"warehouse URL     : {warehouse.redact(url)}")
    print(f"simulated company : {company} (data up to {end_date})")
    print(f"airflow home      : {cfg.airflow_home}")
    for o in outcomes:
        print(f"airflow run       : {o.dag_id:<16} {o.state} in {o.seconds:.0f}s")
    for dag_id, _ in DEMO_DAGS[len(outcomes):]:
        print(f"airflow run       : {dag_id:<16} not run")
    print("rows:")
    for table, n in _row_counts(url).items():
        print(f"  {table:<32} {'(missing)' if n is None else n}")
    print(f"dbt docs          : {cfg.dbt_project_dir / 'target' / 'index.html'}")
    print(f"data quality docs : {cfg.expectations_dir / 'uncommitted' / 'data_docs' / 'local_site' / 'index.html'}")
    print(f"query the marts   : psql '{warehouse.redact(url)}' -c 'select * from marts.mrr_movements'")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on a simulated company")
    p.add_argument("--preset", default="demo", help="simulator preset (tiny for a quick look)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--bad-input-rate", type=float, default=0.001,
                   help="share of event lines corrupted, to show the quarantine at work")
    p.set_defaults(func=run_demo)
