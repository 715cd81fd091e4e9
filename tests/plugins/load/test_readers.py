"""Streaming readers and run windows, without a database."""

from __future__ import annotations

import gzip
import hashlib
import io
from datetime import UTC, date, datetime

from retention.load.landing import interval_days
from retention.load.readers import Digest, iter_lines


def _read(data: bytes) -> tuple[list, Digest]:
    digest = Digest()
    return list(iter_lines(io.BytesIO(data), digest, gzipped=True)), digest


def test_multi_member_gzip_reads_every_member_and_hashes_the_stored_bytes():
    data = gzip.compress(b'{"a":1}\n{"a":2}\n') + gzip.compress(b'\n{"a":3}')
    records, digest = _read(data)
    assert [(r.line, r.data, r.byte_offset) for r in records] == [
        (1, b'{"a":1}', 0), (2, b'{"a":2}', 8), (4, b'{"a":3}', 17),  # line 3 is blank
    ]
    assert digest.sha256 == hashlib.sha256(data).hexdigest() and digest.size == len(data)


def test_truncated_member_keeps_the_readable_lines_and_reports_the_first_lost_one():
    body = b"".join(b'{"n":%d}\n' % i for i in range(2000))
    cut = gzip.compress(body)[:-2000]
    records, _ = _read(cut)
    *good, damage = records
    assert [r.error for r in good] == [None] * len(good) and 0 < len(good) < 2000
    assert (damage.error, damage.line) == ("truncated_gzip", len(good) + 1)
    assert damage.byte_offset == sum(len(r.data) + 1 for r in good)
    assert f"compressed byte {len(cut)}" in damage.detail
    assert body.startswith(b"".join(r.data + b"\n" for r in good) + damage.preview)


def test_corrupt_gzip_and_empty_file_are_flagged_not_raised():
    data = gzip.compress(b'{"a":1}\n') + b"not gzip at all"
    records, _ = _read(data)
    assert [(r.line, r.error) for r in records] == [(1, None), (2, "truncated_gzip")]
    assert [r.error for r in _read(b"")[0]] == ["truncated_gzip"]


def test_interval_days_cover_the_interval_plus_lookback():
    midnight = datetime(2024, 11, 19, tzinfo=UTC)
    # Airflow 3 cron runs: an instant interval at midnight means the day that just ended.
    assert interval_days(midnight, midnight, 2) == (date(2024, 11, 16), date(2024, 11, 19))
    # A classic data interval [11-18, 11-19).
    assert interval_days(datetime(2024, 11, 18, tzinfo=UTC), midnight, 0) == (date(2024, 11, 18), date(2024, 11, 19))
    # A mid-day end includes that day.
    assert interval_days(midnight, datetime(2024, 11, 19, 6, tzinfo=UTC), 0) == (date(2024, 11, 19), date(2024, 11, 20))
