"""Record validation: one raw record in, one row for the staging table or a :class:`Reject`.

Quarantine reasons (the only values of ``raw.quarantine.reason``):

``invalid_utf8``       bytes that are not UTF-8, a NUL character (Postgres text cannot hold
                       it) or a lone UTF-16 surrogate escape (``"\\ud800"``)
``malformed_json``     the line is not a JSON object (or a CSV cell meant as JSON is not JSON)
``truncated_gzip``     the gzip stream ended early or is corrupt (set by the reader)
``missing_field``      a required field is absent or empty
``wrong_type``         a field has the wrong JSON type, or a value cannot be parsed
                       (timestamp text, integer score), or a CSV row has extra fields
``value_out_of_range`` a value Postgres cannot store: a key (``messageId``, the account,
                       the event name, ``response_id``, ``ticket_id``) longer than
                       ``Rules.max_key_bytes`` (an index entry holds at most ~2.7 kB), or a
                       number outside what a double holds (``1e400000``; ``jsonb`` numbers
                       overflow a little further)
``timestamp_out_of_range``  before ``Rules.min_timestamp`` (2000-01-01) or later than
                       the load time + ``Rules.max_future`` (1 day); for Segment messages
                       also more than 1 day after or 30 days before ``receivedAt`` (the
                       Segment-side clock: a device clock in the future, or an event
                       dated before its account could exist)
``unknown_event``      a Segment ``type`` other than track / page / screen / identify / group

Which track events count for activation and health is not the loader's business: every
well-formed ``track`` loads whatever its name, and the dbt seed
``product_event_catalogue`` decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson

_fromisoformat = datetime.fromisoformat
_dumps = orjson.dumps

REASONS = (
    "malformed_json",
    "invalid_utf8",
    "truncated_gzip",
    "missing_field",
    "wrong_type",
    "value_out_of_range",
    "timestamp_out_of_range",
    "unknown_event",
)

MESSAGE_TYPES = ("track", "page", "screen", "identify", "group")
# receivedAt is set by Segment's servers; a message sent straight to storage may lack it.
RECEIVED_FALLBACKS = ("sentAt", "timestamp")
# timestamp is optional in the Segment spec ("defaulted to the current time by the Segment
# Tracking API", i.e. when it was received).
TIMESTAMP_FALLBACKS = ("receivedAt", "sentAt")
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")  # an odd run of backslashes, then u0000


class Reject(Exception):
    """A record that goes to ``raw.quarantine``: ``reason`` from :data:`REASONS` + a detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Rules:
    """What a valid record is. ``now`` is fixed once per run so a run is consistent."""

    min_timestamp: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_future: timedelta = timedelta(days=1)
    max_ahead_of_received: timedelta = timedelta(days=1)
    max_behind_received: timedelta = timedelta(days=30)
    max_key_bytes: int = 1024  # UTF-8 bytes of an indexed key (messageId, account, event, ids)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @cached_property
    def max_timestamp(self) -> datetime:
        return self.now + self.max_future

    def key(self, value: str, name: str) -> str:
        """``value`` unless it is too long for an index entry (:class:`Reject`)."""
        if len(value) > self.max_key_bytes // 4 and len(value.encode("utf-8", "surrogatepass")) > self.max_key_bytes:
            raise Reject("value_out_of_range", f"{name} is longer than {self.max_key_bytes} bytes")
        return value


def has_nul(data: bytes) -> bool:
    """Whether a JSON line holds a NUL: a raw byte or a ``\\u0000`` escape (not the six
    characters ``\\u0000`` written as ``"\\\\u0000"``)."""
    return b"\x00" in data or (b"\\u0000" in data and _NUL_ESCAPE.search(data) is not None)


def decode_json(data: bytes) -> Any:
    """Parse one JSON line, telling bad UTF-8 apart from bad JSON."""
    if has_nul(data):
        raise Reject("invalid_utf8", "NUL character, which Postgres text cannot store")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as utf:
            raise Reject("invalid_utf8", f"not UTF-8 at byte {utf.start}") from None
        message = str(exc)
        if "infinity" in message:
            raise Reject("value_out_of_range", f"a number too large to store: {message}") from None
        if "surrogate" in message:
            raise Reject("invalid_utf8", f"a lone UTF-16 surrogate escape: {message}") from None
        raise Reject("malformed_json", message) from None


def _text(obj: dict[str, Any] | None, key: str, *, required: bool, name: str | None = None) -> str | None:
    value = obj.get(key) if obj is not None else None
    if value is None or value == "":
        if required:
            raise Reject("missing_field", f"{name or key} is missing")
        return None
    if type(value) is not str:
        raise Reject("wrong_type", f"{name or key} must be a string, got {type(value).__name__}")
    return value


def _timestamp(obj: dict[str, Any], key: str, rules: Rules, *, required: bool) -> datetime | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise Reject("missing_field", f"{key} is missing")
        return None
    if isinstance(value, datetime):
        ts = value
    elif type(value) is str:
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise Reject("wrong_type", f"{key} is not an ISO-8601 timestamp") from None
    else:
        raise Reject("wrong_type", f"{key} must be an ISO-8601 string, got {type(value).__name__}")
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    if not rules.min_timestamp <= ts <= rules.max_timestamp:
        raise Reject("timestamp_out_of_range", f"{key} {value} outside [{rules.min_timestamp:%Y-%m-%d}, load time + {rules.max_future}]")
    return ts


def _object(obj: dict[str, Any], key: str, *, required: bool) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise Reject("missing_field", f"{key} is missing")
        return None
    if type(value) is not dict:
        raise Reject("wrong_type", f"{key} must be an object, got {type(value).__name__}")
    return value


# Timestamp text Postgres parses exactly as ``datetime.fromisoformat`` did (RFC 3339 with
# an explicit offset); anything else is sent in ``datetime.isoformat()`` form instead.
_PG_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-](?:0[0-9]|1[0-5]):[0-9]{2})"
)


def timestamp_text(value: Any, ts: datetime) -> str:
    """``ts`` as timestamptz input text: the original string when it is plain RFC 3339.

    ``value`` is what ``ts`` was parsed from. First the common Segment shape
    ``YYYY-MM-DDTHH:MM:SS.fffZ`` by position (a parsed 24-character value with these
    separators can be nothing else), then a full RFC 3339 match with an offset Postgres
    accepts (at most 15:59), else ``ts`` in UTC.
    """
    if type(value) is str:
        if len(value) == 24 and value[23] == "Z" and value[19] == "." and value[10] == "T" and value[7] == "-":
            return value
        if _PG_TIMESTAMP.fullmatch(value):
            return value
    return ts.astimezone(UTC).isoformat()


def _valid_times(value: Any, received_value: Any, rules: Rules) -> tuple[datetime, datetime] | None:
    """``(timestamp, receivedAt)`` when both are ISO strings with offsets inside the
    bounds and the timestamp lies within its window around receivedAt; else None."""
    try:
        received_at, timestamp = _fromisoformat(received_value), _fromisoformat(value)
    except (TypeError, ValueError):
        return None
    lo, hi = rules.min_timestamp, rules.max_timestamp
    if (
        received_at.tzinfo is None or timestamp.tzinfo is None
        or not (lo <= received_at <= hi and lo <= timestamp <= hi)
        or not -rules.max_behind_received <= timestamp - received_at <= rules.max_ahead_of_received
    ):
        return None
    return timestamp, received_at


def _segment_times(msg: dict[str, Any], rules: Rules) -> tuple[datetime, str, str, str | None]:
    """``(timestamp, timestamp text, received text, received from)`` of a Segment message.

    ``receivedAt`` is set by Segment's servers; without it the first of ``sentAt`` and
    ``timestamp`` stands in, and ``received from`` names it (None: ``receivedAt``). The
    common case (:func:`_valid_times`) takes one parse each; anything else goes through
    :func:`_timestamp`, which names the problem.
    """
    received_key, received_from = "receivedAt", None
    if msg.get("receivedAt") in (None, ""):
        received_key = received_from = next((k for k in RECEIVED_FALLBACKS if msg.get(k) not in (None, "")), "timestamp")
    time_key = "timestamp"
    if msg.get("timestamp") in (None, ""):  # the Tracking API's default: the time it was received
        time_key = next((k for k in TIMESTAMP_FALLBACKS if msg.get(k) not in (None, "")), "timestamp")
    received_value, value = msg.get(received_key), msg.get(time_key)
    times = _valid_times(value, received_value, rules)
    if times is None:
        received_at = _timestamp(msg, received_key, rules, required=True)
        timestamp = _timestamp(msg, time_key, rules, required=True)
        if not -rules.max_behind_received <= timestamp - received_at <= rules.max_ahead_of_received:
            raise Reject(
                "timestamp_out_of_range",
                f"timestamp {value} is not within {rules.max_behind_received.days} days before "
                f"to {rules.max_ahead_of_received.days} day after {received_key} {received_value}",
            )
    else:
        timestamp, received_at = times
    return timestamp, timestamp_text(value, timestamp), timestamp_text(received_value, received_at), received_from


def segment_row(msg: Any, rules: Rules) -> tuple[Any, ...]:
    """Validate a Segment message (the Segment spec); return its row or raise :class:`Reject`.

    Required, every type: ``type``, ``messageId`` (set by every Segment library and
    server; the dedup key), ``userId`` or ``anonymousId``. ``track``: ``event`` (any
    name) and the account ``context.groupId``. ``identify``: the account
    ``context.groupId``. ``group``: ``groupId`` (the account). Optional, as in the
    Segment spec: ``timestamp`` (absent: ``receivedAt``, else ``sentAt``, as Segment's
    Tracking API defaults it), ``receivedAt`` and ``sentAt`` (:func:`_segment_times`),
    ``context`` of page / screen / group, ``properties`` (track, page, screen) and
    ``traits`` (identify, group), stored as ``{}`` when absent, ``name`` (page,
    screen), the account of page / screen. The account of track / identify is this
    project's rule, not the spec's: a B2B event that names no account cannot count.

    Returns ``(message_id, type, event or name, user_id, anonymous_id, account_id,
    timestamp, timestamp_text, received_at_text, properties or traits, context,
    received_from)``, the texts ready for Postgres (body and context as JSON text,
    ``context`` None when absent). The ``_text``/``_object`` helpers raise the precise reason.
    """
    if type(msg) is not dict:
        raise Reject("malformed_json", f"a message must be a JSON object, got {type(msg).__name__}")
    get = msg.get
    kind = get("type")
    if kind not in MESSAGE_TYPES:
        kind = _text(msg, "type", required=True)
        raise Reject("unknown_event", f"message type {kind!r} is not one of {', '.join(MESSAGE_TYPES)}")
    message_id = get("messageId")
    if type(message_id) is not str or not message_id:
        message_id = _text(msg, "messageId", required=True)
    rules.key(message_id, "messageId")
    user_id = get("userId")
    if type(user_id) is not str or not user_id:
        user_id = _text(msg, "userId", required=False)
    anonymous_id = get("anonymousId")
    if type(anonymous_id) is not str or not anonymous_id:
        anonymous_id = _text(msg, "anonymousId", required=False)
    if user_id is None and anonymous_id is None:
        raise Reject("missing_field", "userId and anonymousId are both missing")
    page_like = kind == "page" or kind == "screen"
    context = get("context")
    if type(context) is not dict:
        context = _object(msg, "context", required=kind == "track" or kind == "identify")
    if kind == "group":
        account_id = get("groupId")
        if type(account_id) is not str or not account_id:
            account_id = _text(msg, "groupId", required=True)
    else:
        account_id = context.get("groupId") if context is not None else None
        if type(account_id) is not str or not account_id:
            account_id = _text(context, "groupId", required=not page_like, name="context.groupId")
    if account_id is not None:
        rules.key(account_id, "the account (groupId)")
    event = None
    if kind == "track":
        event = get("event")
        if type(event) is not str or not event:
            event = _text(msg, "event", required=True)
        rules.key(event, "event")
        body = get("properties")
        if type(body) is not dict:
            body = _object(msg, "properties", required=False) or {}
    elif page_like:
        event = _text(msg, "name", required=False)
        body = _object(msg, "properties", required=False) or {}
    else:
        body = get("traits")
        if type(body) is not dict:
            body = _object(msg, "traits", required=False) or {}
    timestamp, timestamp_str, received_str, received_from = _segment_times(msg, rules)
    return (
        message_id, kind, event, user_id, anonymous_id, account_id, timestamp, timestamp_str, received_str,
        _dumps(body).decode(), None if context is None else _dumps(context).decode(), received_from,
    )


class _Track(msgspec.Struct, gc=False):
    """The fields of a track message that :func:`track_row` reads; others are skipped.
    ``properties`` and ``context`` stay JSON text, exactly as they came."""

    type: str
    messageId: str
    event: str
    timestamp: str
    receivedAt: str
    properties: msgspec.Raw
    context: msgspec.Raw
    userId: str | None = None
    anonymousId: str | None = None


class _Context(msgspec.Struct, gc=False):
    groupId: str


_decode_track = msgspec.json.Decoder(_Track).decode
_decode_context = msgspec.json.Decoder(_Context).decode
_FAST_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_FAST_KEY_CHARS = 256  # longer keys go the full path, which checks their bytes (Rules.key)


def track_row(line: bytes, rules: Rules) -> tuple[Any, ...] | None:
    """The row of one JSON line holding a valid ``track`` message, or None for any other line.

    The hot path of event loading (98% of a Segment log): decoded into a struct in C,
    without building dicts, and ``properties`` / ``context`` are passed on as the JSON
    text they came as, instead of parsed and serialised again. It accepts exactly the
    messages :func:`segment_row` accepts as track, with the same row (Postgres stores
    the same jsonb either way); for everything else (other types, a missing
    ``receivedAt``, long keys, and every line with a problem) it returns None and the
    caller runs :func:`decode_json` + :func:`segment_row`, which name the problem.
    msgspec does not check the UTF-8 of values it skips or keeps raw, so a line that is
    not ASCII is checked first; a NUL escape (``\\u0000``) must have been ruled out by
    the caller. Numbers and escapes inside ``properties`` / ``context`` are not looked
    at: Postgres checks them, and a file it refuses is read again without this path
    (:func:`retention.load.events.load_events`, ``strict``).
    """
    if not line.isascii():
        try:
            line.decode()
        except UnicodeDecodeError:
            return None
    try:
        msg = _decode_track(line)
        account_id = _decode_context(msg.context).groupId
    except _FAST_ERRORS:
        return None
    message_id, event, body = msg.messageId, msg.event, str(msg.properties, "utf-8")
    user_id, anonymous_id = msg.userId or None, msg.anonymousId or None
    if (
        msg.type != "track" or not message_id or not event or not account_id or body[:1] != "{"
        or (user_id is None and anonymous_id is None)
        or len(message_id) > _FAST_KEY_CHARS or len(account_id) > _FAST_KEY_CHARS or len(event) > _FAST_KEY_CHARS
    ):
        return None
    value, received_value = msg.timestamp, msg.receivedAt
    times = _valid_times(value, received_value, rules)
    if times is None:
        return None
    timestamp, received_at = times
    return (
        message_id, "track", event, user_id, anonymous_id, account_id, timestamp, timestamp_text(value, timestamp),
        timestamp_text(received_value, received_at), body, str(msg.context, "utf-8"), None,
    )


JSON_TEXT_COLUMNS = ("properties", "traits", "context")


def flat_to_segment(fields: dict[str, Any]) -> dict[str, Any]:
    """A CSV/Parquet event row -> a Segment message.

    Columns: type, messageId, userId, anonymousId, event, groupId (the account),
    timestamp, receivedAt, properties, traits, context; the last three are JSON objects,
    as JSON text (CSV) or nested structs (Parquet). Empty cells count as absent.
    """
    msg = {k: v for k, v in fields.items() if v is not None and v != ""}
    for key in JSON_TEXT_COLUMNS:
        if type(msg.get(key)) is str:
            try:
                msg[key] = orjson.loads(msg[key])
            except orjson.JSONDecodeError:
                raise Reject("malformed_json", f"{key} is not JSON text") from None
    group = msg.get("groupId")
    if group is not None and msg.get("type") != "group":
        context = msg.setdefault("context", {})
        if type(context) is dict:
            context.setdefault("groupId", group)
    return msg


def nps_row(fields: dict[str, Any], rules: Rules) -> tuple[Any, ...]:
    """response_id, account_id, user_id, email, score, comment, responded_at."""
    score_text = fields.get("score")
    if score_text is None or score_text == "":
        raise Reject("missing_field", "score is missing")
    try:
        score = int(score_text)
    except (TypeError, ValueError):
        raise Reject("wrong_type", "score must be an integer") from None
    if not 0 <= score <= 10:
        raise Reject("wrong_type", f"score {score} is not within 0-10")
    return (
        rules.key(_text(fields, "response_id", required=True), "response_id"),
        _text(fields, "account_id", required=True),
        _text(fields, "user_id", required=False),
        _text(fields, "email", required=False),
        score,
        _text(fields, "comment", required=False),
        _timestamp(fields, "responded_at", rules, required=True),
    )


def support_row(obj: Any, rules: Rules) -> tuple[Any, ...]:
    """ticket_id, account_id, user_id, requester_email, topic, subject, status, created_at, resolved_at."""
    if type(obj) is not dict:
        raise Reject("wrong_type", f"a ticket must be a JSON object, got {type(obj).__name__}")
    return (
        rules.key(_text(obj, "ticket_id", required=True), "ticket_id"),
        _text(obj, "account_id", required=True),
        _text(obj, "user_id", required=False),
        _text(obj, "requester_email", required=False),
        _text(obj, "topic", required=False),
        _text(obj, "subject", required=False),
        _text(obj, "status", required=False),
        _timestamp(obj, "created_at", rules, required=True),
        _timestamp(obj, "resolved_at", rules, required=False),
    )
