"""The async shell's default inner transport: one endpoint's HTTP/1.1 keep-alive pool, on
asyncio and trio alike (through anyio).

The twin of :mod:`._http11`, with the same codec (:mod:`._h1`) and the same rules: reuse
of idle connections most recent first, within the keep-alive expiry and only while the
peer has not closed them; a write error set aside to read an early answer; httpx's
exceptions with the underlying error as their cause; every socket operation under the
caller's per-operation timeouts capped by the attempt's deadlines; TLS with the
upstream's context and SNI, then meshlib's SAN check of the peer. The exceptions are
those httpcore's anyio backend maps (a TLS alert read mid-exchange is a read or write
error, as :mod:`._deadline` makes it for httpx's transports).

Socket operations take a ``time_limit`` (httpx's per-operation timeout, in seconds), as
httpcore's network streams take theirs; the limit becomes a cancel scope around the one
operation. A connection whose exchange is cut short (an error, a cancellation, a body closed early)
is closed inside a shielded cancel scope, so a cancelled task never leaves a socket
behind.
"""

from __future__ import annotations

import inspect
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import anyio
import httpx
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.tls import TLSAttribute, TLSStream

from meshlib._transports import _h1 as h1
from meshlib._transports._common import default_ssl_context
from meshlib._transports._deadline import (
    cap_current,
    current_bound,
    expire,
    with_async_deadlines,
)
from meshlib._transports._patched import async_send_path_replaced
from meshlib._transports._tls import verify_peer
from meshlib._transports._wire import (
    READ_SIZE,
    fallback_limits,
    local_error,
    outgoing,
    port_of,
    readable,
    remote_error,
    response,
)

__all__ = ["AsyncHttp11Transport"]


#: What a read or a write may raise, besides a timeout: the peer reset or closed the
#: connection, a TLS alert, or a socket error.
_BROKEN = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class AsyncHttp11Transport(httpx.AsyncBaseTransport):
    """An httpx async transport for one upstream endpoint: HTTP/1.1 over a keep-alive
    pool. ``ssl_context`` and ``keepalive_expiry`` as for the sync twin."""

    def __init__(
        self, ssl_context: ssl.SSLContext | None = None, keepalive_expiry: float = 5.0
    ) -> None:
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._closed = False
        self._fallback: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on an idle or new connection; the body streams from it."""
        if async_send_path_replaced():
            return await self._through_httpx().handle_async_request(request)
        timeouts: Mapping[str, float | None] = request.extensions.get("timeout") or {}
        connection = await self._reused() or await self._connect(request, timeouts)
        read_timeout = timeouts.get("read")
        try:
            reader = await _send_request(connection, request, timeouts.get("write"))
            head = await _receive_head(connection, reader, read_timeout)
        except BaseException:
            await self.discard(connection)
            raise
        body = _ResponseBody(self, connection, reader, read_timeout)
        return response(head, body, connection.network_stream)

    async def aclose(self) -> None:
        """Close every connection, idle or in use, as httpx's pool does."""
        self._closed, open_now, self._idle = True, list(self._open), []
        self._open.clear()
        fallback, self._fallback = self._fallback, None
        for connection in open_now:
            await connection.aclose()
        if fallback is not None:
            await fallback.aclose()

    def _through_httpx(self) -> httpx.AsyncHTTPTransport:
        """httpx's own transport for this endpoint, while a mock replaces its send path."""
        if self._fallback is None:
            limits = fallback_limits(self._keepalive_expiry)
            transport = httpx.AsyncHTTPTransport(verify=self._tls_context(), limits=limits)
            self._fallback = with_async_deadlines(transport)
        return self._fallback

    # ------------------------------------------------------------------ the pool

    async def _reused(self) -> _Connection | None:
        """The most recently used idle connection still fit for a request, if any."""
        idle_after = time.monotonic() - self._keepalive_expiry
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable(idle_after):
                return connection
            await self.discard(connection)
        return None

    def release(self, connection: _Connection, reusable: bool) -> bool:
        """Take ``connection`` back after a complete exchange; False: close it."""
        if not reusable or self._closed:
            return False
        connection.idle_since = time.monotonic()
        self._idle.append(connection)
        return True

    async def discard(self, connection: _Connection) -> None:
        """Close ``connection`` for good."""
        self._open.discard(connection)
        await connection.aclose()

    async def _connect(
        self, request: httpx.Request, timeouts: Mapping[str, float | None]
    ) -> _Connection:
        url = request.url
        port = port_of(url)
        trace = request.extensions.get("trace")
        connect = timeouts.get("connect")
        stream: ByteStream = await _connect_tcp(url.host, port, connect, trace)
        if url.scheme == "https":
            server_name = request.extensions.get("sni_hostname") or url.host
            stream = await _start_tls(stream, self._tls_context(), server_name, connect, trace)
        connection = _Connection(stream)
        self._open.add(connection)
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        """The upstream's context, else httpx's default one (built once per process)."""
        return self._ssl_context or default_ssl_context()


class _Connection:
    """One stream to the endpoint, and since when it has been idle."""

    __slots__ = ("idle_since", "network_stream", "stream")

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.idle_since = 0.0
        self.network_stream = AsyncNetworkStream(stream)

    def reusable(self, idle_after: float) -> bool:
        """Idle since after ``idle_after``, and not closed (or written to) by the peer."""
        return self.idle_since >= idle_after and not self.network_stream.get_extra_info(
            "is_readable"
        )

    async def aclose(self) -> None:
        """Close the stream, even in a cancelled task (closing twice is harmless)."""
        with anyio.CancelScope(shield=True):
            try:
                await self.stream.aclose()
            except (*_BROKEN, ssl.SSLError):
                pass  # the peer went first


class AsyncNetworkStream:
    """The ``network_stream`` response extension: the connection's socket facts."""

    __slots__ = ("_stream",)

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream

    def get_extra_info(self, info: str) -> Any:
        """``ssl_object``, ``client_addr``, ``server_addr``, ``socket`` or ``is_readable``
        (as httpcore's streams answer them); None for anything else."""
        stream = self._stream
        if info == "is_readable":
            sock = stream.extra(SocketAttribute.raw_socket, None)
            tls = stream.extra(TLSAttribute.ssl_object, None)
            if sock is None or (tls is not None and tls.pending() > 0):
                return True
            return readable(sock)
        if info == "ssl_object":
            return stream.extra(TLSAttribute.ssl_object, None)
        if info == "client_addr":
            return stream.extra(SocketAttribute.local_address, None)
        if info == "server_addr":
            return stream.extra(SocketAttribute.remote_address, None)
        if info == "socket":
            return stream.extra(SocketAttribute.raw_socket, None)
        return None


# --------------------------------------------------------------------- connecting


async def _traced(trace: Callable[..., Any] | None, name: str, info: Mapping[str, Any]) -> None:
    """Tell a ``trace`` extension (plain or async, as httpcore allows) about a step."""
    if trace is not None:
        result = trace(name, info)
        if inspect.isawaitable(result):
            await result


async def _connect_tcp(
    host: str, port: int, time_limit: float | None, trace: Callable[..., Any] | None
) -> ByteStream:
    bound, capped, which = cap_current(time_limit)
    info = {"host": host, "port": port, "local_address": None, "timeout": capped}
    await _traced(trace, "connection.connect_tcp.started", {**info, "socket_options": None})
    try:
        with anyio.fail_after(capped):
            stream = await anyio.connect_tcp(host, port)
        sock = stream.extra(SocketAttribute.raw_socket)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except TimeoutError as error:
        await _traced(trace, "connection.connect_tcp.failed", {"exception": error})
        expire(bound, which)
        raise httpx.ConnectTimeout(str(error) or "timed out") from error
    except (*_BROKEN, anyio.EndOfStream) as error:
        await _traced(trace, "connection.connect_tcp.failed", {"exception": error})
        raise httpx.ConnectError(str(error)) from error
    await _traced(trace, "connection.connect_tcp.complete", {"return_value": stream})
    return stream


async def _start_tls(
    stream: ByteStream,
    context: ssl.SSLContext,
    server_name: str,
    time_limit: float | None,
    trace: Callable[..., Any] | None,
) -> TLSStream:
    bound, capped, which = cap_current(time_limit)
    info = {"ssl_context": context, "server_hostname": server_name, "timeout": capped}
    await _traced(trace, "connection.start_tls.started", info)
    try:
        with anyio.fail_after(capped):
            tls = await TLSStream.wrap(
                stream, hostname=server_name, ssl_context=context, standard_compatible=False
            )
        verify_peer(tls.extra(TLSAttribute.ssl_object))
    except BaseException as error:
        with anyio.CancelScope(shield=True):
            await stream.aclose()
        if not isinstance(error, (TimeoutError, *_BROKEN, anyio.EndOfStream, ssl.SSLError)):
            raise
        await _traced(trace, "connection.start_tls.failed", {"exception": error})
        if isinstance(error, TimeoutError):
            expire(bound, which)
            raise httpx.ConnectTimeout(str(error) or "timed out") from error
        raise httpx.ConnectError(str(error)) from error
    await _traced(trace, "connection.start_tls.complete", {"return_value": tls})
    return tls


# ------------------------------------------------------------------- the exchange


async def _send_request(
    connection: _Connection, request: httpx.Request, time_limit: float | None
) -> h1.ResponseReader:
    """Write the request head and body; a write error is set aside (see the sync twin).
    Returns the reader for its response."""
    out = outgoing(request)
    stream, sink, body = request.stream, connection.stream, out.body
    try:
        if isinstance(stream, httpx.ByteStream):  # the whole body at hand: one write
            await _write(sink, out.head + body.encode(b"".join(stream)) + body.end(), time_limit)
            return out.reader
        await _write(sink, out.head, time_limit)
        chunks = stream.__aiter__()  # type: ignore[union-attr]
        try:
            async for chunk in chunks:
                if chunk:
                    await _write(sink, body.encode(chunk), time_limit)
        finally:  # finalise an async generator now, not when it is collected
            finalise = getattr(chunks, "aclose", None)
            if finalise is not None:
                await finalise()
        await _write(sink, body.end(), time_limit)
    except httpx.WriteError:
        out.reader.keep_alive = False  # as httpcore: the server may have answered and closed
    except h1.LocalProtocolError as error:  # the body's length disagrees with its header
        raise local_error(error) from error
    return out.reader


async def _receive_head(
    connection: _Connection, reader: h1.ResponseReader, time_limit: float | None
) -> h1.Response:
    """Read up to the final response's head (interim 1xx responses are skipped)."""
    while True:
        try:
            head = reader.next_head()
        except h1.RemoteProtocolError as error:
            raise remote_error(error) from error
        if head is not None:
            return head
        reader.receive(await _read(connection.stream, time_limit))


class _ResponseBody(httpx.AsyncByteStream):
    """The response body as it arrives; the connection goes back to the pool at its end,
    or is closed when the body is closed before its end."""

    def __init__(
        self,
        pool: AsyncHttp11Transport,
        connection: _Connection,
        reader: h1.ResponseReader,
        read_timeout: float | None,
    ) -> None:
        self._pool = pool
        self._connection: _Connection | None = connection
        self._reader = reader
        self._timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection, reader = self._connection, self._reader
        if connection is None:
            return
        try:
            while True:
                data = reader.next_body()
                if data is None:
                    reader.receive(await _read(connection.stream, self._timeout))
                elif data:
                    yield data
                else:  # h1.END
                    break
        except h1.RemoteProtocolError as error:
            await self.aclose()
            raise httpx.RemoteProtocolError(str(error)) from error
        except BaseException:
            await self.aclose()
            raise
        self._connection = None
        if not self._pool.release(connection, reader.reusable):
            await self._pool.discard(connection)

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._pool.discard(connection)


# ---------------------------------------------------------------------- socket I/O


async def _read(stream: ByteStream, time_limit: float | None) -> bytes:
    bound, time_limit, which = cap_current(time_limit)
    try:
        if time_limit is None:
            return await stream.receive(READ_SIZE)
        with anyio.fail_after(time_limit):
            return await stream.receive(READ_SIZE)
    except anyio.EndOfStream:
        return b""
    except TimeoutError as error:
        expire(bound, which)
        raise httpx.ReadTimeout(str(error) or "timed out") from error
    except (*_BROKEN, ssl.SSLError) as error:
        raise httpx.ReadError(str(error)) from error


async def _write(stream: ByteStream, data: bytes, time_limit: float | None) -> None:
    if not data:
        return
    bound = current_bound()
    which = None
    if bound is not None:
        bound.started()
        time_limit, which = bound.cap(time_limit)
    try:
        if time_limit is None:
            await stream.send(data)
            return
        with anyio.fail_after(time_limit):
            await stream.send(data)
    except TimeoutError as error:
        expire(bound, which)
        raise httpx.WriteTimeout(str(error) or "timed out") from error
    except (*_BROKEN, ssl.SSLError) as error:
        raise httpx.WriteError(str(error)) from error
