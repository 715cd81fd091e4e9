"""Quality-gate tasks for DAGs: the GX provider's checkpoint operator, configured lazily.

Nothing here touches the warehouse or GX at DAG-parse time: the GX context and the
checkpoint are built inside the task through the operator's ``configure_*`` callables,
with the warehouse URL taken from the ``warehouse`` Airflow connection. A gate judges the
data as of the ``gate_as_of`` param, else the last day its run processes (decided by the
run's ``run_interval`` task, :mod:`retention.schedule`), never the wall clock.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from great_expectations_provider.common.errors import GXValidationFailed
from great_expectations_provider.operators.validate_checkpoint import GXValidateCheckpointOperator

from retention.config import settings


def _file_context():
    from retention.quality.gate import file_context

    return file_context(settings().expectations_dir)


def _configure(gate_name: str, context):
    from airflow.sdk import get_current_context

    from retention.hooks.warehouse import WarehouseHook
    from retention.quality.gate import configure_checkpoint
    from retention.quality.suites import GateSettings

    from retention.schedule import checked_as_of

    as_of = checked_as_of(get_current_context())
    return configure_checkpoint(context, gate_name, WarehouseHook().url, GateSettings(as_of=as_of))


class QualityGateOperator(GXValidateCheckpointOperator):
    """The provider's checkpoint operator, except that failing expectations fail the task
    at once: the data will not change on a retry. Errors reaching the warehouse or GX
    still get the task's retries."""

    def execute(self, context) -> None:
        try:
            super().execute(context)
        except GXValidationFailed as failed:
            raise AirflowFailException(f"{self.task_id}: {failed}") from failed


def gate_task(gate_name: str, **kwargs: Any) -> QualityGateOperator:
    """A task validating one gate (see :data:`retention.quality.suites.GATES`)."""
    return QualityGateOperator(
        task_id=f"gate_{gate_name}",
        configure_checkpoint=partial(_configure, gate_name),
        context_type="file",
        configure_file_data_context=_file_context,
        **kwargs,
    )
