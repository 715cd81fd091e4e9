"""File ingestion: landed product events, NPS responses and support tickets -> ``raw.*``.

* :mod:`retention.load.landing` finds the files under a landing location (local path or
  object-storage URL, through Airflow's ``ObjectStoragePath``).
* :mod:`retention.load.readers` streams records out of gzip/plain JSON Lines, CSV and
  Parquet files without holding a file in memory.
* :mod:`retention.load.records` validates records and turns them into rows (or
  quarantine reasons).
* :mod:`retention.load.loader` loads each file in one transaction with its manifest entry
  and quarantine rows; a file that cannot be loaded is recorded and reported, not fatal.
* :mod:`retention.load.events` streams Segment event files straight into ``raw.events``
  (one pass, COPY text built in Python) and dedups them through ``raw.event_ids``.
* :mod:`retention.load.exports` loads NPS / support exports through a staging table.
* :mod:`retention.load.plan` is what one task of the ``ingest_events`` DAG runs.
* :mod:`retention.load.manifest` holds the bookkeeping both share (counts, previews).
* :mod:`retention.load.schema` owns the DDL of the raw tables it writes (and their month partitions).

``retention.load.stripe`` (the Stripe loader) lives here too but is independent.
"""
