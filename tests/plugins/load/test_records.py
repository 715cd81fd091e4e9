"""The fast track decoder (:func:`records.track_row`) against the full validation path.

``track_row`` must accept exactly the track messages :func:`records.segment_row`
accepts, with the same row, and hand every other line back (None) so the full path
names its problem. Each case below is one JSON line; the two paths are run on it.
"""

from __future__ import annotations

import json

import orjson
import pytest
from landed_files import group, identify, track

from retention.load.records import Reject, Rules, decode_json, segment_row, track_row

RULES = Rules()


def full_path(line: bytes) -> tuple | str:
    """What the full path makes of a line: its row, or the quarantine reason."""
    try:
        return segment_row(decode_json(line), RULES)
    except Reject as reject:
        return reject.reason


def line_of(msg: dict, **changes: object) -> bytes:
    msg = dict(msg)
    for key, value in changes.items():
        if value is _DROP:
            msg.pop(key, None)
        else:
            msg[key] = value
    return json.dumps(msg).encode()


_DROP = object()
BASE = track("m1", properties={"plan": "growth", "seats": 12})
VALID = {
    "plain": line_of(BASE),
    "compact, keys sorted": orjson.dumps(BASE, option=orjson.OPT_SORT_KEYS),
    "tabs and carriage return between tokens": json.dumps(BASE).replace(", ", ",\t").encode() + b"\r",
    "non-ASCII text": line_of(BASE, properties={"city": "Zürich", "emoji": "😀"}, userId="usr_é"),
    "escapes": line_of(BASE, properties={"quote": 'a"b', "tab": "\t", "slash": "c\\d"}),
    "anonymous only": line_of(BASE, userId=_DROP, anonymousId="anon_1"),
    "empty userId with anonymousId": line_of(BASE, userId="", anonymousId="anon_1"),
    "null anonymousId": line_of(BASE, anonymousId=None),
    "offset timestamps": line_of(BASE, timestamp="2024-11-17T12:00:00+02:00", receivedAt="2024-11-17T10:00:01Z"),
    "extra fields": line_of(BASE, sentAt="2024-11-17T10:00:00.500Z", version=2, integrations={"All": True}),
    "duplicate key, last wins": line_of(BASE)[:-1] + b', "event": "Signed In"}',
    "big integer property": line_of(BASE)[:-1].replace(b'"seats": 12', b'"seats": 123456789012345678901234567890') + b"}",
    "nested properties": line_of(BASE, properties={"a": {"b": [1, 2, {"c": None}]}}),
    "empty properties": line_of(BASE, properties={}),
}
INVALID = {
    "not JSON": b'{"type": "track", "messageId": ',
    "not an object": b'["track"]',
    "bad UTF-8 in a skipped field": line_of(BASE)[:-1] + b', "sentAt": "caf\xe9"}',
    "bad UTF-8 in properties": line_of(BASE)[:-1].replace(b'"growth"', b'"gr\xffwth"') + b"}",
    "missing messageId": line_of(BASE, messageId=_DROP),
    "empty messageId": line_of(BASE, messageId=""),
    "numeric messageId": line_of(BASE, messageId=17),
    "missing user": line_of(BASE, userId=_DROP),
    "numeric userId": line_of(BASE, userId=5),
    "missing event": line_of(BASE, event=_DROP),
    "empty event": line_of(BASE, event=""),
    "properties a string": line_of(BASE, properties="{}"),
    "properties null": line_of(BASE, properties=None),
    "missing properties": line_of(BASE, properties=_DROP),
    "context without groupId": line_of(BASE, context={"library": {"name": "x"}}),
    "numeric groupId": line_of(BASE, context={"groupId": 7}),
    "empty groupId": line_of(BASE, context={"groupId": ""}),
    "context a list": line_of(BASE, context=["acc"]),
    "timestamp a number": line_of(BASE, timestamp=1731837600),
    "timestamp not ISO": line_of(BASE, timestamp="yesterday"),
    "timestamp in the future": line_of(BASE, timestamp="2999-01-01T00:00:00Z"),
    "timestamp before 2000": line_of(BASE, timestamp="1999-12-31T23:59:59Z"),
    "timestamp 47 days before receivedAt": line_of(BASE, timestamp="2024-10-01T00:00:00Z"),
    "missing receivedAt (the full path falls back)": line_of(BASE, receivedAt=_DROP),
    "a messageId too long for an index entry": line_of(BASE, messageId="m" * 3000),
    "unknown type": line_of(BASE, type="alias"),
}


@pytest.mark.parametrize("name", VALID)
def test_valid_track_lines_take_the_fast_path_with_the_full_paths_row(name):
    line = VALID[name]
    fast, full = track_row(line, RULES), full_path(line)
    assert isinstance(full, tuple), full
    assert fast is not None
    assert fast[:9] == full[:9]
    # properties / context: JSON text as it came vs serialised again; the same jsonb.
    assert [orjson.loads(text) for text in fast[9:11]] == [orjson.loads(text) for text in full[9:11]]
    assert fast[11] is full[11] is None  # receivedAt itself


@pytest.mark.parametrize("name", INVALID)
def test_every_other_track_line_is_left_to_the_full_path(name):
    line = INVALID[name]
    assert track_row(line, RULES) is None
    assert isinstance(full_path(line), (str, tuple))  # the full path names a reason (or falls back)


def test_identify_and_group_go_the_full_path():
    for msg in (identify("i1"), group("g1")):
        line = json.dumps(msg).encode()
        assert track_row(line, RULES) is None
        assert full_path(line)[1] == msg["type"]


def test_timestamps_keep_their_text_and_offsetless_ones_are_read_as_utc():
    fast = track_row(line_of(BASE, timestamp="2024-11-17T12:00:00.250+02:00", receivedAt="2024-11-17T10:00:01Z"), RULES)
    assert fast is not None and fast[7:9] == ("2024-11-17T12:00:00.250+02:00", "2024-11-17T10:00:01Z")
    naive = line_of(BASE, timestamp="2024-11-17T10:00:00", receivedAt="2024-11-17T10:00:01")
    assert track_row(naive, RULES) is None  # the full path spells the offset out
    assert full_path(naive)[7:9] == ("2024-11-17T10:00:00+00:00", "2024-11-17T10:00:01+00:00")
