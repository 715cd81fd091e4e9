"""``retention demo``: the whole pipeline end to end on the embedded warehouse.

It is what ``make demo`` runs: start the warehouse, run each pipeline DAG with
``airflow dags test`` in dependency order, and print where the results are.
"""

from __future__ import annotations

import argparse
import time

from retention import runtime, warehouse
from retention.config import settings

# Pipeline DAGs in dependency order (each one's file is dags/<dag_id>.py).
DEMO_DAGS: tuple[str, ...] = ()


def run_demo(args: argparse.Namespace) -> int:
    cfg = settings()
    url = warehouse.resolve_url(cfg)
    print(f"warehouse: {warehouse.redact(url)}")
    env = runtime.child_env(url, cfg)

    results: list[tuple[str, str, float]] = []
    for dag_id in DEMO_DAGS:
        started = time.monotonic()
        code = runtime.dags_test(dag_id, env).returncode
        state = "success" if code == 0 else f"failed (exit {code})"
        results.append((dag_id, state, time.monotonic() - started))
        if code != 0:
            break

    print("\n=== retention demo summary ===")
    print(f"warehouse URL : {warehouse.redact(url)}")
    print(f"airflow home  : {cfg.airflow_home}")
    print(f"source data   : {cfg.data_dir}")
    for dag_id, state, seconds in results:
        print(f"dag {dag_id:<22} {state} in {seconds:.1f}s")
    if not DEMO_DAGS:
        print("no pipeline DAGs yet: the warehouse is up and Airflow is migrated")
        runtime.ensure_airflow_db(env)
    return 0 if all(state == "success" for _, state, _ in results) else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on the embedded warehouse")
    p.set_defaults(func=run_demo)
