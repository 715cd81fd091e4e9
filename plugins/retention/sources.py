"""What the pipeline runs on, decided by one setting: where product events come from.

``RETENTION_EVENTS_SOURCE`` (:mod:`retention.config`; dbt reads the same variable as its
var ``events_source``) is one of:

* ``files`` (default): ``ingest_events`` loads landed event, NPS and support files into
  ``raw.*``; ``transform_dbt`` waits for every raw Asset (Stripe's and the files'),
  builds the whole project and gates ``raw.events``; ``monitor_freshness`` watches the
  load manifest and the Stripe extraction.
* ``warehouse``: a Segment/RudderStack warehouse destination already writes the events
  (``tracks``, ``identifies``, ``groups`` in ``RETENTION_EVENTS_WAREHOUSE_SCHEMA``), read
  in place by dbt. Nothing lands them, so ``transform_dbt`` waits for Stripe's Assets
  only, builds the whole project, and gates the destination's ``tracks`` table instead
  of ``raw.events``; ``monitor_freshness`` watches ``tracks``' newest ``received_at``.
  ``ingest_events`` loads NPS and support files only (when a team has them); the next
  build picks them up.
* ``none``: billing only. ``transform_dbt`` waits for Stripe's Assets, builds dbt's
  ``finance`` selector (dbt_project/selectors.yml), gates the Stripe tables, and has no
  marts gates (those read the product marts, not built); ``monitor_freshness`` watches
  Stripe only.

In every mode ``ingest_stripe`` creates the raw tables (empty where nothing lands them),
so the product staging models of warehouse mode find ``raw.nps_responses`` and
``raw.support_tickets`` even when ``ingest_events`` never ran.

Reading the mode is cheap (an environment variable), so DAG files call it at parse time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from retention.config import settings

STRIPE_TABLES = ("stripe_customers", "stripe_products", "stripe_prices", "stripe_coupons", "stripe_discounts",
                 "stripe_subscriptions", "stripe_invoices")
# The raw tables ingest_events loads, per file source.
FILE_SOURCE_TABLES = {
    "events": ("events", "identifies", "groups"),
    "nps": ("nps_responses",),
    "support": ("support_tickets",),
}
FINANCE_SELECTOR = "finance"  # dbt_project/selectors.yml


@dataclass(frozen=True)
class SourceMode:
    """What each DAG does for one value of ``RETENTION_EVENTS_SOURCE``."""

    events_source: str  # files | warehouse | none
    events_warehouse_schema: str = "segment"

    @property
    def file_sources(self) -> tuple[str, ...]:
        """The sources ``ingest_events`` loads from landed files."""
        return {"files": ("events", "nps", "support"), "warehouse": ("nps", "support"), "none": ()}[self.events_source]

    @property
    def awaited_tables(self) -> tuple[str, ...]:
        """The raw tables whose Assets ``transform_dbt`` waits for: a day is built once every
        one of them has landed it. Outside files mode only Stripe's: nothing lands the
        events, and NPS/support files are optional there."""
        if self.events_source == "files":
            return STRIPE_TABLES + tuple(t for tables in FILE_SOURCE_TABLES.values() for t in tables)
        return STRIPE_TABLES

    def awaited_assets(self) -> list:
        from retention.airflow_defaults import RAW_ASSETS

        return [RAW_ASSETS[table] for table in self.awaited_tables]

    @property
    def dbt_selector(self) -> str | None:
        """The dbt selector ``transform_dbt`` builds (None: the whole project)."""
        return FINANCE_SELECTOR if self.events_source == "none" else None

    def gates(self, stage: str) -> tuple[str, ...]:
        """The quality gates of ``stage`` (``raw``, ``marts``) in this mode."""
        from retention.quality.suites import MARTS_GATES, RAW_GATES, WAREHOUSE_EVENTS_GATE

        if stage == "marts":
            return () if self.events_source == "none" else MARTS_GATES
        if stage != "raw":
            raise ValueError(f"unknown gate stage {stage!r}; choose raw or marts")
        if self.events_source == "files":
            return RAW_GATES
        if self.events_source == "warehouse":
            return tuple(WAREHOUSE_EVENTS_GATE if g == "raw_events" else g for g in RAW_GATES)
        return tuple(g for g in RAW_GATES if g.startswith("raw_stripe"))

    @property
    def freshness_sources(self) -> tuple[str, ...]:
        """The sources ``monitor_freshness`` checks (:mod:`retention.quality.freshness`)."""
        return ("stripe",) if self.events_source == "none" else ("events", "stripe")

    def describe(self) -> str:
        where = {"files": "landed files (ingest_events)",
                 "warehouse": f"the warehouse destination's tables in schema {self.events_warehouse_schema}",
                 "none": "none: billing only (dbt selector finance)"}[self.events_source]
        return f"events source: {where}"


def mode(environ: Mapping[str, str] | None = None) -> SourceMode:
    """The mode the environment sets (``RETENTION_EVENTS_SOURCE``; an unknown value raises)."""
    s = settings(dict(environ) if environ is not None else None)
    return SourceMode(s.events_source, s.events_warehouse_schema)
