"""File ingestion: landed product events, NPS responses and support tickets -> ``raw.*``.

* :mod:`retention.load.landing` finds the files under a landing location (local path or
  object-storage URL, through Airflow's ``ObjectStoragePath``).
* :mod:`retention.load.readers` streams records out of gzip/plain JSON Lines, CSV and
  Parquet files without holding a file in memory.
* :mod:`retention.load.records` validates records and turns them into rows (or
  quarantine reasons).
* :mod:`retention.load.loader` COPYs each file in one transaction with its manifest entry
  and quarantine rows.
* :mod:`retention.load.schema` owns the DDL of the raw tables it writes.

``retention.load.stripe`` (the Stripe loader) lives here too but is independent.
"""
