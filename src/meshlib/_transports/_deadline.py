"""The network backend of meshlib's inner transports: deadlines and peer checks on the wire.

Deadlines: Envoy's route and per-try timeouts, not httpx's per-operation ones.

httpx bounds each socket operation (connect, one read, one write) on its own, so an
upstream that trickles a byte now and then is waited for indefinitely. Envoy's timers
are deadlines: the route timeout ends the request at ``start + timeout`` whatever
arrives meanwhile, and the per-try timeout ends the attempt ``perTryTimeout`` after the
request went out (``envoy-semantics.md`` §1.4; Envoy ignores it once the response has
started downstream).

The current attempt's :class:`Bound` lives in a context variable. meshlib's own pools
(:mod:`._http11`, :mod:`._async_http11`) read it before each socket operation; httpx's
transports (their stand-ins while a mock is active) get a network backend that does the
same. Either way every socket operation is capped by what is left of the bound. When a
capped operation times out, the bound records which deadline it was, so the shell
reports the route timeout or the per-try timeout, never the caller's own. The per-try
timer starts at the attempt's first write, as Envoy starts it once a connection is
ready. Time here is real (``time.monotonic``): sockets do not run on the mesh's clock.

Peer checks: right after a TLS handshake, the peer's certificate must name one of the
identities the connection expects (:func:`meshlib._transports._tls.verify_peer`); a
peer that does not is a connect failure, as Envoy's SAN check fails the handshake.
"""

from __future__ import annotations

import contextlib
import enum
import ssl
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from meshlib._transports._tls import PeerRejected, verify_peer

__all__ = [
    "Bound",
    "Expired",
    "bounded",
    "cap_current",
    "current_bound",
    "expire",
    "with_async_deadlines",
    "with_deadlines",
]

#: A capped operation gets at least this long: a zero timeout would make the socket
#: non-blocking and turn "too late" into a misleading connection error.
_FLOOR = 0.001


class Expired(enum.Enum):
    """Which deadline a capped operation ran into."""

    ROUTE = "route"
    PER_TRY = "per_try"


@dataclass(slots=True)
class Bound:
    """The deadlines of one attempt, in ``time.monotonic`` seconds.

    ``route`` is absolute; ``per_try`` a duration that starts at the first write.
    ``expired`` is set when a capped operation timed out.
    """

    route: float | None = None
    per_try: float | None = None
    try_started: float | None = None
    expired: Expired | None = None

    def started(self) -> None:
        """The attempt's request is going out: the per-try timer starts, once."""
        if self.try_started is None:
            self.try_started = time.monotonic()

    def hit(self, which: Expired | None) -> None:
        """A capped operation timed out: record the deadline that capped it, if any."""
        if which is not None:
            self.expired = which

    def cap(self, timeout: float | None) -> tuple[float | None, Expired | None]:
        """``timeout`` capped by the nearest deadline, and which deadline binds (if any)."""
        nearest, which = self.route, Expired.ROUTE
        if self.per_try is not None and self.try_started is not None:
            try_deadline = self.try_started + self.per_try
            if nearest is None or try_deadline < nearest:
                nearest, which = try_deadline, Expired.PER_TRY
        if nearest is None:
            return timeout, None
        left = max(nearest - time.monotonic(), _FLOOR)
        if timeout is not None and timeout <= left:
            return timeout, None
        return left, which


_BOUND: ContextVar[Bound | None] = ContextVar("meshlib_bound", default=None)

#: The current attempt's deadlines, for I/O that caps its own socket operations.
current_bound = _BOUND.get


def cap_current(timeout: float | None) -> tuple[Bound | None, float | None, Expired | None]:
    """``timeout`` capped by the current attempt's deadlines: the bound (None: no
    deadlines), the capped timeout, and which deadline binds (None: ``timeout`` does)."""
    bound = _BOUND.get()
    if bound is None:
        return None, timeout, None
    capped, which = bound.cap(timeout)
    return bound, capped, which


def expire(bound: Bound | None, which: Expired | None) -> None:
    """A capped operation timed out: tell ``bound`` (if any) which deadline it was."""
    if bound is not None:
        bound.hit(which)


_TIMEOUTS = (httpcore.ReadTimeout, httpcore.WriteTimeout, httpcore.ConnectTimeout)


class bounded:  # noqa: N801 - used as a context manager, like contextlib's
    """Run the attempt's I/O in this context under ``bound`` (None: no deadlines)."""

    __slots__ = ("_bound", "_token")

    def __init__(self, bound: Bound | None) -> None:
        self._bound = bound
        self._token: Token[Bound | None] | None = None

    def __enter__(self) -> Bound | None:
        if self._bound is not None or _BOUND.get() is not None:
            self._token = _BOUND.set(self._bound)
        return self._bound

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _BOUND.reset(self._token)


@contextlib.contextmanager
def _capped(timeout: float | None, *, writing: bool = False) -> Iterator[float | None]:
    """The timeout an operation gets; records the expiry when a capped one times out."""
    bound = _BOUND.get()
    if bound is None:
        yield timeout
        return
    if writing:
        bound.started()
    capped, which = bound.cap(timeout)
    try:
        yield capped
    except _TIMEOUTS:
        bound.hit(which)
        raise


# ------------------------------------------------------------------------------ sync


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    # read and write run for every request: _capped's steps, without a context manager.
    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        bound = _BOUND.get()
        if bound is None:  # no deadline
            return self._inner.read(max_bytes, timeout)
        capped, which = bound.cap(timeout)
        try:
            return self._inner.read(max_bytes, capped)
        except _TIMEOUTS:
            bound.hit(which)
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        bound = _BOUND.get()
        if bound is None:
            self._inner.write(buffer, timeout)
            return
        bound.started()
        capped, which = bound.cap(timeout)
        try:
            self._inner.write(buffer, capped)
        except _TIMEOUTS:
            bound.hit(which)
            raise

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        with _capped(timeout) as capped:
            stream = self._inner.start_tls(ssl_context, server_hostname, capped)
        try:
            verify_peer(stream.get_extra_info("ssl_object"))
        except PeerRejected as rejected:
            stream.close()
            raise httpcore.ConnectError(str(rejected)) from rejected
        return _Stream(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        with _capped(timeout) as capped:
            stream = self._inner.connect_tcp(host, port, capped, local_address, socket_options)
        return _Stream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        with _capped(timeout) as capped:
            stream = self._inner.connect_unix_socket(path, capped, socket_options)
        return _Stream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# ----------------------------------------------------------------------------- async


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        bound = _BOUND.get()
        capped, which = bound.cap(timeout) if bound is not None else (timeout, None)
        try:
            return await self._inner.read(max_bytes, capped)
        except _TIMEOUTS:
            if bound is not None:
                bound.hit(which)
            raise
        except ssl.SSLError as error:
            # httpcore's anyio backend lets a TLS alert through unmapped, so httpx would
            # raise it raw; map it as the sync backend does (to a read or write error).
            raise httpcore.ReadError(str(error)) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        bound = _BOUND.get()
        capped, which = timeout, None
        if bound is not None:
            bound.started()
            capped, which = bound.cap(timeout)
        try:
            await self._inner.write(buffer, capped)
        except _TIMEOUTS:
            if bound is not None:
                bound.hit(which)
            raise
        except ssl.SSLError as error:
            raise httpcore.WriteError(str(error)) from error

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with _capped(timeout) as capped:
            inner = await self._inner.start_tls(ssl_context, server_hostname, capped)
        try:
            verify_peer(inner.get_extra_info("ssl_object"))
        except PeerRejected as rejected:
            await inner.aclose()
            raise httpcore.ConnectError(str(rejected)) from rejected
        return _AsyncStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with _capped(timeout) as capped:
            stream = await self._inner.connect_tcp(
                host, port, capped, local_address, socket_options
            )
        return _AsyncStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with _capped(timeout) as capped:
            stream = await self._inner.connect_unix_socket(path, capped, socket_options)
        return _AsyncStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# -------------------------------------------------------------------------- install


def with_deadlines(transport: httpx.HTTPTransport) -> httpx.HTTPTransport:
    """``transport`` with its connection pool's sockets under the attempt's deadlines.

    httpx offers no public way to hand its pool a network backend, so the pool's backend
    is wrapped in place; should a future httpx move it, the transport is returned as is
    (per-operation timeouts still apply).
    """
    pool = getattr(transport, "_pool", None)
    inner = getattr(pool, "_network_backend", None)
    if isinstance(inner, httpcore.NetworkBackend):
        pool._network_backend = _Backend(inner)  # type: ignore[union-attr]
    return transport


def with_async_deadlines(transport: httpx.AsyncHTTPTransport) -> httpx.AsyncHTTPTransport:
    """The async twin of :func:`with_deadlines`."""
    pool = getattr(transport, "_pool", None)
    inner = getattr(pool, "_network_backend", None)
    if isinstance(inner, httpcore.AsyncNetworkBackend):
        pool._network_backend = _AsyncBackend(inner)  # type: ignore[union-attr]
    return transport
