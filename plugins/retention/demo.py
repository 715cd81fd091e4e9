"""``retention demo``: the whole pipeline end to end on the embedded warehouse.

It is what ``make demo`` runs:

1. start (or reuse) the warehouse: ``WAREHOUSE_URL``, else the embedded Postgres;
2. simulate a SaaS company (``retention simulate``) unless it is already on disk;
3. serve its billing through the local Stripe API server (a random key per run);
4. run each pipeline DAG with ``airflow dags test`` in dependency order, on the
   simulation's last day (the ``day`` param: the runs take no logical date, so they
   last as long as they ran and leave every date free for the user to trigger), with a
   full first load; each task's part of the output is also written where the Airflow UI
   reads task logs (:mod:`retention.airflow_runs`);
5. run the segment sync (``sync_segments``) on every sync of ``syncs.yml``: the files
   destination, and the signed webhook to a local receiver the demo starts and stops;
   then run the syncs a second time (the same function as ``retention sync``) and show
   that nothing was sent;
6. print what landed where: row counts, quarantine, marts, sync counts and the paths of
   the results.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated

import typer

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
    note: str = ""  # printed after the time


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
        from retention.cli_progress import bars

        print(f"simulation: generating preset {preset!r} (seed {seed}) into {out}")
        with bars() as progress:
            simulate(sim, progress)
    return out


def _row_counts(url: str) -> dict[str, int | None]:
    counts: dict[str, int | None] = {}
    with warehouse.connect(url, autocommit=True) as conn:
        for table in SUMMARY_TABLES:
            exists = conn.execute("select to_regclass(%s)", (table,)).fetchone()[0]
            counts[table] = conn.execute(f"select count(*) from {table}").fetchone()[0] if exists else None
    return counts


def run_dags(dags: tuple[tuple[str, dict], ...], env: dict[str, str]) -> list[DagOutcome]:
    """Run each DAG once with ``airflow dags test`` and its conf, in order, leaving each
    task's log where the Airflow UI shows it; stop at the first failure."""
    outcomes: list[DagOutcome] = []
    for dag_id, conf in dags:
        started = time.monotonic()
        code = runtime.dags_test(dag_id, env, None, conf, task_logs=True).returncode
        state = "success" if code == 0 else f"failed (exit {code})"
        outcomes.append(DagOutcome(dag_id, state, time.monotonic() - started))
        if code != 0:
            break
    return outcomes


def run_demo(preset: str = "demo", seed: int = 42, bad_input_rate: float = 0.001) -> int:
    from retention.hooks.stripe import connection_json
    from retention.simulate.stripe_server import serve

    cfg = settings()
    url = warehouse.resolve_url(cfg)
    print(f"warehouse: {warehouse.redact(url)}")
    company = ensure_simulation(cfg, preset, seed, bad_input_rate)
    end_date = json.loads((company / "simulation.json").read_text())["parameters"]["end_date"]

    env = runtime.child_env(url, cfg)
    env["RETENTION_EVENTS_URI"] = str(company)
    api_key = "sk_test_demo_" + secrets.token_hex(12)  # lives only in this process tree
    with serve(company, api_key=api_key) as stripe_api:
        env["AIRFLOW_CONN_STRIPE_DEFAULT"] = connection_json(stripe_api.base_url, api_key)
        dags = tuple((d, {**conf, "day": end_date}) for d, conf in DEMO_DAGS)
        ingest = tuple(d for d in dags if d[0] != "transform_dbt")
        outcomes = run_dags(ingest, env)
        if len(outcomes) == len(ingest) and all(o.state == "success" for o in outcomes):
            bare = bare_build(url)
            outcomes += run_dags(tuple(d for d in dags if d[0] == "transform_dbt"), env)
            if outcomes[-1].dag_id == "transform_dbt" and outcomes[-1].state == "success":
                outcomes[-1] = replace(outcomes[-1], note=bare(env, outcomes[-1].seconds))

    sync_lines: list[str] = []
    if outcomes and all(o.state == "success" for o in outcomes):
        sync_lines = run_demo_sync(url, env, end_date, outcomes)
    sites = build_sites(cfg, url, env) if outcomes and all(o.state == "success" for o in outcomes) else []
    print_summary(cfg, url, company, end_date, outcomes)
    for line in sync_lines + sites:
        print(line)
    expected = len(DEMO_DAGS) + 1
    return 0 if len(outcomes) == expected and all(o.state == "success" for o in outcomes) else 1


def bare_build(url: str):
    """Time a bare ``dbt build --full-refresh`` of the landed data (the work a first
    ``transform_dbt`` run does, without Airflow, on a copy of the warehouse); returns how
    to say it beside ``transform_dbt``'s times: the ``airflow dags test`` process's wall
    time and the DAG run's own span (what the Airflow UI shows), each as a ratio."""
    from retention.airflow_runs import run_seconds
    from retention.dbt import bare_build_seconds

    print("timing a bare `dbt build --full-refresh` of the same data, on a copy of the warehouse", flush=True)
    try:
        bare = bare_build_seconds(url, "--full-refresh")
    except Exception as exc:  # the demo goes on; the comparison is a measurement, not a step
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return lambda _env, _seconds: f"(bare dbt build not measured: {reason})"

    def note(env: dict[str, str], seconds: float) -> str:
        run = run_seconds(env, "transform_dbt")
        in_run = f"; the DAG run {run:.0f}s, {run / bare:.2f}x" if run else ""
        return f"(a bare `dbt build --full-refresh`: {bare:.0f}s; {seconds / bare:.2f}x{in_run})"

    return note


def run_pipeline(day: date, full: bool = False, sync: bool = True) -> int:
    """``retention run``: every pipeline DAG once on ``day``, with your sources and connections."""
    cfg = settings()
    url = warehouse.resolve_url(cfg)
    env = runtime.child_env(url, cfg)
    dags = tuple((dag_id, {**(conf if full else {}), "day": day.isoformat()}) for dag_id, conf in DEMO_DAGS)
    if sync:
        dags += (("sync_segments", {}),)
    print(f"warehouse: {warehouse.redact(url)}; running {', '.join(d for d, _ in dags)} on {day}")
    outcomes = run_dags(dags, env)
    for dag_id, _ in dags:
        done = next((o for o in outcomes if o.dag_id == dag_id), None)
        print(f"airflow run : {dag_id:<16} " + (f"{done.state} in {done.seconds:.0f}s" if done else "not run"))
    return 0 if len(outcomes) == len(dags) and all(o.state == "success" for o in outcomes) else 1


def run_demo_sync(url: str, env: dict[str, str], end_date: str, outcomes: list[DagOutcome]) -> list[str]:
    """Run ``sync_segments`` on every sync of the configuration (files, and the webhook to a
    local receiver), then every sync again in this process; the summary lines."""
    import os

    from retention.hooks.webhook import connection_json as webhook_connection
    from retention.local_servers import serve as serve_local
    from retention.sync import config, engine, runs
    from retention.sync.cli import format_outcome
    from retention.sync.destinations.files import export_root

    syncs = [s for s in config.load().syncs if s.destination.kind in ("files", "webhook")]
    names = [s.name for s in syncs]
    folders = [export_root(s.destination.options) / s.name for s in syncs if s.destination.kind == "files"]

    def export_files() -> set[Path]:
        return {p for folder in folders for p in folder.rglob("*") if p.is_file()}

    secret = "whsec_demo_" + secrets.token_hex(16)  # lives only in this process tree
    conn_var = "AIRFLOW_CONN_RETENTION_WEBHOOK_DEFAULT"
    lines = ["sync (first run, through the sync_segments DAG):"]
    with serve_local("webhook", secret=secret) as receiver:
        env[conn_var] = webhook_connection(f"{receiver.base_url}/retention", secret)
        started = time.monotonic()
        code = runtime.dags_test("sync_segments", env, None, {"syncs": names}, task_logs=True).returncode
        outcomes.append(DagOutcome("sync_segments", "success" if code == 0 else f"failed (exit {code})",
                                   time.monotonic() - started))
        for row in sorted(engine.status(url), key=lambda r: names.index(r["sync_name"])
                          if r["sync_name"] in names else len(names)):
            lines.append(f"  {row['sync_name']:<18} {row['status']}: {row['added']} added, {row['updated']} updated, "
                         f"{row['removed']} removed, {row['failed']} failed, {row['invalid']} invalid rows skipped")
        received = receiver.control.view("summary")
        lines.append(f"  webhook receiver   {received['unique_records']} records in {received['batches']} signed "
                     f"deliveries at {receiver.base_url}")
        for folder in folders:
            lines.append(f"  exports            {folder}/ (members.csv, members.jsonl, changes/)")
        files_before = export_files()
        if code != 0:
            return lines
        lines.append("sync (second run, nothing changed; the same function as `retention sync`):")
        os.environ[conn_var] = env[conn_var]
        try:
            for name in names:
                lines.append("  " + format_outcome(runs.run_one(url, name)))
        finally:
            os.environ.pop(conn_var, None)
        again = receiver.control.view("summary")["batches"] - received["batches"]
        new_files = len(export_files() - files_before)
        lines.append(f"  second run: {again} new requests at the webhook receiver, {new_files} new export files"
                     + (" (sent nothing)" if again == 0 and new_files == 0 else ""))
    return lines


def build_sites(cfg: Settings, url: str, env: dict[str, str]) -> list[str]:
    """Generate the dbt docs and the retention report; the lines saying where to open them,
    as files and in the Airflow UI (the project's plugin serves both behind its login)."""
    import subprocess

    from retention.dbt import dbt_executable
    from retention.report import build_report, default_path

    docs = subprocess.run([str(dbt_executable()), "docs", "generate"], env=env, cwd=cfg.dbt_project_dir,
                          capture_output=True, text=True)
    dbt_docs = cfg.dbt_project_dir / "target" / "index.html"
    report = build_report(url, default_path())
    passwords = cfg.airflow_home / "simple_auth_manager_passwords.json.generated"
    return [
        "open the results:",
        f"  retention report  {report.path} ({len(report.rendered)} charts)",
        f"  dbt docs          {dbt_docs}" if docs.returncode == 0 else
        f"  dbt docs          not generated (dbt docs generate exited {docs.returncode}; run `retention dbt docs generate`)",
        f"  data quality docs {cfg.expectations_dir / 'uncommitted' / 'data_docs' / 'local_site' / 'index.html'}",
        "  in the Airflow UI: `.venv/bin/retention airflow api-server --port 8080`, log in at http://127.0.0.1:8080",
        f"    as admin (password in {passwords}), then Browse > Retention report, dbt docs, Data quality docs,",
        "    or http://127.0.0.1:8080/retention/report/ (DAGs start paused: unpause them to schedule)",
        f"    the demo's runs are under DAGs, with each task's log (files in {cfg.airflow_home / 'logs'})",
    ]


def print_summary(cfg: Settings, url: str, company: Path, end_date: str, outcomes: list[DagOutcome]) -> None:
    print("\n=== retention demo summary ===")
    print(f"warehouse URL     : {warehouse.redact(url)}")
    print(f"simulated company : {company} (data up to {end_date})")
    print(f"airflow home      : {cfg.airflow_home}")
    for o in outcomes:
        print(f"airflow run       : {o.dag_id:<16} {o.state} in {o.seconds:.0f}s {o.note}".rstrip())
    for dag_id in [*(d for d, _ in DEMO_DAGS), "sync_segments"][len(outcomes):]:
        print(f"airflow run       : {dag_id:<16} not run")
    print("rows:")
    for table, n in _row_counts(url).items():
        print(f"  {table:<32} {'(missing)' if n is None else n}")
    print(f"query the marts   : psql '{warehouse.redact(url)}' -c 'select * from marts.mrr_movements'")


def _yesterday() -> date:
    return datetime.now(timezone.utc).date() - timedelta(days=1)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        preset: Annotated[str, typer.Option(help="simulator preset (tiny for a quick look)")] = "demo",
        seed: Annotated[int, typer.Option(help="simulator seed")] = 42,
        bad_input_rate: Annotated[float, typer.Option(
            help="share of event lines corrupted, to show the quarantine at work")] = 0.001,
    ) -> int:
        """Run the whole pipeline on a simulated company."""
        return run_demo(preset, seed, bad_input_rate)

    @app.command("run")
    def run(
        day: Annotated[str | None, typer.Option(
            help="the UTC day to process, YYYY-MM-DD (default: yesterday)")] = None,
        full: Annotated[bool, typer.Option(
            "--full", help="full Stripe refresh and a full reload of the landed files")] = False,
        sync: Annotated[bool, typer.Option("--sync/--no-sync", help="run sync_segments at the end")] = True,
    ) -> int:
        """Run every pipeline DAG once on a day, on your sources (airflow dags test).

        ingest_stripe, ingest_events, transform_dbt, then sync_segments, stopping at the first
        failure; the sources are RETENTION_EVENTS_URI and the stripe_default connection."""
        from retention.cli import iso_date

        return run_pipeline(iso_date(day, "--day") or _yesterday(), full=full, sync=sync)
