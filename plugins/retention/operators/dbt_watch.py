"""One task per dbt model reporting the node AND its data tests from one ``dbt build``.

Cosmos' watcher mode (``ExecutionMode.WATCHER``) runs the whole project as one ``dbt build``
in its producer task, which publishes each node's status, and each tested node's
aggregated test result, to XCom as dbt reports them. Cosmos renders a model's tests as a
second task (``TestBehavior.AFTER_EACH``); :class:`DbtNodeBuildWatcher` is the model's one
task instead, rendered with ``TestBehavior.NONE`` through a node converter
(:class:`NodeBuildTasks`, which gives the seeds one task and the staging models another)
and wired by :func:`retention.dbt.wire_watchers`. For its node (or each of its group's):

* it succeeds when the build built the node and every data test on it (and on the sources
  it reads) passed;
* it fails for good (``AirflowFailException``, no retry: the data would not change) when
  a test failed, naming the failing tests; its downstream tasks are then
  ``upstream_failed``, as dbt skipped those nodes inside the build;
* it fails with retries when the node itself failed in the build (an error the next try
  may not hit); a retry, or a task cleared after the build, runs ``dbt build --select
  <node>`` on its own: the node and its tests, with the build's flags;
* it builds the node on its own when the build skipped it after an upstream failure that
  a retry has since repaired (it only runs when its upstream tasks succeeded), or when
  the producer was skipped (a cleared producer does not build again).

It waits in poke mode (``deferrable=False``): ``retention.dbt.wire_watchers`` starts these
tasks after the build has ended, so the status is there at once and a triggerer round
trip would only add latency.
"""

from __future__ import annotations

import logging
from typing import Any

from cosmos.operators._watcher.aggregation import get_tests_status_xcom_key
from cosmos.operators._watcher.state import (
    ProducerTaskState,
    _log_dbt_event,
    get_dbt_event_xcom_key,
    get_status_xcom_key,
    get_xcom_val,
    is_dbt_node_status_success,
    is_producer_task_terminated,
)
from cosmos.constants import _PRODUCER_CMD_FLAGS_XCOM_KEY
from cosmos.dbt.graph import DbtNode
from cosmos.operators.watcher import DbtConsumerWatcherSensor

log = logging.getLogger(__name__)

# Cosmos reports a node dbt skipped after an upstream failure as "failed" (cosmos#2698); a
# node that failed itself is "error" (a model) or "fail"/"error" (a test)
SKIPPED_AFTER_UPSTREAM_FAILURE = "failed"


class DbtNodeBuildWatcher(DbtConsumerWatcherSensor):
    """A model's or seed's task: its status and its tests' from the producer's ``dbt build``."""

    # a retry or a clear rebuilds the node and its tests (Cosmos' run watcher would only `dbt run`)
    base_cmd = ["build"]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("deferrable", False)
        kwargs.setdefault("poke_interval", 5)
        super().__init__(**kwargs)
        # node unique_id -> {test unique_id: the nodes it tests}: this node's tests and those on
        # the sources it reads (set by retention.dbt.wire_watchers from Cosmos' dbt graph)
        self.tests_per_node: dict[str, dict[str, list[str]]] = {}
        self.group_node_ids: list[str] = []  # a group task's nodes (NodeBuildTasks)

    @property
    def node_ids(self) -> list[str]:
        """The dbt nodes this task reports: its model's or seed's, or a group's (:class:`NodeBuildTasks`)."""
        return self.group_node_ids or [self.model_unique_id]

    def _pull(self, ti: Any, key: str) -> Any:
        return get_xcom_val(ti, self.producer_task_id, key)

    def _node_status(self, ti: Any, unique_id: str) -> str | None:
        return (self._pull(ti, get_status_xcom_key(unique_id)) or {}).get("status")

    def _build_own(self, context: Any, why: str) -> bool:
        """`dbt build --select` of this task's nodes (and so their tests), with the producer's
        flags but its selection (as Cosmos' own fallback does for one model)."""
        log.info("%s: %s; running `dbt build --select` for it (the node and its tests)", self.task_id, why)
        flags = self._pull(context["ti"], _PRODUCER_CMD_FLAGS_XCOM_KEY)
        if flags is None:
            flags = self.add_cmd_flags()
        names = [DbtNode.get_resource_name_from_unique_id(n) for n in self.node_ids]
        self.build_and_run_cmd(context, cmd_flags=[*self._filter_flags(flags), "--select", *names])
        return True

    def poke(self, context: Any) -> bool:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        ti = context["ti"]
        producer = self._get_producer_task_status(context)
        done = is_producer_task_terminated(producer)
        if producer == ProducerTaskState.SKIPPED:
            return self._build_own(context, "the producer was skipped (retried or cleared), it built nothing")
        if ti.try_number > 1 and done:
            return self._build_own(context, f"try {ti.try_number} after the build")

        statuses = {node: self._node_status(ti, node) for node in self.node_ids}
        if None in statuses.values():
            if not done:
                return False
            missing = ", ".join(n for n, s in statuses.items() if s is None)
            raise AirflowException(f"the dbt build ({producer}) reported nothing for {missing}: "
                                   f"see the log of {self.producer_task_id}")
        errors = []
        for node, status in statuses.items():
            if not is_dbt_node_status_success(status) and status != SKIPPED_AFTER_UPSTREAM_FAILURE:
                event = self._pull(ti, get_dbt_event_xcom_key(node))
                _log_dbt_event(event)
                errors.append(f"{node}: {status} in the dbt build: {(event or {}).get('msg')}")
        if errors:
            raise AirflowException("; ".join(errors) + f" (the log of {self.producer_task_id} has the detail)")
        if SKIPPED_AFTER_UPSTREAM_FAILURE in statuses.values():
            # this task runs only once its upstream tasks succeeded: a retry has repaired them since
            return self._build_own(context, "the build skipped it after an upstream failure since repaired")

        failed, not_run = [], []
        for owner, tests in self.tests_per_node.items():
            aggregated = self._pull(ti, get_tests_status_xcom_key(owner))
            if aggregated is None:
                if not done:
                    return False
                raise AirflowException(f"the dbt build ({producer}) did not report every test of {owner}")
            if is_dbt_node_status_success(aggregated):
                continue
            owner_failed, owner_not_run = [], []
            for test, parents in tests.items():
                # dbt skips a test on two nodes when the other one was not built: that node's task
                # reports it, and its retry (dbt build --select) runs the test
                others = [p for p in parents if p != owner and not p.startswith("source.")]
                if any(not is_dbt_node_status_success(self._node_status(ti, p)) for p in others):
                    owner_not_run.append(_test_name(test))
                    continue
                test_event = self._pull(ti, get_dbt_event_xcom_key(test))  # only failed tests have one
                if test_event is not None and not is_dbt_node_status_success(test_event.get("status")):
                    owner_failed.append(f"{_test_name(test)}: {test_event.get('msg')}{_checks_hint(test)}")
            if not owner_failed and not owner_not_run:
                owner_failed.append(f"a test of {owner} (see the log of {self.producer_task_id})")
            failed += [f"{DbtNode.get_resource_name_from_unique_id(owner)}: {f}" for f in owner_failed]
            not_run += owner_not_run
        if failed:
            raise AirflowFailException(f"{self.task_id}: built, but data tests failed: {'; '.join(failed)}")
        if not_run:
            log.warning("%s: tests not run because another node they test was not built: %s",
                        self.task_id, ", ".join(not_run))
        log.info("%s built (%s); %d data tests passed", self.task_id,
                 ", ".join(DbtNode.get_resource_name_from_unique_id(n) for n in self.node_ids),
                 sum(len(tests) for tests in self.tests_per_node.values()) - len(not_run))
        return True


def _test_name(unique_id: str) -> str:
    return unique_id.split(".")[2]


def _checks_hint(unique_id: str) -> str:
    """Where a failing ``column_checks`` test (several checks of one table in one node,
    dbt_project/tests/generic/column_checks.sql) says which of its checks failed."""
    name = _test_name(unique_id)
    if not name.endswith("_column_checks"):
        return ""
    return (f" (failing rows of several checks: `retention dbt test --select {name} --store-failures`"
            " lists each failing check and its rows)")


class NodeBuildTasks:
    """Cosmos node converter (``RenderConfig.node_converters``) for models and seeds: a
    :class:`DbtNodeBuildWatcher` per node, except the nodes of :attr:`GROUPS`, which get
    one task per group (:func:`retention.dbt.wire_watchers` wires it): seeds are small
    configuration tables loaded whole, and staging models are views renaming and casting
    one raw table each; a group task reports every node of it and their tests, and names
    the failing ones."""

    GROUPS = {"seeds": lambda node: node.resource_type.value == "seed",
              "staging": lambda node: len(node.fqn) > 1 and node.fqn[1] == "staging"}

    __name__ = "NodeBuildTasks"  # Cosmos logs a converter's name

    def __init__(self) -> None:
        self.groups: dict[str, DbtNodeBuildWatcher] = {}

    def __call__(self, *, dag: Any, task_group: Any, node: Any, task_id: str, task_args: dict[str, Any],
                 **_: Any) -> DbtNodeBuildWatcher | None:
        group = next((name for name, member in self.GROUPS.items() if member(node)), None)
        if group is None:
            return _watcher(dag, task_group, node, task_id, task_args)
        if group not in self.groups:
            self.groups[group] = _watcher(dag, task_group, node, group, task_args)
        self.groups[group].group_node_ids.append(node.unique_id)
        return None  # in its group's task


def _watcher(dag: Any, task_group: Any, node: Any, task_id: str, task_args: dict[str, Any]) -> DbtNodeBuildWatcher:
    group_path = "__".join(part for part in (dag.dag_id, getattr(task_group, "group_id", None)) if part)
    return DbtNodeBuildWatcher(
        task_id=task_id,
        dag=dag,
        task_group=task_group,
        extra_context={"dbt_node_config": node.context_dict, "package_name": node.package_name,
                       "dbt_dag_task_group_identifier": group_path},
        **task_args,  # no `select`: _build_own selects the task's nodes
    )
