"""The one configuration source.

Everything the pipeline needs to know about *where* things live is derived here from
environment variables. The warehouse itself is described by a single variable,
``WAREHOUSE_URL``; the Airflow connection, the dbt profile and the GX datasource are all
derived from it (see :mod:`retention.warehouse`).

Environment variables
---------------------
``WAREHOUSE_URL``
    ``postgresql://user:password@host:port/dbname`` (or a libpq socket form such as
    ``postgresql://user@/db?host=/path/to/socketdir``). Unset: an embedded Postgres is
    started in ``RETENTION_HOME/.warehouse``.
``RETENTION_HOME``
    Project root (default: the checkout this package lives in, or the current directory
    when installed elsewhere).
``RETENTION_DATA_DIR``
    Where simulated/landed source files live (default ``RETENTION_HOME/.data``).
``RETENTION_REPORTS_DIR``
    Where the HTML retention report is written and served from (default
    ``RETENTION_HOME/reports``).
``AIRFLOW_HOME``
    Default ``RETENTION_HOME/.airflow`` (SQLite metadata, migrated automatically).
``RETENTION_EVENTS_SOURCE``
    Where product events come from, the pipeline's mode (docs/sources.md): ``files``
    (default: ``ingest_events`` loads landed files into ``raw.*``), ``warehouse`` (a
    Segment/RudderStack warehouse destination's tables, read in place by dbt) or ``none``
    (billing only: the finance marts, no product marts). dbt reads the same variable
    (var ``events_source`` in dbt_project.yml), the DAGs decide from it which raw Assets
    ``transform_dbt`` waits for, what it builds and gates, and what ``monitor_freshness``
    checks (:mod:`retention.sources`).
``RETENTION_EVENTS_WAREHOUSE_SCHEMA``
    Warehouse mode: the schema holding ``tracks``, ``identifies``, ``groups`` (default
    ``segment``; dbt var ``events_warehouse_schema``).
``RETENTION_GX_RESULTS_KEEP_DAYS``
    How many days of Great Expectations validation results (and their Data Docs pages)
    the quality gates keep in ``expectations/uncommitted/`` (default 14; ``0`` keeps
    every result). The Data Docs index reads every stored result, so an unbounded history
    makes each gate slower (docs/quality.md, "Stored results and Data Docs").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WAREHOUSE_URL_VAR = "WAREHOUSE_URL"
WAREHOUSE_CONN_ID = "warehouse"
STRIPE_CONN_ID = "stripe_default"
EVENTS_SOURCE_VAR = "RETENTION_EVENTS_SOURCE"
EVENTS_WAREHOUSE_SCHEMA_VAR = "RETENTION_EVENTS_WAREHOUSE_SCHEMA"
EVENTS_SOURCES = ("files", "warehouse", "none")
GX_RESULTS_KEEP_DAYS_VAR = "RETENTION_GX_RESULTS_KEEP_DAYS"
GX_RESULTS_KEEP_DAYS = 14


def _default_home() -> Path:
    # plugins/retention/config.py -> repo root is two levels above the package.
    here = Path(__file__).resolve().parent.parent.parent
    if (here / "dbt_project").is_dir() and (here / "dags").is_dir():
        return here
    return Path.cwd()


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse_url: str | None
    data_dir: Path
    reports_dir: Path
    airflow_home: Path
    events_source: str = "files"
    events_warehouse_schema: str = "segment"
    gx_results_keep_days: int = GX_RESULTS_KEEP_DAYS  # 0: keep every result

    @property
    def embedded_pgdata(self) -> Path:
        return self.home / ".warehouse" / "pgdata"

    @property
    def report_path(self) -> Path:
        """The HTML retention report: written by the demo, the sync DAG and
        ``retention report``, served by the Airflow UI plugin."""
        return self.reports_dir / "retention_report.html"

    @property
    def dags_folder(self) -> Path:
        return self.home / "dags"

    @property
    def plugins_folder(self) -> Path:
        return self.home / "plugins"

    @property
    def dbt_project_dir(self) -> Path:
        return self.home / "dbt_project"

    @property
    def expectations_dir(self) -> Path:
        return self.home / "expectations"


def settings(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from the environment (``os.environ`` unless given)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("RETENTION_HOME") or _default_home()).resolve()
    return Settings(
        home=home,
        warehouse_url=(env.get(WAREHOUSE_URL_VAR) or "").strip() or None,
        data_dir=Path(env.get("RETENTION_DATA_DIR") or home / ".data").resolve(),
        reports_dir=Path(env.get("RETENTION_REPORTS_DIR") or home / "reports").resolve(),
        airflow_home=Path(env.get("AIRFLOW_HOME") or home / ".airflow").resolve(),
        events_source=_events_source(env),
        events_warehouse_schema=(env.get(EVENTS_WAREHOUSE_SCHEMA_VAR) or "").strip() or "segment",
        gx_results_keep_days=_keep_days(env),
    )


def _keep_days(env) -> int:
    value = (env.get(GX_RESULTS_KEEP_DAYS_VAR) or "").strip()
    if not value:
        return GX_RESULTS_KEEP_DAYS
    if not value.isdigit():
        raise ValueError(f"{GX_RESULTS_KEEP_DAYS_VAR} must be a whole number of days (0: keep every result), not {value!r}")
    return int(value)


def _events_source(env) -> str:
    value = (env.get(EVENTS_SOURCE_VAR) or "").strip().lower() or "files"
    if value not in EVENTS_SOURCES:
        raise ValueError(f"{EVENTS_SOURCE_VAR} must be one of {', '.join(EVENTS_SOURCES)}, not {value!r}")
    return value
