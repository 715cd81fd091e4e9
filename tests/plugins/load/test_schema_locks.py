"""ensure_schema on a current schema takes no lock: a load task starting while another
copies must not queue behind it (with the DDL lock held, that wait deadlocked the load
tasks of ingest_events on a fresh warehouse)."""

from __future__ import annotations

from retention import warehouse
from retention.load.schema import ensure_schema


def test_ensure_schema_on_a_current_schema_does_not_wait_for_writers(fresh_db):
    with warehouse.connect(fresh_db, autocommit=True) as conn:
        ensure_schema(conn)
    with warehouse.connect(fresh_db) as writer, warehouse.connect(fresh_db, autocommit=True) as other:
        writer.execute("lock table raw.events, raw.event_ids, raw.nps_responses in row exclusive mode")  # a COPY's locks
        other.execute("set lock_timeout = '1s'")
        ensure_schema(other)  # returns at once, or fails with LockNotAvailable
        writer.rollback()
