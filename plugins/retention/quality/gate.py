"""Run the GX suites against the warehouse, SQL pushed down.

``configure_checkpoint`` builds the datasource → table asset → batch definition → suite →
validation definition → checkpoint chain inside a GX context. :func:`run_gates` runs a
list of gates one after the other in one context: the DAGs' stage tasks
(:mod:`retention.operators.quality`), the CLI and the tests all call it.

The datasource's connection string is stored as the placeholder ``${GX_WAREHOUSE_URL}``
and resolved from the environment at run time, so no credential is ever written into
``expectations/``.

A daily run's window (``GateSettings.since``) is a second, query asset of a windowed
gate's table, ``<schema>.<table> (window)``: its rows from the Postgres setting
``retention.gate_since`` on, which the connection sets (libpq ``options``). So the query,
and ``expectations/great_expectations.yml`` that stores it, never change from run to run,
and Postgres, comparing the partition key with a value known when the query starts,
reads only the partitions of the window. The window's assets live in a datasource of their
own, :data:`WINDOW_DATASOURCE`, with GX's ``create_temp_table``: GX copies the window into
a temporary table once per gate and runs every check on it. Otherwise GX runs each check
on the window query again, and reads the query's columns by running it whole and fetching
every row (its column reflection for a query has no ``LIMIT``): the raw stage on a daily
window of ~260,000 events took 2.5 times as long (docs/performance.md, "Gates"). The
whole-table assets stay in :data:`DATASOURCE`, without temporary tables, so a full refresh
never copies a table.

With a file context (the DAGs, the CLI), each call stores its results and builds the Data
Docs once, after its gates, for those results: the site's index lists every stored result
(GX reads each one back), so :func:`prune_results` first removes those older than
``keep_days`` (``RETENTION_GX_RESULTS_KEEP_DAYS``), and GX drops their pages in the same
build. The cost of a gate stage then stays flat over months (docs/quality.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote
from typing import TYPE_CHECKING

from retention import warehouse
from retention.quality.suites import GATES, GateSettings

if TYPE_CHECKING:
    from great_expectations import Checkpoint
    from great_expectations.data_context import AbstractDataContext

log = logging.getLogger(__name__)

DATASOURCE = "warehouse"
WINDOW_DATASOURCE = "warehouse_window"  # the daily windows' query assets: a temporary table per gate
URL_ENV = "GX_WAREHOUSE_URL"
WINDOW_SETTING = "retention.gate_since"
# Failure details carry counts and expectation names only: never sample values, which
# could be personal data.
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0}


class QualityGateFailed(RuntimeError):
    """A gate's expectations failed; the message names each failing expectation."""


@dataclass(frozen=True)
class GateOutcome:
    gate: str
    success: bool
    evaluated: int
    failed: list[str]


def file_context(root: Path):
    """The project's GX file context (``expectations/``); results go to uncommitted/."""
    import great_expectations as gx

    return gx.get_context(mode="file", context_root_dir=str(root))


def configure_checkpoint(
    context: AbstractDataContext, gate_name: str, url: str, settings: GateSettings
) -> Checkpoint:
    """Create or update everything one gate needs in ``context`` and return its checkpoint."""
    import great_expectations as gx

    gate = GATES[gate_name]
    start = settings.window_start() if gate.window_column else None
    os.environ[URL_ENV] = gx_url(url, start)
    # Get-or-create keeps the ids committed in expectations/great_expectations.yml stable.
    source_name = DATASOURCE if start is None else WINDOW_DATASOURCE
    try:
        datasource = context.data_sources.get(source_name)
    except KeyError:
        datasource = context.data_sources.add_sql(
            name=source_name, connection_string="${" + URL_ENV + "}", create_temp_table=start is not None
        )
    asset_name = f"{gate.schema}.{gate.table}"
    if start is not None:
        asset_name += " (window)"
    try:
        asset = datasource.get_asset(asset_name)
    except LookupError:
        if start is not None:
            asset = datasource.add_query_asset(
                name=asset_name,
                query=f'select * from {gate.schema}.{gate.table} where "{gate.window_column}"'
                f" >= current_setting('{WINDOW_SETTING}')::timestamptz",
            )
        else:
            asset = datasource.add_table_asset(
                name=asset_name, table_name=gate.table, schema_name=gate.schema
            )
    try:
        batch = asset.get_batch_definition("whole_table")
    except KeyError:
        batch = asset.add_batch_definition_whole_table("whole_table")

    suite = context.suites.add_or_update(
        gx.ExpectationSuite(name=gate.name, expectations=gate.expectations(settings))
    )
    _drop_unreadable(context, gate.name)
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=gate.name, data=batch, suite=suite)
    )
    # No actions: Data Docs are built once for all the gates of a run (:func:`run_gates`)
    return context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=gate.name,
            validation_definitions=[validation],
            actions=[],
            result_format=RESULT_FORMAT,
        )
    )


def gx_url(url: str, window_start: date | None = None) -> str:
    """The SQLAlchemy URL GX connects with; with a window, its sessions set
    :data:`WINDOW_SETTING` to its first instant (UTC)."""
    sa_url = warehouse.sqlalchemy_url(url)
    if window_start is None:
        return sa_url
    option = quote(f"-c {WINDOW_SETTING}={window_start.isoformat()}T00:00:00+00:00", safe="")
    return f"{sa_url}{'&' if '?' in sa_url else '?'}options={option}"


def _is_file_context(context: AbstractDataContext) -> bool:
    from great_expectations.data_context import FileDataContext

    return isinstance(context, FileDataContext)


def outcome_of(gate_name: str, result) -> GateOutcome:
    """Summarise a CheckpointResult without any row values."""
    failed: list[str] = []
    evaluated = 0
    for run in result.run_results.values():
        for r in run.results:
            evaluated += 1
            if not r.success:
                cfg = r.expectation_config
                column = cfg.kwargs.get("column") or cfg.kwargs.get("column_list") or ""
                label = f"{cfg.type}({column})" if column else (cfg.description or cfg.type)
                error = _raised(r.exception_info)
                failed.append(f"{label} [not evaluated: {error}]" if error else label)
    return GateOutcome(gate_name, bool(result.success), evaluated, failed)


def _raised(exception_info) -> str | None:
    """First line of the error that kept an expectation from being evaluated, if any.

    GX reports it flat or keyed by metric. The message is the database's or GX's own
    (e.g. a query error), not row values."""
    if not exception_info:
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, dict) and info.get("raised_exception"):
            return str(info.get("exception_message") or "error").strip().splitlines()[0]
    return None


def _drop_unreadable(context: AbstractDataContext, name: str) -> None:
    """Remove the stored checkpoint and validation definition of ``name`` if their references
    no longer resolve, so they are generated again: e.g. written before the daily windows'
    assets moved to :data:`WINDOW_DATASOURCE`. GX reads a stored one back before overwriting
    it, and would fail the gate on a reference to an asset that is not there any more."""
    for store in (context.checkpoint_store, context.validation_definition_store):
        key = store.get_key(name=name, id=None)
        if not store.has_key(key=key):
            continue
        try:
            store.get(key=key)
        except ValueError as exc:  # pydantic's ValidationError: a reference that does not resolve
            log.info("gate %s: its stored %s no longer resolves (%s); generating it again",
                     name, type(store).__name__, str(exc).splitlines()[-1].strip())
            store.remove_key(key=key)


def prune_results(context: AbstractDataContext, keep_days: int, now: datetime | None = None) -> int:
    """Remove the stored validation results whose run is older than ``keep_days`` days
    (GX's own run time of each result); 0 keeps every result. Returns how many were removed.

    Their Data Docs pages go at the next build (GX removes pages whose result is gone)."""
    if keep_days <= 0:
        return 0
    store = context.validation_results_store
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=keep_days)
    removed = 0
    for key in store.list_keys():
        run_time = key.run_id.run_time
        if run_time.tzinfo is None:
            run_time = run_time.replace(tzinfo=timezone.utc)
        if run_time < cutoff:
            store.remove_key(key)
            removed += 1
    if removed:
        log.info("removed %d stored validation results older than %d days", removed, keep_days)
    return removed


def run_gates(
    url: str,
    gate_names: Iterable[str],
    settings: GateSettings,
    *,
    context: AbstractDataContext | None = None,
    raise_on_failure: bool = True,
    keep_days: int = 0,
) -> list[GateOutcome]:
    """Validate each gate's table; raise :class:`QualityGateFailed` listing every failure.

    With a file context, results older than ``keep_days`` (0: none) are removed before the
    Data Docs are built for this call's results (:func:`prune_results`)."""
    import great_expectations as gx
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    if context is None:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    outcomes, validated = [], []
    for name in gate_names:
        checkpoint = configure_checkpoint(context, name, url, settings)
        result = checkpoint.run()
        outcome = outcome_of(name, result)
        log.info(
            "gate %s: %s (%d expectations, %d failed)",
            name, "passed" if outcome.success else "FAILED", outcome.evaluated, len(outcome.failed),
        )
        outcomes.append(outcome)
        validated += [*result.run_results, ExpectationSuiteIdentifier(name=name)]
    if validated and _is_file_context(context):
        # Once per call, not once per gate (GX's UpdateDataDocsAction): each build renders the
        # site's index from every stored result, so the old ones are removed first
        prune_results(context, keep_days)
        context.build_data_docs(resource_identifiers=validated)
    failures = [o for o in outcomes if not o.success]
    if failures and raise_on_failure:
        detail = "; ".join(f"{o.gate}: {', '.join(o.failed)}" for o in failures)
        raise QualityGateFailed(f"quality gate failed: {detail}")
    return outcomes
