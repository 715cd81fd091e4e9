"""What the dbt orchestration shares: where the project lives, the Cosmos profile mapping
for the ``warehouse`` connection, the committed ``dbt ls`` listing the DAG renders from,
and how the watcher tasks wait for the build (:func:`wire_watchers`).

Rendering from a committed listing (Cosmos ``LoadMode.DBT_LS_FILE``) keeps DAG parsing
cheap: no dbt process, no database and no network when the scheduler parses the file.
After adding, renaming or removing a model, seed or test, refresh it with::

    python -m retention.dbt

(``tests/dbt/test_dbt_ls_file.py`` fails, saying so, when the listing is stale.) There is
one listing per events source (:mod:`retention.sources`): what dbt builds differs (the
warehouse mode's models, the ``finance`` selector when there are no events), and a
watcher task for a node the build never runs would wait for it forever.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from retention.config import settings

LS_FILE_NAME = "dbt_ls.json"
# The listing per RETENTION_EVENTS_SOURCE (files: LS_FILE_NAME).
LS_FILE_NAMES = {"files": LS_FILE_NAME, "warehouse": "dbt_ls_warehouse.json", "none": "dbt_ls_finance.json"}
# What Cosmos reads from each `dbt ls` line (cosmos.dbt.graph.parse_dbt_ls_output).
LS_OUTPUT_KEYS = (
    "name", "unique_id", "resource_type", "depends_on", "original_file_path", "tags", "config", "fqn",
)
LS_RESOURCE_TYPES = ("model", "seed", "snapshot", "test", "source")
# Flags of every production `dbt build` (the transform_dbt producer, and the bare builds and
# benchmarks it is compared with): no debug log file. Cosmos runs the build in a temporary
# copy of the project and deletes it afterwards, log folder included, so the file would be
# thrown away unread; writing it costs a daily run on `large` ~0.6 s of CPU (docs/dbt.md).
# The task log keeps dbt's info lines. The JSON artifacts stay: Cosmos' partial-parse cache
# copies manifest.json beside partial_parse.msgpack.
BUILD_FLAGS = ("--log-level-file", "none")


def project_dir() -> Path:
    return settings().dbt_project_dir


def ls_file(events_source: str = "files") -> Path:
    """The committed listing ``transform_dbt`` renders from in mode ``events_source``."""
    return project_dir() / LS_FILE_NAMES[events_source]


def dbt_executable() -> Path:
    """The venv's dbt, next to the running interpreter."""
    return Path(sys.executable).parent / "dbt"


def list_resources(target_dir: Path, events_source: str = "files") -> str:
    """`dbt ls` of the project as sorted JSON lines, what ``transform_dbt`` builds in mode
    ``events_source`` (:mod:`retention.sources`). Needs no database: dbt only parses."""
    from retention.config import EVENTS_SOURCE_VAR
    from retention.sources import SourceMode

    placeholders = {  # profiles.yml requires these; `dbt ls` never connects
        "WAREHOUSE_HOST": "localhost", "WAREHOUSE_USER": "dbt_ls", "WAREHOUSE_DBNAME": "dbt_ls",
    }
    env = {**placeholders, **os.environ, EVENTS_SOURCE_VAR: events_source}
    selector = SourceMode(events_source).dbt_selector
    cmd = [
        str(dbt_executable()), "ls", "--quiet", "--output", "json", "--output-keys", *LS_OUTPUT_KEYS,
        "--resource-types", *LS_RESOURCE_TYPES,
        "--project-dir", str(project_dir()), "--profiles-dir", str(project_dir()),
        "--target-path", str(target_dir), "--log-path", str(target_dir / "logs"),
        *(["--selector", selector] if selector else []),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dbt ls failed; fix the project first:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return "".join(json.dumps(obj, sort_keys=True) + "\n" for obj in sorted(lines, key=lambda o: o["unique_id"]))


def refresh_ls_file() -> list[Path]:
    """Rewrite the committed listings (one per events source) from the project as it is now."""
    import tempfile

    for source in LS_FILE_NAMES:
        with tempfile.TemporaryDirectory() as tmp:
            ls_file(source).write_text(list_resources(Path(tmp), source))
    return [ls_file(source) for source in LS_FILE_NAMES]


def bare_build_seconds(url: str, *build_args: str, results: Path | None = None) -> float:
    """Wall time of a bare ``dbt build`` (unit tests excluded, ``build_args`` added) on a
    copy of the database of ``url``, made and dropped here: the dbt work ``transform_dbt``
    orchestrates, without Airflow, to compare with it (``retention demo``,
    ``benchmarks/bench_daily_cycle.py``). A copy, because a build on the warehouse itself
    would rebuild the marts after their publication, and the sync then rightly refuses to
    send them (the demo's sync did). It parses the project from scratch, as a first
    ``transform_dbt`` run does. No session may be connected to the database while it is
    copied (Postgres ``create database ... template``). It runs with the producer's
    :data:`BUILD_FLAGS`. With ``results``, dbt's
    ``run_results.json`` of the build is copied there (each node's time)."""
    import tempfile
    import time
    from dataclasses import replace

    from retention import warehouse

    params = warehouse.parse_url(url)
    copy = f"{params.dbname}_bare_build"
    with warehouse.connect(url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{copy}" with (force)')
        conn.execute(f'create database "{copy}" template "{params.dbname}"')
    env = {**os.environ, **warehouse.dbt_env(warehouse.url_from_params(replace(params, dbname=copy)))}
    try:
        with tempfile.TemporaryDirectory(prefix="bare_build_") as tmp:
            paths = ["--project-dir", str(project_dir()), "--profiles-dir", str(project_dir()),
                     "--target-path", tmp, "--log-path", str(Path(tmp) / "logs")]
            started = time.perf_counter()
            result = subprocess.run([str(dbt_executable()), "build", "--exclude-resource-type", "unit_test",
                                     *BUILD_FLAGS, *build_args, *paths], env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            if result.returncode != 0:
                raise RuntimeError(f"bare dbt build failed:\n{result.stdout[-3000:]}")
            if results is not None:
                shutil.copyfile(Path(tmp) / "run_results.json", results)
            return seconds
    finally:
        with warehouse.connect(url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{copy}" with (force)')


def wire_watchers(group: Any, converter: Any) -> None:
    """Finish a Cosmos ``ExecutionMode.WATCHER`` task group rendered with
    ``TestBehavior.NONE`` and ``converter`` (a
    :class:`retention.operators.dbt_watch.NodeBuildTasks`): one task per model, and one per
    group of seeds or staging models, reporting its nodes and their data tests from the
    one ``dbt build``.

    * The build runs the tests: Cosmos adds ``--resource-type`` flags to the producer's
      command to leave them out under ``TestBehavior.NONE``; they are removed here, so a
      failing test makes dbt skip what is downstream of it, as with ``dbt build``.
    * Each task learns which tests are its own (its nodes', and those on the sources they
      read) from Cosmos' dbt graph (``tests_per_model``), and the group tasks get the
      dependencies Cosmos could not draw for nodes it did not render.
    * The tasks start after the build has finished, succeeded or failed. Cosmos starts them
      beside the producer, each waiting for its node's status; run one task at a time
      (``airflow dags test``: the demo, the tests, the benchmarks) a task that starts first
      waits for a build that cannot start. So, as Cosmos itself does in a ``DbtDag``, each
      task that waits for no other task of the group waits for the producer, whatever it
      ended in (``all_done``: a failed build still says which node failed) and reads its
      status at once. Only when the build did not run at all (a raw gate failed: it is
      ``upstream_failed``) are they skipped, by :func:`skip_unless_built` (the group's
      ``pre_execute``).
    * What follows the group waits for every node's task, not for the build: Cosmos' gate
      after the producer (``dbt_producer_watcher_done``) runs whatever the build ended in
      (``all_done``), so a model that failed in the build and succeeded on its retry does
      not hold the marts back; a build that failed is reported by its nodes' tasks.
    """
    from airflow.sdk import TriggerRule
    from cosmos.constants import PRODUCER_WATCHER_DONE_TASK_ID, PRODUCER_WATCHER_TASK_ID

    from retention.operators.dbt_watch import DbtNodeBuildWatcher

    tasks = [t for t in group.dag.tasks if t.task_id.startswith(f"{group.group_id}.")]
    producer = next(t for t in tasks if t.task_id == f"{group.group_id}.{PRODUCER_WATCHER_TASK_ID}")
    producer.dbt_cmd_flags = _without_resource_types(producer.dbt_cmd_flags or [])
    for task in tasks:
        if task.task_id == f"{group.group_id}.{PRODUCER_WATCHER_DONE_TASK_ID}":
            task.trigger_rule = TriggerRule.ALL_DONE
    graph = group.dbt_graph
    watchers = [t for t in tasks if isinstance(t, DbtNodeBuildWatcher)]
    task_of = {node: task for task in watchers for node in task.node_ids}
    for task in watchers:
        task.producer_task_id = producer.task_id  # Cosmos sets it only on the tasks it rendered
        nodes = [graph.filtered_nodes[n] for n in task.node_ids]
        reads = {d for node in nodes for d in node.depends_on}
        owners = [*task.node_ids, *sorted(d for d in reads if d.startswith("source."))]
        task.tests_per_node = {
            owner: {test: list(graph.nodes[test].depends_on) for test in graph.tests_per_model[owner]}
            for owner in owners if graph.tests_per_model.get(owner)
        }
        for upstream in {task_of[d] for d in reads if d in task_of} - {task}:
            upstream >> task
    in_group = {t.task_id for t in watchers}
    for task in watchers:
        if not task.upstream_task_ids & in_group:
            producer >> task
            task.trigger_rule = TriggerRule.ALL_DONE


def _without_resource_types(flags: list[str]) -> list[str]:
    kept, skip = [], False
    for flag in flags:
        if skip:
            skip = False
        elif flag == "--resource-type":
            skip = True
        else:
            kept.append(flag)
    return kept


def skip_unless_built(context: Any) -> None:
    """``pre_execute`` of the watcher task group's tasks: skip a watcher that starts right
    after the producer (:func:`wire_watchers`) when the producer never ran
    (``upstream_failed``): it would wait forever for a build that will not come."""
    from airflow.sdk.exceptions import AirflowSkipException
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    ti = context["ti"]
    producer = getattr(ti.task, "producer_task_id", None)
    if producer is None or producer not in ti.task.upstream_task_ids:
        return
    state = RuntimeTaskInstance.get_task_states(dag_id=ti.dag_id, task_ids=[producer], run_ids=[ti.run_id])
    state = str(state.get(ti.run_id, {}).get(producer))
    if state in ("upstream_failed", "removed", "None"):
        raise AirflowSkipException(f"{producer} did not run ({state}): nothing was built")


def warehouse_profile_mapping(conn_id: str = "warehouse") -> Any:
    """Cosmos profile mapping for the Postgres ``warehouse`` connection.

    Cosmos' stock ``PostgresUserPasswordProfileMapping`` requires a password, but the
    embedded warehouse has none (trust auth on a Unix socket, whose directory is the
    connection's host). This subclass accepts an empty password; everything else,
    including keeping the password out of profiles.yml (an env var), is Cosmos' own.
    The settings that are not the connection's (``threads``, ``connect_timeout``) come from
    the project's ``profiles.yml``, as for ``retention dbt``: Cosmos' mapping sets no
    ``threads``, and dbt then builds one node at a time (the producer's daily build on
    ``large`` took 28.6 s against the bare build's 17.4 s with 4 threads).
    """
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    class WarehouseProfileMapping(PostgresUserPasswordProfileMapping):
        required_fields = ["host", "user", "dbname"]

        def get_dbt_value(self, name: str) -> Any:
            value = super().get_dbt_value(name)
            return "" if name == "password" and value is None else value

        @property
        def profile(self) -> dict[str, Any]:  # read when the task writes profiles.yml, not at DAG parse
            return {**super().profile, **profile_settings()}

    return WarehouseProfileMapping(conn_id=conn_id, profile_args={"schema": "public"})


def profile_settings() -> dict[str, Any]:
    """The project's dbt output settings that do not come from the connection (``threads``,
    ``connect_timeout``), from ``profiles.yml``: one place for the CLI's and Airflow's builds."""
    import yaml

    profile = yaml.safe_load((project_dir() / "profiles.yml").read_text())["retention"]
    output = profile["outputs"][profile["target"]]
    return {key: output[key] for key in ("threads", "connect_timeout") if key in output}


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    print("wrote " + ", ".join(map(str, refresh_ls_file())))
