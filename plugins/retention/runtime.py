"""Process environment for Airflow, dbt and GX, derived from :mod:`retention.config`.

The CLI (``retention airflow ...``, ``retention demo``), the Makefile and the container
entrypoint all go through :func:`pipeline_env`, so there is exactly one place where
``WAREHOUSE_URL`` turns into an Airflow connection and a dbt profile.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from retention import warehouse
from retention.config import WAREHOUSE_CONN_ID, Settings

log = logging.getLogger(__name__)

# Libraries that log hundreds of INFO lines per task or command (GX registers its API at
# import, Cosmos narrates its caches): WARNING and above only, in Airflow and the CLI.
QUIET_LOGGERS = ("great_expectations", "cosmos")


def airflow_sizing(cpus: int | None = None) -> dict[str, str]:
    """Airflow settings sized for the machine: at most two task processes per core.

    Every Airflow task is a process (a dbt model is a second one), so the defaults
    (parallelism 32, 16 tasks per DAG) start far more than two cores can run: on 2 cores
    the scheduler's processes took about 7 GB and 14 staging views waited 86 s each for
    2-4 s of dbt work. One file parser and one API worker are enough for our four DAGs.
    Each value can still be overridden by setting its variable (`pipeline_env` keeps it).
    """
    slots = str(2 * max(1, cpus or os.cpu_count() or 1))
    return {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": slots,
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": slots,
        "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": slots,
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__API__WORKERS": "1",
    }


def pipeline_env(url: str, cfg: Settings) -> dict[str, str]:
    """Environment variables that point Airflow, dbt and our package at ``url``, with
    Airflow sized for this machine (:func:`airflow_sizing`, unless set already)."""
    env = {
        "RETENTION_HOME": str(cfg.home),
        "RETENTION_DATA_DIR": str(cfg.data_dir),
        "RETENTION_REPORTS_DIR": str(cfg.reports_dir),
        "WAREHOUSE_URL": url,
        f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}": warehouse.airflow_connection_json(url),
        "AIRFLOW_HOME": str(cfg.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(cfg.dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(cfg.plugins_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # Cosmos caches dbt's partial parse and profiles; one cache per Airflow home, not
        # the machine-wide /tmp/cosmos that two checkouts (or two projects) would share.
        "AIRFLOW__COSMOS__CACHE_DIR": str(cfg.airflow_home / "cosmos"),
        # No usage telemetry to a third party from a data pipeline, unless a user opts in.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # Task logs show our lines and dbt's, not GX's and Cosmos' INFO chatter.
        "AIRFLOW__LOGGING__NAMESPACE_LEVELS": " ".join(f"{name}=WARNING" for name in QUIET_LOGGERS),
        "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS": "retention.logging_config.LOGGING_CONFIG",
        "DBT_PROFILES_DIR": str(cfg.dbt_project_dir),
        "DBT_PROJECT_DIR": str(cfg.dbt_project_dir),
    }
    env.update(warehouse.dbt_env(url))
    defaults = {
        **airflow_sizing(),
        # Cosmos caches dbt's partial parse per DAG; in /tmp (its default) every project and
        # warehouse on the machine shares, and invalidates, one cache, so each dbt task
        # re-parsed the whole project (86 s under load for 2-4 s of work).
        "AIRFLOW__COSMOS__CACHE_DIR": str(cfg.airflow_home / "cosmos"),
        # Cosmos' "reliable retry" copies every node status the dbt build's producer task
        # publishes into an Airflow Variable, rewritten whole after each node, so that a
        # retried producer could restore them. transform_dbt's producer is never retried
        # (retries 0: a retry would only skip), and Cosmos still writes the copy once if the
        # producer fails. The copies cost ~0.7 s of CPU in a demo build (profiled,
        # docs/performance.md), and grow with the project.
        "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
    }
    env.update({key: value for key, value in defaults.items() if key not in os.environ})
    return env


def child_env(url: str, cfg: Settings) -> dict[str, str]:
    """``os.environ`` overlaid with :func:`pipeline_env`, for subprocesses."""
    env = dict(os.environ)
    env.update(pipeline_env(url, cfg))
    # The venv's bin first, so `airflow` and `dbt` resolve to the pinned versions.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def airflow_bin() -> str:
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else (shutil.which("airflow") or "airflow")


def ensure_airflow_db(env: dict[str, str]) -> None:
    """Migrate the project-local SQLite metadata DB (idempotent, fast when current)."""
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    stamp = home / ".migrated"
    if stamp.exists():
        ensure_pools(env)
        return
    log.info("migrating Airflow metadata in %s", home)
    subprocess.run([airflow_bin(), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    stamp.touch()
    ensure_pools(env)


def ensure_pools(env: dict[str, str]) -> None:
    """Create the sync's Airflow pools, one per destination kind (``retention.sync.destinations.registry.pools``),
    once per Airflow home and set of pools."""
    from retention.sync.destinations.registry import pools

    wanted = {name: {"slots": slots, "description": desc, "include_deferred": False}
              for name, (slots, desc) in pools().items()}
    text = json.dumps(wanted, sort_keys=True)
    stamp = Path(env["AIRFLOW_HOME"]) / ".pools.json"
    if stamp.exists() and stamp.read_text() == text:
        return
    pools_file = Path(env["AIRFLOW_HOME"]) / "pools.import.json"
    pools_file.write_text(text)
    log.info("creating Airflow pools %s", ", ".join(wanted))
    subprocess.run([airflow_bin(), "pools", "import", str(pools_file)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    stamp.write_text(text)


def dags_test(
    dag_id: str,
    env: dict[str, str],
    logical_date: str | None = None,
    conf: dict | None = None,
    task_logs: bool = False,
    **run_kwargs,
) -> subprocess.CompletedProcess:
    """Run ``airflow dags test DAG [DATE] [-c CONF]`` (non-zero exit when the run fails).

    ``task_logs``: also write each task's part of the output where the Airflow UI reads
    task logs (:func:`retention.airflow_runs.write_task_logs`); the output still goes
    to this process's stdout as it comes."""
    ensure_airflow_db(env)
    cmd = [airflow_bin(), "dags", "test", dag_id]
    if logical_date:
        cmd.append(logical_date)
    if conf:
        cmd += ["-c", json.dumps(conf)]
    log.info("running %s", " ".join(cmd))
    if not task_logs:
        return subprocess.run(cmd, env=env, **run_kwargs)
    from retention.airflow_runs import write_task_logs

    lines = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", **run_kwargs) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line)
    sys.stdout.flush()
    write_task_logs(env, dag_id, lines)
    return subprocess.CompletedProcess(cmd, proc.returncode)
