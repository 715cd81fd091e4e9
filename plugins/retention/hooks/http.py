"""The shared HTTP base of the destination hooks: budget, waits, retries, safe errors.

A vendor hook subclasses :class:`HttpHook` in the Slack-provider shape and sets its four
connection attributes, its rate budget and how its reset header reads::

    class AcmeHook(HttpHook):
        conn_name_attr = "acme_conn_id"
        default_conn_name = "acme_default"
        conn_type = "retention_acme"
        hook_name = "Acme"
        default_base_url = "https://api.acme.example"   # used when the connection has no host
        rate_limit_per_s = 10.0                        # the vendor's documented limit
        reset_header, reset_kind = "X-RateLimit-Reset", "epoch"   # or "seconds" (seconds until reset)

        def upsert(self, people):
            return self.request("POST", "/v1/people", json={"people": people}, idempotent=True)

What :meth:`HttpHook.request` does for every call:

* **Token bucket per destination** (:class:`TokenBucket`, keyed by connection type and
  id, shared by every hook instance and thread of the process): a call waits for a token.
  The connection's extra ``rate_limit_per_s`` / ``burst`` override the class defaults, and
  ``timeout``, ``max_attempts``, ``retry_base_delay``, ``max_wait`` the :class:`RetryPolicy`.
* **429** is always retried (the vendor did not process the call). The wait is, in order:
  ``Retry-After`` in seconds or as an HTTP date; the reset header (epoch seconds, or
  seconds until reset, as the hook declares); exponential backoff. Every computed wait is
  clamped to ``[0, RetryPolicy.max_wait]``: a date in the past or a stale epoch waits 0,
  a far-future one waits the cap. The whole bucket pauses for that wait, so parallel
  calls back off together.
* **5xx, timeouts and dropped connections** are retried only when the call says
  ``idempotent=True`` (safe to repeat: upserts, tagging, list adds, deliveries the
  receiver deduplicates by id). A call that is not safe to repeat raises at once with
  ``outcome_unknown=True`` when the request may have landed; the caller consults its
  send log. A connection that was never made (``ConnectError``) is retried either way.
* Other statuses are returned to the caller, who reads them row by row.

Errors (:class:`HttpHookError`) and retry log lines name the method, the path the caller
passed (as :meth:`HttpHook.shown_path` shows it), the connection id, the status and the vendor's error code; never the token, the connection's
URL (it may hold a secret, as Slack's webhook URLs do), or a payload value. httpx's own
INFO log lines (which print full URLs) are silenced.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow.sdk import BaseHook

from retention.sync.errors import DestinationError

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)
# httpx logs every request at INFO with its full URL (a Slack webhook URL is the secret itself).
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

ResetKind = Literal["epoch", "seconds"]


# --------------------------------------------------------------------------- wait arithmetic


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying one call; delays in seconds."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0   # cap of the exponential backoff
    max_wait: float = 60.0    # cap of any wait a server asks for (Retry-After, reset headers)
    timeout: float = 30.0     # per request (connect, read, write, pool)

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): base * 2**(attempt-1), capped."""
        return min(self.base_delay * 2 ** (attempt - 1), self.max_delay)

    def wait_for_429(
        self,
        attempt: int,
        headers: Mapping[str, str],
        *,
        reset_header: str | None = None,
        reset_kind: ResetKind = "epoch",
        now: datetime | None = None,
    ) -> float:
        """The wait a 429 asks for: Retry-After, else the reset header, else backoff; capped."""
        now = now or datetime.now(timezone.utc)
        headers = {k.lower(): v for k, v in headers.items()}
        seconds = parse_retry_after(headers.get("retry-after"), now)
        if seconds is None and reset_header:
            seconds = seconds_until_reset(headers.get(reset_header.lower()), reset_kind, now)
        if seconds is None:
            return self.backoff(attempt)
        return self.clamp(seconds)

    def clamp(self, seconds: float) -> float:
        """A server-computed wait within ``[0, max_wait]``."""
        return min(max(seconds, 0.0), self.max_wait)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date, RFC 9110).

    None when absent or unreadable. Negative when the date is in the past: callers clamp.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    return (when - (now or datetime.now(timezone.utc))).total_seconds()


def seconds_until_reset(value: str | None, kind: ResetKind, now: datetime | None = None) -> float | None:
    """Seconds until a rate-limit window resets, from a reset header.

    ``kind="epoch"``: the header is the reset time in epoch seconds, so the wait is
    ``reset - now`` (a stale epoch gives a negative number: callers clamp).
    ``kind="seconds"``: the header already is the number of seconds until the reset.
    """
    if value is None or not value.strip():
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if kind == "seconds":
        return number
    return number - (now or datetime.now(timezone.utc)).timestamp()


# --------------------------------------------------------------------------- token bucket


class TokenBucket:
    """``rate`` calls a second, with bursts of at most ``capacity``; thread-safe.

    A GCRA (the leaky bucket as a meter): each call is given the earliest time it may
    go, so waiting callers queue in order without busy loops. :meth:`shared` hands every
    caller in the process the same bucket for a destination.
    """

    _shared: ClassVar[dict[str, TokenBucket]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = float(capacity)
        self._interval = 1.0 / rate
        self._tolerance = (self.capacity - 1.0) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = clock()  # theoretical arrival time of the next call

    @classmethod
    def shared(cls, name: str, rate: float, capacity: float = 1.0) -> TokenBucket:
        """The process-wide bucket called ``name`` (created on first use, or when its rate changes)."""
        with cls._shared_lock:
            bucket = cls._shared.get(name)
            if bucket is None or (bucket.rate, bucket.capacity) != (rate, float(capacity)):
                bucket = cls._shared[name] = cls(rate, capacity)
            return bucket

    def reserve(self) -> float:
        """Take the next slot; the seconds the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            send_at = max(tat - self._tolerance, now)
            self._tat = tat + self._interval
            return send_at - now

    def acquire(self) -> float:
        """Wait for a slot (sleeping outside the lock); the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """No call goes for ``seconds`` (a 429 said so), and none in a burst after it."""
        with self._lock:
            self._tat = max(self._tat, self._clock() + seconds + self._tolerance)


# --------------------------------------------------------------------------- errors


class HttpHookError(DestinationError):
    """A call failed. The message holds no secret and no payload value."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retryable: bool = True,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown  # the request may have been processed


class _Retry(Exception):
    """Internal: this attempt failed in a way worth another try."""

    def __init__(self, reason: str, wait: float | None, status: int | None = None, *, may_have_landed: bool) -> None:
        super().__init__(reason)
        self.reason, self.wait, self.status, self.may_have_landed = reason, wait, status, may_have_landed


# --------------------------------------------------------------------------- the hook


class HttpHook(BaseHook):
    """An Airflow hook for one JSON-over-HTTP destination; see the module docstring."""

    conn_name_attr = "http_conn_id"
    default_conn_name = "retention_http_default"
    conn_type = "retention_http"
    hook_name = "Retention HTTP destination"

    default_base_url: ClassVar[str | None] = None
    rate_limit_per_s: ClassVar[float] = 10.0
    burst: ClassVar[float] = 1.0
    reset_header: ClassVar[str | None] = "X-RateLimit-Reset"
    reset_kind: ClassVar[ResetKind] = "epoch"

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name
        setattr(self, self.conn_name_attr, self.conn_id)
        self._retry_policy = retry_policy
        self._sleep = sleep
        self.retries_done = 0

    # connection ---------------------------------------------------------------------------

    @cached_property
    def connection(self) -> Any:
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            return self.get_connection(self.conn_id)
        except AirflowNotFoundException:
            raise HttpHookError(
                f"Airflow connection {self.conn_id!r} is not defined: add it (type {self.conn_type}) in the UI, "
                f"or set AIRFLOW_CONN_{self.conn_id.upper()}",
                retryable=False,
            ) from None

    @cached_property
    def extra(self) -> dict[str, Any]:
        return dict(self.connection.extra_dejson or {})

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        """The policy given to the hook, else the defaults with the connection's extra overrides
        (``timeout``, ``max_attempts``, ``retry_base_delay``, ``max_wait``)."""
        if self._retry_policy is not None:
            return self._retry_policy
        names = {"timeout": "timeout", "max_attempts": "max_attempts", "retry_base_delay": "base_delay",
                 "max_wait": "max_wait"}
        overrides = {field: type(getattr(RetryPolicy, field))(self.extra[key])
                     for key, field in names.items() if key in self.extra}
        return RetryPolicy(**overrides)

    @cached_property
    def base_url(self) -> str:
        conn = self.connection
        host = conn.host
        if not host:
            if self.default_base_url:
                return self.default_base_url
            raise HttpHookError(f"Airflow connection {self.conn_id!r} has no host: set it to the destination's URL.",
                                retryable=False)
        if "://" in host:
            return host.rstrip("/")
        return f"{conn.schema or 'https'}://{host}" + (f":{conn.port}" if conn.port else "")

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate every call (default: Bearer <password>, when there is one)."""
        password = self.connection.password
        return {"Authorization": f"Bearer {password}"} if password else {}

    def attempt_headers(self, content: bytes) -> dict[str, str]:
        """Headers computed again for every attempt (e.g. a signature over a fresh timestamp)."""
        return {}

    @cached_property
    def client(self) -> httpx.Client:
        import httpx

        return httpx.Client(
            base_url=self.base_url,
            headers={"User-Agent": "retention-pipeline", **self.auth_headers()},
            timeout=self.retry_policy.timeout,
        )

    def get_conn(self) -> httpx.Client:
        return self.client

    @cached_property
    def bucket(self) -> TokenBucket:
        rate = float(self.extra.get("rate_limit_per_s", self.rate_limit_per_s))
        burst = float(self.extra.get("burst", self.burst))
        return TokenBucket.shared(f"{self.conn_type}:{self.conn_id}", rate, burst)

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]

    # calls ----------------------------------------------------------------------------------

    def shown_path(self, path: str) -> str:
        """``path`` as errors and log lines show it. A hook whose paths hold a person's
        identifier (Customer.io) or the vendor's ids (Intercom) overrides this to hide them."""
        return path

    def error_code(self, response: httpx.Response) -> str | None:
        """The vendor's error code in a response, if it has one (no values). Override per vendor."""
        return None

    def request(
        self,
        method: str,
        path: str = "",
        *,
        idempotent: bool,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One call with the budget and retry rules of the module docstring.

        ``path`` is relative to the connection's URL ("": the URL itself, as it is); it is the
        only part of the address an error message shows, so never put a secret in it.
        Returns the response for any status but 429 and (for idempotent calls) 5xx.
        """
        import httpx
        import orjson
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

        if json is not None:
            content = orjson.dumps(json)
            headers = {"Content-Type": "application/json", **(headers or {})}
        where = f"{method} {self.shown_path(path) if path else '<connection URL>'} (connection {self.conn_id!r})"
        policy = self.retry_policy

        attempts = 0

        def attempt() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            self.bucket.acquire()
            try:
                response = self.client.request(
                    method, path or self.base_url, content=content, params=params,
                    headers={**(headers or {}), **self.attempt_headers(content or b"")},
                )
            except httpx.UnsupportedProtocol:
                raise HttpHookError(f"{where}: the connection's URL must start with http:// or https://",
                                    retryable=False) from None
            except httpx.ConnectError:  # never reached the server: safe to try again
                raise _Retry("could not connect", None, may_have_landed=False) from None
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                reason = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection dropped"
                if idempotent:
                    raise _Retry(reason, None, may_have_landed=True) from None
                raise HttpHookError(
                    f"{where} {reason}; not retried, the call is not safe to repeat and may have landed",
                    retryable=True, outcome_unknown=True,
                ) from None
            status = response.status_code
            if status == 429:
                wait = policy.wait_for_429(
                    attempts, response.headers,
                    reset_header=self.reset_header, reset_kind=self.reset_kind,
                )
                self.bucket.pause(wait)
                raise _Retry("429 rate limited", wait, status, may_have_landed=False)
            if status >= 500:
                code = self.error_code(response)
                detail = f"{status}" + (f" {code}" if code else "")
                if idempotent:
                    raise _Retry(f"{detail} server error", None, status, may_have_landed=True)
                raise HttpHookError(
                    f"{where} answered {detail}; not retried, the call is not safe to repeat and may have landed",
                    status=status, code=code, outcome_unknown=True,
                )
            return response

        def wait(state: Any) -> float:
            exc = state.outcome.exception()
            return exc.wait if isinstance(exc, _Retry) and exc.wait is not None else policy.backoff(state.attempt_number)

        def before_sleep(state: Any) -> None:
            self.retries_done += 1
            exc = state.outcome.exception()
            log.warning("%s: %s; retry %d in %.2fs", where, exc.reason, state.attempt_number, state.upcoming_sleep)

        retrying = Retrying(
            stop=stop_after_attempt(policy.max_attempts),
            wait=wait,
            retry=retry_if_exception_type(_Retry),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retry as exc:
            raise HttpHookError(
                f"{where} still failing after {policy.max_attempts} attempts (last: {exc.reason})",
                status=exc.status, retryable=True, outcome_unknown=exc.may_have_landed,
            ) from None
