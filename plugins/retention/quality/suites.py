"""Great Expectations suites, in code: what must be true at each boundary.

dbt tests cover keys and relationships *inside* the models. These suites cover the
boundaries: raw data as it lands (schema, volume, freshness, distributions, quarantine
share) and the marts right before anything leaves the warehouse.

Each gate validates one warehouse table with SQL pushed down (GX ``add_sql``). A stage
(:data:`STAGES`: ``raw`` before the build, ``marts`` after it) runs its gates one after
the other in one process.

What a gate reads: with ``GateSettings.since`` set (a daily run), the ``raw_events`` gate
checks only the events from that day on (widened to the week its freshness and volume
checks compare: :meth:`GateSettings.window_start`), the newly landed window; ``raw.events``
is partitioned by month, so the other months are not read. Without it (a full refresh,
the CLI by default), every row. The other gates' tables are small (Stripe objects,
quarantined records, the marts the sync reads) and are always read whole.

Importing this module is cheap: GX (seconds to import) is imported only when a suite is
built, so DAG files can read :data:`GATES` at parse time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta


# Keep in sync with docs/DATA_CONTRACTS.md section 2.
RAW_EVENT_COLUMNS = [
    "message_id", "type", "event", "user_id", "anonymous_id", "account_id",
    "timestamp", "received_at", "properties", "context", "_file_id", "_line",
]
# ISO 4217 active currency codes (list one), without funds, metals and test codes: what
# Stripe can bill in. Stripe writes them lower-case.
CURRENCIES = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES
KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRO MRU
MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD
RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STD STN SVC SYP SZL THB TJS TMT TND
TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW
ZWG ZWL
""".lower().split())
VOLUME_TRAILING_DAYS = 7  # the newest day's volume is compared with the 7 days before it
TIERS = ["red", "yellow", "green", "unscored"]  # as the mart's accepted_values test (unscored: no component)


@dataclass(frozen=True)
class GateSettings:
    """Thresholds, overridable per run (DAG params or CLI flags)."""

    as_of: date
    max_staleness_days: int = 3
    max_quarantine_share: float = 0.05
    min_quarantined_rows: int = 10  # a file is judged on its share only from this many rejects
    min_daily_volume_ratio: float = 0.2  # last day vs trailing 7-day average
    # Gates with a window_column read only rows from this day on (a daily run: the first
    # day it processes); None: every row.
    since: date | None = None

    def window_start(self) -> date | None:
        """First day a windowed gate reads: ``since``, widened to the week before the as-of
        date (what the freshness and volume checks compare), so a daily run judges the
        newest day as a check of the whole table would; None: every row."""
        if self.since is None:
            return None
        return min(self.since, self.as_of - timedelta(days=VOLUME_TRAILING_DAYS))


@dataclass(frozen=True)
class Gate:
    name: str
    schema: str
    table: str
    expectations: Callable[[GateSettings], list] = field(repr=False)
    # A timestamp column (the table's partition key): with GateSettings.since, the gate
    # reads only rows from GateSettings.window_start() on (retention.quality.gate).
    window_column: str | None = None


def _daily_volume(s: GateSettings) -> object:
    """Distribution: the newest day's event volume (by ``timestamp``) has not collapsed
    against the trailing week; shared by ``raw.events`` and a destination's ``tracks``."""
    import great_expectations.expectations as gxe

    # GX leaves `{batch}` unaliased in a query with a join, and Postgres before 16
    # rejects an unaliased subquery in FROM: every `{batch}` in such a query is aliased.
    return gxe.UnexpectedRowsExpectation(
        description="newest day's event volume >= ratio x trailing 7-day average",
        unexpected_rows_query=f"""
            with daily as (
                select date_trunc('day', "timestamp") as day, count(*) as n
                from {{batch}} as batch_rows
                where "timestamp" < date '{s.as_of.isoformat()}' + 1
                group by 1
            ), ranked as (
                select day, n, row_number() over (order by day desc) as rk from daily
            )
            select newest.day, newest.n, avg(prior.n) as trailing_avg
            from ranked newest join ranked prior on prior.rk between 2 and 8
            where newest.rk = 1
            group by newest.day, newest.n
            having count(*) >= 3 and newest.n < {s.min_daily_volume_ratio} * avg(prior.n)
        """,
    )


def _raw_events(s: GateSettings) -> list:
    import great_expectations.expectations as gxe

    fresh_after = (s.as_of - timedelta(days=s.max_staleness_days)).isoformat()
    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=RAW_EVENT_COLUMNS, exact_match=False),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="message_id"),
        gxe.ExpectColumnValuesToBeUnique(column="message_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="timestamp"),
        gxe.ExpectColumnValuesToBeInSet(column="type", value_set=["track"]),
        # Freshness: the newest event is recent relative to the run's date.
        gxe.ExpectColumnMaxToBeBetween(column="timestamp", min_value=fresh_after),
        _daily_volume(s),
    ]


# What the warehouse-source staging reads of a Segment/RudderStack destination's `tracks`
# table (docs/events_warehouse_mode.md).
WAREHOUSE_TRACKS_COLUMNS = ["id", "event", "user_id", "anonymous_id", "timestamp", "received_at"]


def _warehouse_tracks(s: GateSettings) -> list:
    """Warehouse mode: the destination's ``tracks`` table, read in place by the staging
    models, checked as ``raw.events`` is in files mode (schema, volume, keys, freshness,
    the newest day's volume against the trailing week)."""
    import great_expectations.expectations as gxe

    fresh_after = (s.as_of - timedelta(days=s.max_staleness_days)).isoformat()
    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=WAREHOUSE_TRACKS_COLUMNS, exact_match=False),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="id"),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToNotBeNull(column="event"),
        gxe.ExpectColumnValuesToNotBeNull(column="timestamp"),
        gxe.ExpectColumnMaxToBeBetween(column="timestamp", min_value=fresh_after),
        _daily_volume(s),
    ]


def _raw_quarantine(s: GateSettings) -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(column="reason"),
        # Bad input never blocks good data, but a flood of it stops the pipeline.
        gxe.UnexpectedRowsExpectation(
            description=(
                f"share of quarantined records per file <= {s.max_quarantine_share:.0%}"
                f" (files with {s.min_quarantined_rows}+ rejects)"
            ),
            unexpected_rows_query=f"""
                select m.uri, m.rows_loaded, m.rows_quarantined
                from raw.load_manifest m
                where m.rows_quarantined >= {s.min_quarantined_rows}
                  and m.rows_quarantined > {s.max_quarantine_share}
                      * greatest(m.rows_loaded + m.rows_quarantined, 1)
                  and m.file_id in (select file_id from {{batch}})
            """,
        ),
        # A landed file that could not be loaded (unreadable, or refused) is an error until
        # it loads: docs/ingestion.md, "What fails a run".
        gxe.UnexpectedRowsExpectation(
            description="no landed file in an error state in raw.load_manifest (status failed: see its error)",
            unexpected_rows_query="""
                select m.uri, m.status, m.error
                from raw.load_manifest m
                where m.status in ('failed', 'changed_after_load')
                  and not exists (select 1 from {batch} where false)
            """,
        ),
    ]


_LIVE = "not coalesce((data->>'deleted')::boolean, false)"  # deleted objects are kept, marked


def _unknown_currency(field: str = "data->>'currency'") -> str:
    return f"coalesce({field}, '') not in ({', '.join(repr(c) for c in sorted(CURRENCIES))})"


def _raw_stripe_invoices(s: GateSettings) -> list:
    """Billing values: the invoices table, plus the subscriptions and prices it is billed from."""
    import great_expectations.expectations as gxe

    # GX requires `{batch}` in every query: the sibling-table rules add `{batch}` rows
    # filtered to none, so they read only raw.stripe_subscriptions / raw.stripe_prices.
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="id"),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToNotBeNull(column="data"),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.UnexpectedRowsExpectation(
            description="invoices: amount_due, amount_paid, amount_remaining >= 0 and a known currency",
            unexpected_rows_query=f"""
                select id from {{batch}}
                where {_LIVE} and (
                    (data->>'amount_due')::numeric < 0 or (data->>'amount_paid')::numeric < 0
                    or (data->>'amount_remaining')::numeric < 0 or {_unknown_currency()})
            """,
        ),
        gxe.UnexpectedRowsExpectation(
            description="subscriptions: every one has a customer and a known currency",
            unexpected_rows_query=f"""
                select id from raw.stripe_subscriptions
                where {_LIVE} and (coalesce(data->>'customer', '') = '' or {_unknown_currency()})
                union all select id from {{batch}} where false
            """,
        ),
        gxe.UnexpectedRowsExpectation(
            description="prices: unit_amount >= 0 and a known currency",
            unexpected_rows_query=f"""
                select id from raw.stripe_prices
                where {_LIVE} and ((data->>'unit_amount')::numeric < 0 or {_unknown_currency()})
                union all select id from {{batch}} where false
            """,
        ),
    ]


def _segment_members(s: GateSettings) -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(column="segment_key"),
        gxe.ExpectColumnValuesToNotBeNull(column="account_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="reason"),
        gxe.ExpectColumnValuesToBeInSet(column="tier", value_set=TIERS),
        gxe.ExpectColumnValuesToBeBetween(column="health_score", min_value=0, max_value=100),
        gxe.ExpectColumnValuesToBeBetween(column="mrr", min_value=0),
        gxe.ExpectColumnValuesToMatchRegex(column="email", regex=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    ]


def _account_health_daily(s: GateSettings) -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeBetween(column="health_score", min_value=0, max_value=100),
        gxe.ExpectColumnValuesToBeInSet(column="tier", value_set=TIERS),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["account_id", "date"]),
    ]


WAREHOUSE_EVENTS_GATE = "warehouse_tracks"


def _warehouse_schema() -> str:
    from retention.config import settings

    return settings().events_warehouse_schema


GATES: dict[str, Gate] = {
    g.name: g
    for g in (
        Gate("raw_events", "raw", "events", _raw_events, window_column="timestamp"),
        # warehouse mode (retention.sources): in place of raw_events
        Gate(WAREHOUSE_EVENTS_GATE, _warehouse_schema(), "tracks", _warehouse_tracks, window_column="timestamp"),
        Gate("raw_quarantine", "raw", "quarantine", _raw_quarantine),
        Gate("raw_stripe_invoices", "raw", "stripe_invoices", _raw_stripe_invoices),
        Gate("marts_segment_members", "marts", "segment_members", _segment_members),
        Gate("marts_account_health_daily", "marts", "account_health_daily", _account_health_daily),
    )
}
# The gates of files mode; retention.sources.SourceMode.gates gives each mode's.
RAW_GATES = ("raw_events", "raw_quarantine", "raw_stripe_invoices")
MARTS_GATES = ("marts_account_health_daily", "marts_segment_members")
STAGES = ("raw", "marts")


def stage_gates(stage: str) -> tuple[str, ...]:
    """The gates of ``stage`` in the configured mode (``RETENTION_EVENTS_SOURCE``)."""
    from retention.sources import mode

    return mode().gates(stage)
