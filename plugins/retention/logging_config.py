"""Airflow's logging configuration with the chattiest libraries turned down.

``[logging] namespace_levels`` filters Airflow's structlog loggers but not the standard
``logging`` loggers GX and Cosmos use, so their INFO lines (hundreds per gate task) still
reached every task log. This is Airflow's default configuration plus a level for each of
:data:`retention.runtime.QUIET_LOGGERS`; ``runtime.pipeline_env`` points
``AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS`` at :data:`LOGGING_CONFIG`.
"""

from __future__ import annotations

from copy import deepcopy

from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG

from retention.runtime import QUIET_LOGGERS

LOGGING_CONFIG = deepcopy(DEFAULT_LOGGING_CONFIG)
LOGGING_CONFIG.setdefault("loggers", {}).update({name: {"level": "WARNING"} for name in QUIET_LOGGERS})
