"""One task per dbt model or seed reporting the node AND its data tests from one ``dbt build``.

Cosmos' watcher mode (``ExecutionMode.WATCHER``) runs the whole project as one ``dbt build``
in its producer task, which publishes each node's status, and each test model's aggregated
test result, to XCom as dbt reports them. Cosmos renders a model's tests as a second task
(``TestBehavior.AFTER_EACH``); :class:`DbtNodeBuildWatcher` is the model's (or seed's) one
task instead, rendered with ``TestBehavior.NONE`` through a node converter
(:func:`node_build_task`) and wired by :func:`retention.dbt.wire_watchers`:

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

    def _pull(self, ti: Any, key: str) -> Any:
        return get_xcom_val(ti, self.producer_task_id, key)

    def _node_status(self, ti: Any, unique_id: str) -> str | None:
        return (self._pull(ti, get_status_xcom_key(unique_id)) or {}).get("status")

    def _build_own(self, context: Any, why: str) -> bool:
        log.info("%s: %s; running `dbt build --select` for it (the node and its tests)", self.model_unique_id, why)
        return self._fallback_to_non_watcher_run(context["ti"].try_number, context)

    def poke(self, context: Any) -> bool:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        ti = context["ti"]
        producer = self._get_producer_task_status(context)
        done = is_producer_task_terminated(producer)
        if producer == ProducerTaskState.SKIPPED:
            return self._build_own(context, "the producer was skipped (retried or cleared), it built nothing")
        if ti.try_number > 1 and done:
            return self._build_own(context, f"try {ti.try_number} after the build")

        status = (self._pull(ti, get_status_xcom_key(self.model_unique_id)) or {}).get("status")
        if status is None:
            if not done:
                return False
            raise AirflowException(f"the dbt build ({producer}) reported nothing for {self.model_unique_id}: "
                                   f"see the log of {self.producer_task_id}")
        event = self._pull(ti, get_dbt_event_xcom_key(self.model_unique_id))
        _log_dbt_event(event)
        if status == SKIPPED_AFTER_UPSTREAM_FAILURE:
            # this task runs only once its upstream tasks succeeded: a retry has repaired them since
            return self._build_own(context, "the build skipped it after an upstream failure since repaired")
        if not is_dbt_node_status_success(status):
            raise AirflowException(f"{self.model_unique_id}: {status} in the dbt build: {(event or {}).get('msg')}"
                                   f" (the log of {self.producer_task_id} has the detail)")

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
                    owner_failed.append(f"{_test_name(test)}: {test_event.get('msg')}")
            if not owner_failed and not owner_not_run:
                owner_failed.append(f"a test of {owner} (see the log of {self.producer_task_id})")
            failed += owner_failed
            not_run += owner_not_run
        if failed:
            raise AirflowFailException(f"{self.model_unique_id} built, but its data tests failed: {'; '.join(failed)}")
        if not_run:
            log.warning("%s: tests not run because another node they test was not built: %s",
                        self.model_unique_id, ", ".join(not_run))
        log.info("%s built; %d data tests passed", self.model_unique_id,
                 sum(len(tests) for tests in self.tests_per_node.values()) - len(not_run))
        return True


def _test_name(unique_id: str) -> str:
    return unique_id.split(".")[2]


def node_build_task(*, dag: Any, task_group: Any, node: Any, task_id: str, task_args: dict[str, Any],
                    **_: Any) -> DbtNodeBuildWatcher:
    """Cosmos node converter (``RenderConfig.node_converters``) for models and seeds."""
    group_path = "__".join(part for part in (dag.dag_id, getattr(task_group, "group_id", None)) if part)
    return DbtNodeBuildWatcher(
        task_id=task_id,
        dag=dag,
        task_group=task_group,
        extra_context={"dbt_node_config": node.context_dict, "package_name": node.package_name,
                       "dbt_dag_task_group_identifier": group_path},
        select=f"fqn:{'.'.join(node.fqn)}" if node.fqn else node.resource_name,
        **task_args,
    )
