"""Local stand-ins for SaaS APIs: the machinery every vendor server shares.

A vendor server is a FastAPI app served by uvicorn in its **own process** on a free
``127.0.0.1`` port. Tests and the demo start one with :func:`serve`; a user runs one with
``python -m retention.local_servers <vendor> [--port N] [--set key=value ...]``.

Writing a vendor server (``retention/local_servers/<vendor>.py``; the module name is the
vendor name)::

    from fastapi import Request
    from retention.local_servers.base import LocalServer, register

    @register("acme")                      # error_body=..., rate_limit_headers=... to look like the vendor
    def build(server: LocalServer) -> None:
        app, opts = server.app, server.options   # opts: what serve(..., **options) passed
        people: dict[str, dict] = {}

        @app.post("/v1/people")
        async def upsert(request: Request):
            body = await request.json()
            rejects = server.partial_rejects(request, len(body["people"]))  # indexes, empty unless "partial"
            ...
            return {"ok": True}

        @server.view("people")             # GET /__control/log lists it under "views"
        def people_view():
            return people

Vendor routes should be ``async def`` (all state then lives on the one event loop, so no
locks are needed). Inside a route, ``server.fault(request)`` is the fault drawn for it
(``"partial"`` and the ``*_after`` kinds reach the route), ``server.partial_rejects(request,
n)`` the row indexes to reject, and ``server.error(status, code)`` an error response in the
vendor's shape (the ``error_body`` given to :func:`register`, also used for injected 429s
and 500s). Everything below happens in front of them, in an ASGI middleware, for
every request outside ``/__control``:

* **Request log.** Each request is recorded (method, path, query, body as JSON or text,
  status answered, injected fault, whether the vendor route ran). ``Authorization`` and
  other credential headers are never recorded.
* **Enforced rate** (option ``rate_limit_per_s``, with ``rate_limit_window_s``, default
  1 s): fixed windows of ``rate * window`` requests; beyond that a 429 with
  ``Retry-After`` (seconds) and ``X-RateLimit-Limit/Remaining/Reset`` (reset in epoch
  seconds), or the vendor's own headers (``register(..., rate_limit_headers=fn)``).
  Successful answers carry the same headers.
* **Fault injection** (``POST /__control/faults`` or option ``faults``)::

      {"rate": 0.2, "kinds": ["429_seconds", "429_date", "500", "slow", "reset", "partial"],
       "seed": 7, "retry_after_s": 1, "slow_s": 3.0, "partial_share": 0.3, "paths": ["/v1/"]}

  A seeded share ``rate`` of requests (only under ``paths`` prefixes, if given) gets one
  of ``kinds``, drawn uniformly:

  ======================  ================================================================
  ``429_seconds``         429, ``Retry-After: <retry_after_s>`` (not processed)
  ``429_date``            429, ``Retry-After: <HTTP date>`` (not processed)
  ``500``                 500 with the vendor's error body (not processed)
  ``slow``                waits ``slow_s`` (set it past the client timeout), then 504;
                          not processed
  ``reset``               the TCP connection is reset (RST) before processing
  ``partial``             processed; the vendor route rejects some rows
                          (:meth:`LocalServer.partial_rejects`)
  ``500_after``           processed, then answered 500 (the client cannot know it landed)
  ``slow_after``          processed, then the answer waits ``slow_s``
  ``reset_after``         processed, then the connection is reset instead of answered
  ======================  ================================================================

  The ``*_after`` kinds are what exactly-once tests need: the server accepted the request
  but the client saw a failure. ``count`` (optional) stops injecting after that many faults.

Control API (never rate limited nor faulted):

* ``GET /__control/health`` -> ``{"vendor": ...}``
* ``POST /__control/faults`` (body above; ``{}`` or ``{"rate": 0}`` turns faults off)
* ``POST /__control/limits`` ``{"rate_limit_per_s": 50, "rate_limit_window_s": 1}`` (null: off)
* ``GET /__control/log`` -> ``{"requests": [...], "counts": {...}, "views": {name: ...}}``;
  ``?bodies=0`` leaves the bodies out, ``?requests=0`` returns only counts and views
* ``POST /__control/reset``: clears the log and the vendor's state (``build`` runs again on
  a fresh app state), and restores faults and limits to the start options.

:func:`serve` yields a :class:`RunningServer` with ``base_url`` and ``control``
(:class:`ServerControl`: ``faults()``, ``limits()``, ``log()``, ``requests()``, ``view()``,
``reset()``). The server process is started with a readiness handshake (it prints one
``READY <port>`` line once uvicorn listens; no polling), and stopped when the block ends,
also when a test fails. It also stops when its parent dies (it watches its stdin).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import math
import os
import random
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import orjson
from fastapi import Request  # routes' annotations are resolved in this module's globals

log = logging.getLogger(__name__)

OPTIONS_ENV = "RETENTION_LOCAL_SERVER_OPTIONS"
CONTROL_PREFIX = "/__control"
READY_PREFIX = "READY "
STARTUP_TIMEOUT_S = 30.0

FAULT_KINDS = frozenset(
    {"429_seconds", "429_date", "500", "slow", "reset", "partial", "500_after", "slow_after", "reset_after"}
)
# Headers that carry credentials: never written to the request log.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})

ErrorBody = Callable[[int, str], Any]  # (status, reason code) -> JSON body
RateLimitHeaders = Callable[[int, int, float, int], dict[str, str]]  # (limit, remaining, reset epoch, retry-after)


def default_error_body(status: int, code: str) -> dict:
    return {"error": {"status": status, "code": code}}


def default_rate_limit_headers(limit: int, remaining: int, reset_epoch: float, retry_after: int) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(remaining, 0)),
        "X-RateLimit-Reset": str(math.ceil(reset_epoch)),
    }


@dataclass(frozen=True)
class VendorSpec:
    name: str
    build: Callable[[LocalServer], None]
    error_body: ErrorBody = default_error_body
    rate_limit_headers: RateLimitHeaders = default_rate_limit_headers


_REGISTRY: dict[str, VendorSpec] = {}


def register(
    name: str,
    *,
    error_body: ErrorBody = default_error_body,
    rate_limit_headers: RateLimitHeaders = default_rate_limit_headers,
) -> Callable[[Callable[[LocalServer], None]], Callable[[LocalServer], None]]:
    """Register ``build(server)`` as vendor ``name`` (decorator). See the module docstring."""

    def decorate(build: Callable[[LocalServer], None]) -> Callable[[LocalServer], None]:
        _REGISTRY[name] = VendorSpec(name, build, error_body, rate_limit_headers)
        return build

    return decorate


def vendor_spec(name: str) -> VendorSpec:
    """The registered vendor ``name``, importing ``retention.local_servers.<name>`` first."""
    if name not in _REGISTRY:
        if not name.isidentifier():
            raise ValueError(f"unknown local server {name!r}")
        try:
            importlib.import_module(f"retention.local_servers.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"retention.local_servers.{name}":
                raise
    if name not in _REGISTRY:
        raise ValueError(f"unknown local server {name!r}: no retention/local_servers/{name}.py registering it")
    return _REGISTRY[name]


# --------------------------------------------------------------------------- faults and limits


@dataclass
class FaultPlan:
    """Which requests get which fault; deterministic for a seed."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ()
    seed: int = 0
    retry_after_s: float = 1
    slow_s: float = 3.0
    partial_share: float = 0.3
    paths: tuple[str, ...] = ()
    count: int | None = None
    rng: random.Random = field(init=False, repr=False)
    injected: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - FAULT_KINDS
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {sorted(FAULT_KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("fault rate must be between 0 and 1")
        if self.rate and not self.kinds:
            raise ValueError("a fault rate needs at least one kind")
        self.rng = random.Random(self.seed)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> FaultPlan:
        data = dict(data or {})
        known = {"rate", "kinds", "seed", "retry_after_s", "slow_s", "partial_share", "paths", "count"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault options {sorted(unknown)}; known: {sorted(known)}")
        data["kinds"] = tuple(data.get("kinds", ()))
        data["paths"] = tuple(data.get("paths", ()))
        return cls(**data)

    def draw(self, path: str) -> str | None:
        if not self.rate or (self.paths and not path.startswith(self.paths)):
            return None
        if self.count is not None and self.injected >= self.count:
            return None
        if self.rng.random() >= self.rate:
            return None
        self.injected += 1
        return self.rng.choice(self.kinds)


@dataclass
class WindowLimiter:
    """Fixed windows of ``rate_limit_per_s * window_s`` requests, as most vendors enforce."""

    rate_limit_per_s: float | None = None
    window_s: float = 1.0
    _window: int = field(default=-1, init=False)
    _used: int = field(default=0, init=False)

    @property
    def limit(self) -> int:
        return max(1, int(round((self.rate_limit_per_s or 0) * self.window_s)))

    def take(self, now: float) -> tuple[bool, int, float]:
        """(allowed, remaining, reset epoch) for one request at epoch ``now``."""
        window = int(now // self.window_s)
        if window != self._window:
            self._window, self._used = window, 0
        reset = (window + 1) * self.window_s
        if self._used >= self.limit:
            return False, 0, reset
        self._used += 1
        return True, self.limit - self._used, reset


# --------------------------------------------------------------------------- the app


class LocalServer:
    """One vendor server: its FastAPI app, options, faults, limits and request log."""

    def __init__(self, spec: VendorSpec, options: Mapping[str, Any]) -> None:
        self.spec = spec
        self.options = dict(options)
        self._start_faults = self.options.pop("faults", None)
        self._start_limits = {
            "rate_limit_per_s": self.options.pop("rate_limit_per_s", None),
            "rate_limit_window_s": self.options.pop("rate_limit_window_s", 1.0),
        }
        self.log_bodies = bool(self.options.pop("log_bodies", True))
        self._views: dict[str, Callable[[], Any]] = {}
        self.app: Any = None
        self._build()

    # vendor-facing API -------------------------------------------------------------------

    def view(self, name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        """Decorator: expose ``fn()`` under ``views[name]`` of ``GET /__control/log``."""

        def decorate(fn: Callable[[], Any]) -> Callable[[], Any]:
            self._views[name] = fn
            return fn

        return decorate

    def fault(self, request: Any) -> str | None:
        """The fault drawn for this request (``partial`` is the one a route acts on)."""
        return request.scope.get("state", {}).get("fault")

    def partial_rejects(self, request: Any, n: int) -> list[int]:
        """Indexes of the rows this request should reject: empty unless its fault is ``partial``.

        Deterministic for the seed; at least one row, and never all rows of a batch of two or more.
        """
        if self.fault(request) != "partial" or n <= 0:
            return []
        share = self.faults.partial_share
        k = min(max(1, round(n * share)), n - 1 if n > 1 else 1)
        return sorted(self.faults.rng.sample(range(n), k))

    def error(self, status: int, code: str, headers: Mapping[str, str] | None = None) -> Any:
        """A JSON error response shaped like the vendor's."""
        from fastapi.responses import JSONResponse

        return JSONResponse(self.spec.error_body(status, code), status_code=status, headers=dict(headers or {}))

    # internals ------------------------------------------------------------------------------

    def _build(self) -> None:
        from fastapi import FastAPI

        self.app = FastAPI(title=f"local {self.spec.name}", docs_url=None, redoc_url=None, openapi_url=None)
        self._views = {}
        self.faults = FaultPlan.from_json(self._start_faults)
        self.limiter = WindowLimiter(
            self._start_limits["rate_limit_per_s"], float(self._start_limits["rate_limit_window_s"] or 1.0)
        )
        self.requests: list[dict] = []
        self.counts: Counter[str] = Counter()
        self._add_control_routes()
        self.spec.build(self)

    def _add_control_routes(self) -> None:
        from fastapi.responses import JSONResponse, ORJSONResponse

        app = self.app

        @app.get(f"{CONTROL_PREFIX}/health")
        async def health() -> dict:
            return {"vendor": self.spec.name, "pid": os.getpid()}

        @app.post(f"{CONTROL_PREFIX}/faults")
        async def set_faults(request: Request) -> Any:
            try:
                self.faults = FaultPlan.from_json(await request.json() if await request.body() else {})
            except (TypeError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return {"faults": _plan_json(self.faults)}

        @app.post(f"{CONTROL_PREFIX}/limits")
        async def set_limits(request: Request) -> dict:
            body = await request.json()
            self.limiter = WindowLimiter(body.get("rate_limit_per_s"), float(body.get("rate_limit_window_s") or 1.0))
            return {"rate_limit_per_s": self.limiter.rate_limit_per_s, "rate_limit_window_s": self.limiter.window_s}

        @app.get(f"{CONTROL_PREFIX}/log")
        async def get_log(bodies: int = 1, requests: int = 1) -> Any:
            entries = self.requests if requests else []
            if not bodies:
                entries = [{k: v for k, v in e.items() if k != "body"} for e in entries]
            views = {name: fn() for name, fn in self._views.items()}
            return ORJSONResponse({"requests": entries, "counts": dict(self.counts), "views": views})

        @app.post(f"{CONTROL_PREFIX}/reset")
        async def reset() -> dict:
            self._build()
            return {"reset": True}

    # the ASGI entry point: control routes go straight to the app; the rest is limited,
    # faulted and logged first.
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        body, receive = await _buffer_body(receive)
        entry: dict[str, Any] = {
            "seq": len(self.requests) + 1,
            "t": time.time(),
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in scope.get("headers", [])
                if k.decode("latin-1").lower() not in SECRET_HEADERS
            },
            "fault": None,
            "processed": False,
            "status": None,
        }
        if self.log_bodies:
            entry["body"] = _decode_body(body)
        self.requests.append(entry)
        try:
            await self._handle(scope, receive, send, entry)
        finally:
            self.counts[str(entry["status"])] += 1
            if entry["fault"]:
                self.counts[f"fault:{entry['fault']}"] += 1

    async def _handle(self, scope: dict, receive: Callable, send: Callable, entry: dict) -> None:
        now = time.time()
        limit_headers: dict[str, str] = {}
        if self.limiter.rate_limit_per_s:
            allowed, remaining, reset = self.limiter.take(now)
            retry_after = max(1, math.ceil(reset - now))
            limit_headers = self.spec.rate_limit_headers(self.limiter.limit, remaining, reset, retry_after)
            if not allowed:
                entry["fault"] = "rate_limit"
                await self._respond(send, entry, 429, "rate_limited", {**limit_headers, "Retry-After": str(retry_after)})
                return
        kind = self.faults.draw(scope["path"])
        entry["fault"] = kind
        plan = self.faults
        if kind == "429_seconds":
            await self._respond(send, entry, 429, "rate_limited", {"Retry-After": _seconds(plan.retry_after_s)})
            return
        if kind == "429_date":
            when = formatdate(now + plan.retry_after_s, usegmt=True)
            await self._respond(send, entry, 429, "rate_limited", {"Retry-After": when})
            return
        if kind == "500":
            await self._respond(send, entry, 500, "internal_error", {})
            return
        if kind == "slow":
            await asyncio.sleep(plan.slow_s)
            await self._respond(send, entry, 504, "timeout", {})
            return
        if kind == "reset":
            entry["status"] = "reset"
            _reset_connection(send)
            return
        if kind is not None:
            scope.setdefault("state", {})["fault"] = kind
        after = kind in ("500_after", "slow_after", "reset_after")
        captured: list[dict] = []

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), *_raw_headers(limit_headers)]}
            if after:
                captured.append(message)
            else:
                await send(message)

        entry["processed"] = True
        await self.app(scope, receive, send_wrapper)
        if not after:
            return
        entry["answered"] = entry["status"]
        if kind == "500_after":
            await self._respond(send, entry, 500, "internal_error", {})
        elif kind == "reset_after":
            entry["status"] = "reset"
            _reset_connection(send)
        else:  # slow_after
            await asyncio.sleep(plan.slow_s)
            for message in captured:
                await send(message)

    async def _respond(self, send: Callable, entry: dict, status: int, code: str, headers: Mapping[str, str]) -> None:
        entry["status"] = status
        body = orjson.dumps(self.spec.error_body(status, code))
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *_raw_headers(headers)]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


def _plan_json(plan: FaultPlan) -> dict:
    return {
        "rate": plan.rate, "kinds": list(plan.kinds), "seed": plan.seed, "retry_after_s": plan.retry_after_s,
        "slow_s": plan.slow_s, "partial_share": plan.partial_share, "paths": list(plan.paths), "count": plan.count,
    }


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _raw_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()]


async def _buffer_body(receive: Callable) -> tuple[bytes, Callable[[], Awaitable[dict]]]:
    """Read the whole request body, and a ``receive`` that replays it to the app."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _decode_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


def _reset_connection(send: Callable) -> None:
    """Abort the TCP connection with an RST (SO_LINGER 0), as a crashed proxy would.

    uvicorn's ``send`` is a bound method of its request cycle, which holds the transport.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:  # pragma: no cover - another server than uvicorn
        raise RuntimeError("connection reset needs uvicorn's transport")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


# --------------------------------------------------------------------------- process side


def run(vendor: str, options: Mapping[str, Any], port: int = 0, *, exit_on_stdin_eof: bool = False) -> None:
    """Serve ``vendor`` in this process until stopped; prints ``READY <port>`` once listening."""
    import uvicorn

    server_app = LocalServer(vendor_spec(vendor), options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    bound = sock.getsockname()[1]

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                sys.stdout.write(f"{READY_PREFIX}{bound}\n")
                sys.stdout.flush()
                os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nothing else may reach the handshake pipe
                if not exit_on_stdin_eof:  # a person started it
                    print(f"local {vendor} server on http://127.0.0.1:{bound} (control API under {CONTROL_PREFIX}); "
                          "Ctrl-C stops it", file=sys.stderr, flush=True)

    config = uvicorn.Config(
        server_app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
    )
    server = _Server(config)
    if exit_on_stdin_eof:
        def watch_parent() -> None:
            sys.stdin.buffer.read()  # returns at EOF: the parent closed the pipe or died
            server.should_exit = server.force_exit = True  # a stand-in: no need to drain open connections

        threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    server.run(sockets=[sock])


class ServerControl:
    """A small client for a running server's ``/__control`` API."""

    def __init__(self, base_url: str) -> None:
        import httpx

        self._client = httpx.Client(base_url=f"{base_url}{CONTROL_PREFIX}", timeout=30.0)

    def faults(self, rate: float = 0.0, kinds: tuple[str, ...] | list[str] = (), seed: int = 0, **extra: Any) -> dict:
        """Set the fault plan (see the module docstring); ``faults()`` turns faults off."""
        return self._post("/faults", {"rate": rate, "kinds": list(kinds), "seed": seed, **extra})

    def limits(self, rate_limit_per_s: float | None, rate_limit_window_s: float = 1.0) -> dict:
        return self._post("/limits", {"rate_limit_per_s": rate_limit_per_s, "rate_limit_window_s": rate_limit_window_s})

    def log(self, *, bodies: bool = True, requests: bool = True) -> dict:
        response = self._client.get("/log", params={"bodies": int(bodies), "requests": int(requests)})
        response.raise_for_status()
        return response.json()

    def requests(self, *, bodies: bool = True) -> list[dict]:
        """Every request the vendor routes received, in order."""
        return self.log(bodies=bodies)["requests"]

    def view(self, name: str) -> Any:
        return self.log(requests=False)["views"][name]

    def reset(self) -> None:
        self._post("/reset", {})

    def close(self) -> None:
        self._client.close()

    def _post(self, path: str, body: dict) -> dict:
        response = self._client.post(path, json=body)
        if response.status_code >= 400:
            raise ValueError(f"local server refused {path}: {response.text}")
        return response.json()


@dataclass
class RunningServer:
    vendor: str
    base_url: str
    port: int
    process: subprocess.Popen
    control: ServerControl


@contextmanager
def serve(vendor: str, *, startup_timeout: float = STARTUP_TIMEOUT_S, **options: Any) -> Iterator[RunningServer]:
    """Run vendor server ``vendor`` in its own process on a free port for the ``with`` block.

    ``options`` go to the vendor's ``build`` (``server.options``), except ``faults``,
    ``rate_limit_per_s``, ``rate_limit_window_s`` and ``log_bodies``, which the base reads.
    They travel in an environment variable, not the command line, so secrets stay out of ``ps``.
    """
    vendor_spec(vendor)  # fail here, with the name, if it does not exist
    env = {**os.environ, OPTIONS_ENV: json.dumps(options)}
    stderr = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "retention.local_servers", vendor, "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
        start_new_session=True,  # a Ctrl-C in the terminal goes to the parent, which stops us
    )
    control = None
    try:
        port = _await_ready(process, stderr, startup_timeout, vendor)
        base_url = f"http://127.0.0.1:{port}"
        control = ServerControl(base_url)
        yield RunningServer(vendor, base_url, port, process, control)
    finally:
        if control is not None:
            control.close()
        _stop(process)
        stderr.close()


def _await_ready(process: subprocess.Popen, stderr: Any, timeout: float, vendor: str) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise RuntimeError(f"local {vendor} server did not start within {timeout:.0f}s")
            chunk = os.read(process.stdout.fileno(), 256)
            if not chunk:
                process.wait(timeout=5)
                stderr.seek(0)
                tail = stderr.read().decode("utf-8", "replace")[-2000:]
                raise RuntimeError(f"local {vendor} server exited ({process.returncode}) before listening:\n{tail}")
            line += chunk
    text = line.decode().strip()
    if not text.startswith(READY_PREFIX):
        raise RuntimeError(f"local {vendor} server: unexpected handshake {text[:80]!r}")
    return int(text[len(READY_PREFIX):])


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        if process.stdin is not None:
            process.stdin.close()  # the server's parent watch sees EOF and shuts down gracefully
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None and not pipe.closed:
            pipe.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m retention.local_servers", description="Run a local stand-in for a SaaS API."
    )
    parser.add_argument("vendor", help="e.g. webhook (a module of retention.local_servers)")
    parser.add_argument("--port", type=int, default=0, help="0 (default): a free port, printed on start")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="a server option; VALUE is parsed as JSON when it can be (e.g. --set rate_limit_per_s=10)",
    )
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    options = json.loads(os.environ.get(OPTIONS_ENV) or "{}")
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    try:
        vendor_spec(args.vendor)
    except ValueError as exc:
        parser.error(str(exc))
    run(args.vendor, options, args.port, exit_on_stdin_eof=args.exit_on_stdin_eof)
    return 0
