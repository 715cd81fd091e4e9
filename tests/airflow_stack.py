"""Airflow as deployed, for tests: scheduler, dag-processor, triggerer and API server
(LocalExecutor) as processes of their own, and a client of the public REST API.

The commands are the ones the README's "Run it with a scheduler" section shows. The API
server binds 127.0.0.1 on a free port; auth is Airflow's simple auth manager with a
generated password file (POST /auth/token -> JWT). Every process is started in a session
of its own and stopped, with its children, when the ``with`` block ends, also on failure.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from retention import runtime

# The scheduler and the triggerer would each serve their logs on a fixed port on every
# interface (8793, 8794); on one machine the API server reads the log files directly.
SERVICES = {
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
    "api-server": ["api-server"],
}
USER = "admin"
# A test starts the services, lands files and waits: parse each DAG file once (it does
# not change during the test) instead of every 30 s, which on 2 cores takes CPU from the
# tasks; check for new task and run states without idling.
SNAPPY = {
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3600",
    "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "3600",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "3600",
}
TERMINAL = {"success", "failed"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_env(env: dict[str, str], home: Path, port: int) -> tuple[dict[str, str], str]:
    """``env`` plus what the four processes must share: the API address, auth manager,
    a password file, and the JWT and API secrets. Returns (env, password)."""
    password = secrets.token_urlsafe(16)
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USER: password}))
    env = dict(env)
    env.update({
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        **SNAPPY,
    })
    return env, password


@contextmanager
def _processes(commands: dict[str, list[str]], env: dict[str, str], logs: Path) -> Iterator[dict[str, subprocess.Popen]]:
    """Start each command in a session of its own (its task and parser children join its
    process group); on exit stop them all together (:func:`_stop`)."""
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, cmd in commands.items():
            with (logs / f"{name}.log").open("wb") as out:
                procs[name] = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        yield procs
    finally:
        _stop(list(procs.values()))


def _stop(procs: list[subprocess.Popen], grace_s: float = 15) -> None:
    """SIGTERM to every process group, SIGKILL to what is left after ``grace_s`` (the
    scheduler waits for its running tasks), then reap."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(proc.poll() is None for proc in procs):
        time.sleep(0.5)
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the process, if still there, and its leftovers
        except ProcessLookupError:
            pass
        proc.wait()


@dataclass
class AirflowAPI:
    """A small client of Airflow's public REST API (/api/v2)."""

    base_url: str
    client: httpx.Client
    alive: Any = None  # raises if one of the services died
    dag_ids: tuple[str, ...] = ()  # whose runs a timeout reports

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(f"/api/v2{path}", params=params)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict) -> httpx.Response:
        return self.client.post(f"/api/v2{path}", json=body)

    def patch(self, path: str, body: dict) -> Any:
        response = self.client.patch(f"/api/v2{path}", json=body)
        response.raise_for_status()
        return response.json()

    def every(self, path: str, key: str, **params: Any) -> list[dict]:
        """Every item of a paginated list: the API returns at most its page limit (100 by
        default, whatever ``limit`` asks), and a transform_dbt run has more tasks than that."""
        items: list[dict] = []
        while True:
            page = self.get(path, offset=len(items), limit=100, **params)
            items += page[key]
            if not page[key] or len(items) >= page["total_entries"]:
                return items

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.every(f"/dags/{dag_id}/dagRuns", "dag_runs", order_by="run_after")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.every(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances")

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")["state"]

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        value = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value")["value"]
        return json.loads(value) if isinstance(value, str) else value  # the raw stored JSON

    def state(self) -> str:
        """Every run of :attr:`dag_ids`, with the tasks of those not finished (for failures)."""
        lines = []
        for dag_id in self.dag_ids:
            for run in self.dag_runs(dag_id):
                lines.append(f"{dag_id} {run['dag_run_id']} {run['run_type']} {run['state']} "
                             f"queued {run.get('queued_at')} start {run['start_date']} end {run['end_date']}")
                if run["state"] not in TERMINAL:
                    tis = self.task_instances(dag_id, run["dag_run_id"])
                    lines += [f"    {ti['task_id']}[{ti['map_index']}] {ti['state']}" for ti in tis
                              if ti["state"] not in ("success", "skipped")]
            queued = self.client.get(f"/api/v2/dags/{dag_id}/assets/queuedEvents")
            if queued.status_code == 200 and queued.json()["total_entries"]:
                lines.append(f"{dag_id} queued asset events: {queued.json()['queued_events']}")
        return "\n".join(lines)

    def trigger(self, dag_id: str, **body: Any) -> dict:
        response = self.post(f"/dags/{dag_id}/dagRuns", {"logical_date": None, **body})
        response.raise_for_status()
        return response.json()

    def unpause(self, dag_id: str) -> None:
        self.patch(f"/dags/{dag_id}", {"is_paused": False})

    def wait(self, what: str, check, timeout_s: float, poll_s: float = 2.0) -> Any:
        """Poll ``check()`` until it returns something truthy; fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.alive:
                self.alive()
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; now:\n{self.state()}")
            time.sleep(poll_s)


@contextmanager
def airflow_stack(env: dict[str, str], logs: Path, dag_ids: list[str], timeout_s: float = 180) -> Iterator[AirflowAPI]:
    """Migrate the metadata DB, start the four services, log in, and wait until every DAG
    of ``dag_ids`` is parsed. Everything started is stopped on exit."""
    home = Path(env["AIRFLOW_HOME"])
    port = free_port()
    env, password = stack_env(env, home, port)
    runtime.ensure_airflow_db(env)
    airflow = runtime.airflow_bin()
    logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        procs = stack.enter_context(_processes({name: [airflow, *args] for name, args in SERVICES.items()}, env, logs))
        base_url = f"http://127.0.0.1:{port}"
        client = stack.enter_context(httpx.Client(base_url=base_url, timeout=30))

        def running() -> None:
            dead = {name: proc.returncode for name, proc in procs.items() if proc.poll() is not None}
            if dead:
                raise AssertionError(f"airflow processes exited: {dead}; logs in {logs}")

        api = AirflowAPI(base_url, client, running, tuple(dag_ids))

        def token() -> str | None:
            try:
                response = client.post("/auth/token", json={"username": USER, "password": password})
            except httpx.TransportError:
                return None
            return response.json()["access_token"] if response.status_code in (200, 201) else None

        client.headers["Authorization"] = f"Bearer {api.wait('the API server', token, timeout_s, 1)}"

        def parsed() -> bool:
            known = {d["dag_id"] for d in api.get("/dags", limit=100)["dags"]}
            return set(dag_ids) <= known

        api.wait(f"DAGs {dag_ids} parsed", parsed, timeout_s)
        yield api
