"""Intercom destination: contacts with their attributes, the account as a company, a tag per segment.

For each batch (at most 500 records; searched and bulk-tagged 50 at a time):

1. **Find** each contact: the id cached in the sync state (``Record.destination_id``)
   first; else a search by ``external_id`` (the sync key), then by email; else **create**
   it with its attributes. Search lags creation by minutes, so a create may answer 409
   "already exists with id=...": that id is used. A contact found by email or named by a
   409 is used only when its ``external_id`` is empty or this key (one ``GET`` to check):
   a contact of another key (two accounts sharing an email) is never taken over; that row
   fails with ``external_id_mismatch``. A rerun never searches again.
2. **Update** attributes (``PUT /contacts/{id}``) of contacts that were not just created.
   Custom attributes that do not exist yet are created first (``POST /data_attributes``,
   their type taken from the value).
3. **Company**: when the payload maps ``company_id`` (and optionally ``company_name``),
   the account is upserted as a company and the contact attached to it.
4. **Membership** (mode ``membership``): one tag per segment, named
   ``<tag_prefix><segment>`` (default prefix ``"<sync name>: "``), applied in bulk
   (``POST /tags {name, users}``; one call per segment per 50 contacts, and one call per
   contact only if Intercom refuses the bulk call). On exit, and on leaving one of several
   segments, only the tags of the segments this sync confirmed for that key
   (``Record.previous_segments``) are removed, so a tag someone else added, or a contact
   this sync never tagged, is never touched.

Every call is safe to repeat (updates, tags, and creates that answer 409 with the id), so
the adapter is idempotent and the hook retries 5xx and timeouts. Each record gets its own
result: a failed step fails only the rows it concerns, and the error names the step, the
status and Intercom's error code, never a value.

Options (``destination.options``): ``key_field`` (``external_id`` or ``email``; default
``external_id``), ``email_field`` (payload field holding the email; default ``email``),
``tag_prefix``, ``concurrency`` (calls in flight per step, default 4; Intercom has no bulk
upsert, so one call per contact, and the rate limit, not the latency, should be the
bound). Rate and timeouts are the connection's (see :mod:`retention.hooks.intercom`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, ClassVar

from retention.hooks.http import HttpHookError
from retention.sync.destinations.base import Record, RowResult, SyncContext

log = logging.getLogger(__name__)

# Contact fields Intercom stores itself; every other mapped field is a custom attribute.
STANDARD_FIELDS = frozenset({
    "role", "external_id", "email", "phone", "name", "avatar", "signed_up_at", "last_seen_at", "owner_id",
    "unsubscribed_from_emails",
})
COMPANY_FIELDS = ("company_id", "company_name")
TIMESTAMP_FIELDS = frozenset({"signed_up_at", "last_seen_at"})
TAG_CHUNK = 50  # contacts per bulk tag call


def json_value(name: str, value: Any) -> Any:
    """A warehouse value as Intercom takes it (numbers as numbers, timestamps as epoch seconds)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(stamp.timestamp()) if name in TIMESTAMP_FIELDS else stamp.isoformat()
    if isinstance(value, date):
        return (int(datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp())
                if name in TIMESTAMP_FIELDS else value.isoformat())
    return value


def data_type(value: Any) -> str:
    """Intercom's data type for a custom attribute, from a value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, (float, Decimal)):
        return "float"
    return "string"


class _Row:
    """One record's progress through the steps of a batch."""

    def __init__(self, record: Record) -> None:
        self.record = record
        self.contact_id = record.destination_id or None
        self.tagged = tuple(record.previous_segments)  # segments this sync confirmed: its tags
        self.created = False
        self.error: str | None = None
        self.status: int | None = None
        self.retryable = True

    def fail(self, step: str, exc: Exception) -> None:
        if self.error is None:
            status = getattr(exc, "status", None)
            code = getattr(exc, "code", None)
            self.status = status
            self.retryable = bool(getattr(exc, "retryable", True))
            self.error = f"intercom {step} failed" + (f": {status}" if status else "") + (f" {code}" if code else "")

    @property
    def ok(self) -> bool:
        return self.error is None


class IntercomDestination:
    kind: ClassVar[str] = "intercom"
    idempotent: ClassVar[bool] = True
    max_batch: ClassVar[int] = 500  # searched 50 at a time, tagged 50 at a time

    def __init__(self, conn_id: str | None = None, options: Mapping[str, Any] | None = None, *, hook: Any = None) -> None:
        self.options = dict(options or {})
        self.key_field = str(self.options.get("key_field", "external_id"))
        if self.key_field not in ("external_id", "email"):
            raise ValueError("intercom destination: key_field must be external_id or email")
        self.email_field = str(self.options.get("email_field", "email"))
        if hook is None:
            from retention.hooks.intercom import IntercomHook

            hook = IntercomHook(conn_id)
        self.hook = hook
        self.ctx: SyncContext | None = None
        self.attributes: set[str] | None = None
        self.tag_ids: dict[str, str] = {}
        self.companies: dict[tuple[str, str | None], str] = {}
        self.concurrency = int(self.options.get("concurrency", 4))
        self.pool: ThreadPoolExecutor | None = None

    # --- the contract ------------------------------------------------------------------

    def open(self, ctx: SyncContext) -> None:
        self.ctx = ctx

    def close(self, ctx: SyncContext, *, succeeded: bool) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
        self.hook.close()

    def send(self, records: Sequence[Record]) -> list[RowResult]:
        assert self.ctx is not None, "open() first"
        rows = [_Row(r) for r in records]
        upserts = [row for row in rows if row.record.action != "remove"]
        self._ensure_attributes(upserts)
        self._resolve(upserts)
        self._update(upserts)
        self._companies(upserts)
        if self.ctx.mode == "membership":
            self._tag(upserts)
            self._untag(rows)
        return [self._result(row) for row in rows]

    # --- steps ---------------------------------------------------------------------------

    def _contact_fields(self, record: Record) -> dict[str, Any]:
        fields: dict[str, Any] = {self.key_field: record.key}
        custom: dict[str, Any] = {}
        for name, value in record.payload.items():
            if name in COMPANY_FIELDS:
                continue
            value = json_value(name, value)
            if name in STANDARD_FIELDS:
                fields[name] = value
            else:
                custom[name] = value
        if custom:
            fields["custom_attributes"] = custom
        return fields

    def _ensure_attributes(self, rows: list[_Row]) -> None:
        wanted: dict[str, Any] = {}
        for row in rows:
            for name, value in row.record.payload.items():
                if name not in STANDARD_FIELDS and name not in COMPANY_FIELDS and wanted.get(name) is None:
                    wanted[name] = value  # the first non-null value decides the type (all null: string)
        if not wanted:
            return
        try:
            if self.attributes is None:
                self.attributes = self.hook.data_attributes("contact")
            for name, value in wanted.items():
                if name not in self.attributes:
                    self.hook.create_data_attribute("contact", name, data_type(json_value(name, value)))
                    self.attributes.add(name)
                    log.info("intercom: created custom attribute %s", name)
        except HttpHookError as exc:
            for row in rows:
                row.fail("data attributes", exc)

    def _resolve(self, rows: list[_Row]) -> None:
        missing = [row for row in rows if row.ok and row.contact_id is None]
        if not missing:
            return
        try:
            by_key = self.hook.search_contacts(self.key_field, [self._lookup(row, self.key_field) for row in missing])
            for row in missing:
                row.contact_id = by_key.get(self._lookup(row, self.key_field))
            if self.key_field != "email":
                with_email = [row for row in missing if row.contact_id is None and self._email(row)]
                if with_email:
                    by_email = self.hook.search_contacts("email", [self._email(row) for row in with_email])
                    found = [(row, by_email[self._email(row)]) for row in with_email if self._email(row) in by_email]
                    self._each(found, lambda pair: self._adopt(*pair))
        except HttpHookError as exc:
            log.warning("intercom: search failed (%s); creating instead (a 409 names existing contacts)", exc)
        self._each([row for row in missing if row.ok and row.contact_id is None], self._create)

    def _create(self, row: _Row) -> None:
        try:
            contact_id, created = self.hook.create_contact(self._contact_fields(row.record))
        except HttpHookError as exc:
            row.fail("create contact", exc)
            return
        if created:
            row.contact_id, row.created = contact_id, True
        else:
            self._adopt(row, contact_id)

    def _adopt(self, row: _Row, contact_id: str) -> None:
        """Use a contact found by email or named by a 409, unless another key's external_id is on it."""
        if self.key_field == "external_id":
            try:
                owner = self.hook.get_contact(contact_id).get("external_id")
            except HttpHookError as exc:
                row.fail("find contact", exc)
                return
            if owner not in (None, "", row.record.key):
                row.fail("find contact", HttpHookError("the contact holds another external_id", status=409,
                                                      code="external_id_mismatch", retryable=False))
                return
        row.contact_id = contact_id

    def _update(self, rows: list[_Row]) -> None:
        self._each([row for row in rows if row.ok and not row.created and row.contact_id], self._update_one)

    def _update_one(self, row: _Row) -> None:
        try:
            self.hook.update_contact(row.contact_id, self._contact_fields(row.record))
        except HttpHookError as exc:
            if exc.status == 404:  # the cached contact was deleted in Intercom: find or create it again
                row.contact_id, row.tagged = None, ()
                self._create(row)
                if row.ok and not row.created:
                    self._update_one(row)
            else:
                row.fail("update contact", exc)

    def _companies(self, rows: list[_Row]) -> None:
        self._each([row for row in rows if row.ok and row.record.payload.get("company_id") not in (None, "")],
                   self._company_one)

    def _company_one(self, row: _Row) -> None:
        company_id = str(row.record.payload["company_id"])
        name = row.record.payload.get("company_name")
        cache_key = (company_id, None if name is None else str(name))
        try:
            intercom_id = self.companies.get(cache_key)
            if intercom_id is None:  # (two threads may both upsert one company: harmless, it is an upsert)
                company = {"company_id": company_id, **({"name": str(name)} if name is not None else {})}
                intercom_id = self.companies[cache_key] = self.hook.upsert_company(company)
            self.hook.attach_company(row.contact_id, intercom_id)
        except HttpHookError as exc:
            row.fail("company", exc)

    def tag_name(self, segment: str) -> str:
        assert self.ctx is not None
        prefix = self.options.get("tag_prefix")
        return f"{self.ctx.sync_name}: " + segment if prefix is None else f"{prefix}{segment}"

    def _tag_id(self, segment: str) -> str:
        if segment not in self.tag_ids:
            self.tag_ids[segment] = self.hook.tag_id(self.tag_name(segment))
        return self.tag_ids[segment]

    def _segments(self, row: _Row) -> tuple[str, ...]:
        return tuple(dict.fromkeys(row.record.segments))

    def _tag(self, rows: list[_Row]) -> None:
        by_segment: dict[str, list[_Row]] = {}
        for row in rows:
            if row.ok:
                for segment in self._segments(row):
                    by_segment.setdefault(segment, []).append(row)
        for segment, members in by_segment.items():
            for start in range(0, len(members), TAG_CHUNK):
                self._tag_chunk(segment, members[start:start + TAG_CHUNK])

    def _tag_chunk(self, segment: str, members: list[_Row]) -> None:
        try:
            self.hook.tag_contacts(self.tag_name(segment), [row.contact_id for row in members])
        except HttpHookError as exc:
            log.warning("intercom: bulk tagging %d contacts failed (%s); tagging one by one", len(members), exc)

            def tag_one(row: _Row) -> None:
                try:
                    self.hook.tag_contact(row.contact_id, self._tag_id(segment))
                except HttpHookError as one:
                    row.fail("tag", one)

            self._each(members, tag_one)

    def _untag(self, rows: list[_Row]) -> None:
        self._each([row for row in rows if row.ok and row.contact_id and row.tagged], self._untag_one)

    def _untag_one(self, row: _Row) -> None:
        keep = set() if row.record.action == "remove" else set(self._segments(row))
        for segment in row.tagged:
            if segment in keep:
                continue
            try:
                self.hook.untag_contact(row.contact_id, self._tag_id(segment))
            except HttpHookError as exc:
                row.fail("untag", exc)
                return

    def _each(self, items: Sequence[Any], step: Callable[[Any], None]) -> None:
        """``step`` for each item (a row, or a row and an id), ``concurrency`` at a time (the
        hook's token bucket keeps the pace)."""
        if self.concurrency <= 1 or len(items) <= 1:
            for item in items:
                step(item)
            return
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="intercom")
        for _ in self.pool.map(step, items):
            pass

    # --- helpers ---------------------------------------------------------------------------

    def _lookup(self, row: _Row, field: str) -> str:
        return row.record.key.lower() if field == "email" else row.record.key

    def _email(self, row: _Row) -> str | None:
        value = row.record.payload.get(self.email_field)
        return str(value).strip().lower() if value else None

    def _result(self, row: _Row) -> RowResult:
        if row.ok and row.record.action == "remove" and row.contact_id is None:
            return RowResult(key=row.record.key, ok=True, http_status=None)  # never tagged by this sync
        if not row.ok or row.contact_id is None:  # a contact id found on the way is kept: no search next run
            return RowResult(key=row.record.key, ok=False, http_status=row.status, destination_id=row.contact_id,
                             error=row.error or "intercom: no contact id", retryable=row.retryable)
        return RowResult(key=row.record.key, ok=True, http_status=200, destination_id=row.contact_id)
