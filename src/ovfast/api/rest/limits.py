"""The REST port's limits: body size (after decompression), header and body timeouts, open connections.

- Headers: aiohttp closes a connection that is waiting for a request when its keep-alive timer fires,
  and that timer starts when the connection opens and again after each response; a request whose
  headers are still arriving is waiting. ``header_timeout_s`` is that timer.
- Bodies: :func:`body_middleware` reads every body before the handler runs, within ``body_timeout_s``
  (408 otherwise), refusing one whose ``Content-Length`` is over ``max_input_size`` before reading
  it and one that grows past it while aiohttp decompresses it (413). The body is read into one
  buffer that grows with what arrived (never sized from a header) and is freed at once when the
  client goes away.
- Connections: :class:`LimitedSite` counts connections at the TCP level, before any TLS handshake;
  over ``max_connections`` a connection is answered 503 (plaintext) or reset (TLS) and closed, so
  descriptors stay for real clients, the gRPC port and the config watcher.
"""
from __future__ import annotations

import asyncio
import logging
import mmap
import resource
import ssl
import time
from asyncio import sslproto
from dataclasses import dataclass

import orjson
from aiohttp import web

from ovfast import _native
from ovfast.api.held_memory import HeldMemory

log = logging.getLogger("ovfast.rest")

DEFAULT_MAX_INPUT_SIZE = 1 << 30  # the gRPC message limit (api/grpc/server.py GRPC_MAX_MESSAGE), as OVMS
BODY = "ovfast.body"  # where body_middleware leaves the body on the request
HELD = "ovfast.held_memory"  # ... and what the request holds against --max_request_memory (HeldMemory)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
SMALL_BODY = 1 << 20  # bodies that can be larger are read into a memory map (_BodyBuffer)
# Descriptors kept out of the REST connection budget: gRPC, models, logs, the config watcher.
FD_RESERVE_MIN = 256
_REFUSED = orjson.dumps({"error": "Too many open connections; try again later"})
_REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(_REFUSED), _REFUSED))


@dataclass(frozen=True)
class RestLimits:
    max_input_size: int = DEFAULT_MAX_INPUT_SIZE
    header_timeout_s: float = 30.0
    body_timeout_s: float = 300.0
    max_connections: int | None = None  # None: from the descriptor limit (default_max_connections)

    def __post_init__(self) -> None:
        if not 0 < self.max_input_size <= 1 << 40:
            raise ValueError("--rest_max_input_size must be from 1 to 2^40 bytes")
        if not (0 < self.header_timeout_s <= 86400 and 0 < self.body_timeout_s <= 86400):
            raise ValueError("--rest_header_timeout_seconds and --rest_body_timeout_seconds must be from 0 "
                             "(exclusive) to 86400")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("--rest_max_connections must be at least 1")


def raise_descriptor_limit() -> int:
    """Raises the soft RLIMIT_NOFILE to the hard limit (servers need many descriptors; the soft
    default is often 1,024); returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("Cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft


def max_connections(limits: RestLimits, fd_limit: int) -> int:
    """The REST connection budget: the flag, else the descriptor limit less a reserve (a quarter, at
    least FD_RESERVE_MIN); a flag the descriptor limit cannot honour is lowered, with a warning."""
    reserve = max(FD_RESERVE_MIN, fd_limit // 4)
    budget = max(16, fd_limit - reserve)
    if limits.max_connections is None:
        return budget
    if limits.max_connections > budget:
        log.warning("--rest_max_connections %d leaves too few of the %d open files allowed; using %d",
                    limits.max_connections, fd_limit, budget)
        return budget
    return limits.max_connections


# -- bodies ------------------------------------------------------------------------------------

def _closing(message: str, status: int) -> web.Response:
    """A JSON error that also closes the connection (the rest of the body is never read)."""
    resp = web.Response(body=orjson.dumps({"error": message}), status=status, content_type="application/json")
    resp.force_close()
    return resp


def too_large(limit: int, what: str) -> web.Response:
    return _closing(f"Request body {what} exceeds the limit of {limit} bytes (--rest_max_input_size)", 413)


async def read_body(request: web.Request, limits: RestLimits) -> bytearray | memoryview | web.Response:
    """The whole body (decompressed), or the error response that refuses it."""
    limit = limits.max_input_size
    length = request.content_length
    if length is not None and length > limit:
        return too_large(limit, f"of {length} bytes (Content-Length)")
    encoded = "Content-Encoding" in request.headers
    buf = _BodyBuffer(length if length is not None and not encoded else limit)
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            while True:
                chunk = await request.content.readany()
                if not chunk:
                    return buf.value()
                if buf.size + len(chunk) > limit:
                    buf.release()
                    return too_large(limit, "decompressed" if encoded else "received")
                buf.append(chunk)
    except TimeoutError:
        buf.release()
        return _closing(f"Request body not received within {limits.body_timeout_s:g} s "
                        f"(--rest_body_timeout_seconds)", 408)
    except BaseException:
        # NOTE: the exception's traceback keeps this frame (and so ``buf``) alive until the garbage
        # collector breaks its cycle; releasing the buffer gives the memory back now.
        buf.release()
        raise


class _BodyBuffer:
    """A request body as it arrives. Up to SMALL_BODY bytes it is a bytearray; a body that may be larger
    goes into an anonymous memory map of its largest possible size (its Content-Length, else the limit):
    only the pages written are committed, so memory follows what was received, and the map is returned
    to the system as soon as the body is released (the heap would keep a freed 300 MB body's pages)."""

    def __init__(self, capacity: int) -> None:
        self.size = 0
        self._small: bytearray | None = bytearray() if capacity <= SMALL_BODY else None
        self._map = None if self._small is not None else mmap.mmap(-1, capacity)

    def append(self, chunk: bytes) -> None:
        if self._small is not None:
            self._small += chunk
        else:
            assert self._map is not None
            self._map[self.size:self.size + len(chunk)] = chunk
        self.size += len(chunk)

    def value(self) -> bytearray | memoryview:
        if self._small is not None:
            return self._small
        assert self._map is not None
        return memoryview(self._map)[:self.size]

    def release(self) -> None:
        if self._small is not None:
            self._small.clear()
        elif self._map is not None:
            self._map.close()
            self._map = None


def body_middleware(limits: RestLimits, memory: _native.RequestMemory | None = None):
    """Reads the body; with ``memory`` (--max_request_memory), holds its size from it first
    (``Content-Length`` before reading, what arrived after) and everything the request holds is given
    back when it is answered."""
    @web.middleware
    async def middleware(request: web.Request, handler):
        held = request[HELD] = HeldMemory(memory)
        try:
            if request.method in _BODY_METHODS and request.body_exists:  # a GET's body is never kept
                refused = held.hold_body(request.content_length or 0)
                if refused is None:
                    body = await read_body(request, limits)
                    if isinstance(body, web.Response):
                        return body
                    refused = held.hold_body(len(body))
                if refused is not None:
                    return _closing(refused, 503)
                request[BODY] = body
            return await handler(request)
        finally:
            # NOTE: aiohttp keeps the last request of a keep-alive connection referenced while it waits
            # for the next one (up to --rest_header_timeout_seconds): the body must not live that long.
            request.pop(BODY, None)
            held.release()

    return middleware


def body_of(request: web.Request) -> bytearray | memoryview | bytes:
    """The body :func:`body_middleware` read (b"" for a request without one)."""
    return request.get(BODY, b"")


def held_of(request: web.Request) -> HeldMemory | None:
    """What the request holds against --max_request_memory (:func:`body_middleware`)."""
    return request.get(HELD)


# -- connections -------------------------------------------------------------------------------

class ConnectionBudget:
    """The open connections one REST port allows, shared by its sites (one per bind address): those
    aiohttp serves plus TLS handshakes in progress."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.handshakes = 0
        self.refused = 0
        self._warned_at = -60.0

    def full(self, server: web.Server) -> bool:
        return len(server.connections) + self.handshakes >= self.limit

    def refuse(self) -> None:
        """Counts a refused connection; warns at most once a minute while refusing."""
        self.refused += 1
        now = time.monotonic()
        if now - self._warned_at >= 60.0:
            self._warned_at = now
            log.warning("REST connection limit reached (%d open): refusing new connections (%d so far); "
                        "see --rest_max_connections", self.limit, self.refused)

    def handshake_done(self, waiter: asyncio.Future) -> None:
        self.handshakes -= 1
        exc = None if waiter.cancelled() else waiter.exception()
        if exc is not None:
            log.debug("REST TLS handshake failed: %s", str(exc) or type(exc).__name__)


class _Gate(asyncio.Protocol):
    """The protocol every accepted TCP connection starts with: refuses it over the budget, else hands it
    to aiohttp's handler (through a TLS layer when the site has TLS) before anything is read."""

    def __init__(self, site: LimitedSite) -> None:
        self._site = site

    def connection_made(self, transport) -> None:  # asyncio.Transport (uvloop's does not subclass it)
        site, budget = self._site, self._site.budget
        if budget.full(site.server):
            budget.refuse()
            if site.ssl_context is None:
                transport.write(_REFUSAL)
                transport.close()
            else:
                transport.abort()
            return
        handler = site.server()
        if site.ssl_context is None:
            transport.set_protocol(handler)
            handler.connection_made(transport)
            return
        # NOTE: the TLS layer is put in place here, synchronously, as create_server(ssl=...) does: uvloop
        # starts reading right after connection_made, so a ClientHello must find it there (loop.start_tls,
        # a coroutine, would run a turn later and lose it). It calls handler.connection_made after the
        # handshake; a handshake that fails or times out closes the connection.
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        tls = sslproto.SSLProtocol(loop, handler, site.ssl_context, waiter, server_side=True,
                                   ssl_handshake_timeout=site.handshake_timeout_s)
        budget.handshakes += 1
        waiter.add_done_callback(budget.handshake_done)
        transport.set_protocol(tls)
        tls.connection_made(transport)


class LimitedSite(web.BaseSite):
    """A TCP site (as aiohttp's TCPSite) whose connections, TLS handshakes in progress included, count
    against ``budget``."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, budget: ConnectionBudget,
                 ssl_context: ssl.SSLContext | None = None, handshake_timeout_s: float = 30.0,
                 backlog: int = 1024) -> None:
        super().__init__(runner, backlog=backlog)
        self._host, self._port = host, port
        self.budget = budget
        self.ssl_context = ssl_context
        self.handshake_timeout_s = handshake_timeout_s
        self._bound_port = port

    @property
    def name(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self._host}:{self._bound_port}"

    @property
    def server(self) -> web.Server:
        assert self._runner.server is not None
        return self._runner.server

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Gate(self), self._host, self._port, backlog=self._backlog,
                                                reuse_address=True)
        self._bound_port = self._server.sockets[0].getsockname()[1]
