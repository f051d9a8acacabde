"""The sync shell's default inner transport: one endpoint's HTTP/1.1 keep-alive pool.

Why not ``httpx.HTTPTransport``: meshlib has already chosen the endpoint, and its circuit
breakers count and cap the connections (``connectionPool``), so the inner pool has no
routing, limits or queueing left to do. httpcore's general-purpose pool does all three
for every request, and on loopback that was most of what meshlib added to plain httpx.
This pool keeps only what is left: idle connections, reused most recent first.

The wire protocol is meshlib's HTTP/1.1 codec (:mod:`._h1`), which keeps h11's grammar
and framing rules, so what goes out and what is accepted are those of httpx. The rest is
kept to httpcore's behaviour, step for step:

- a kept-alive connection is reused only if it sat idle less than the keep-alive expiry
  (the cluster's ``connectionPool.http.idleTimeout``, else 5 s as in httpx) and the peer
  has not closed it meanwhile (the socket is not readable);
- ``TCP_NODELAY`` on every socket; TLS with the upstream's context and SNI (the
  ``sni_hostname`` extension, else the URL's host), then meshlib's SAN check of the peer;
- a write error while sending the request is set aside to read the response, since a
  server may answer early (a 413) and close;
- the same httpx exceptions for the same socket and protocol errors, with the socket
  error as the cause (Envoy's ``transport failure reason`` is read from it);
- every socket operation under the caller's per-operation timeouts, capped by the
  attempt's deadlines (:mod:`._deadline`);
- the ``trace`` extension hears httpcore's ``connection.connect_tcp.*`` and
  ``connection.start_tls.*`` events; responses carry ``http_version``,
  ``reason_phrase`` and a ``network_stream`` that answers ``get_extra_info``.

There is no pool timeout: a request never waits for a connection (the mesh's circuit
breakers do the waiting, :class:`meshlib._core._actions.WaitForConnection`).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from meshlib._transports import _h1 as h1
from meshlib._transports._common import default_ssl_context
from meshlib._transports._deadline import cap_current, current_bound, expire, with_deadlines
from meshlib._transports._patched import send_path_replaced
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

__all__ = ["Http11Transport"]


Trace = Callable[[str, Mapping[str, Any]], None]


class Http11Transport(httpx.BaseTransport):
    """An httpx transport for one upstream endpoint: HTTP/1.1 over a keep-alive pool.

    ``ssl_context`` is used for ``https`` URLs (the endpoint's TLS, or the mesh's mTLS);
    ``keepalive_expiry`` is how long a connection may sit idle and still be reused.
    Safe to share between threads.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext | None = None, keepalive_expiry: float = 5.0
    ) -> None:
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._fallback: httpx.HTTPTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on an idle or new connection; the body streams from it."""
        if send_path_replaced():
            return self._through_httpx().handle_request(request)
        timeouts: Mapping[str, float | None] = request.extensions.get("timeout") or {}
        connection = self._reused() or self._connect(request, timeouts)
        read_timeout = timeouts.get("read")
        try:
            reader = _send_request(connection, request, timeouts.get("write"))
            head = _receive_head(connection, reader, read_timeout)
        except BaseException:
            self.discard(connection)
            raise
        body = _ResponseBody(self, connection, reader, read_timeout)
        return response(head, body, connection.stream)

    def close(self) -> None:
        """Close every connection, idle or in use, as httpx's pool does."""
        with self._lock:
            self._closed, open_now, self._idle = True, list(self._open), []
            self._open.clear()
            fallback, self._fallback = self._fallback, None
        for connection in open_now:
            connection.close()
        if fallback is not None:
            fallback.close()

    def _through_httpx(self) -> httpx.HTTPTransport:
        """httpx's own transport for this endpoint, for while a mock replaces its send
        path (:mod:`._patched`)."""
        with self._lock:
            if self._fallback is None:
                limits = fallback_limits(self._keepalive_expiry)
                transport = httpx.HTTPTransport(verify=self._tls_context(), limits=limits)
                self._fallback = with_deadlines(transport)
            return self._fallback

    # ------------------------------------------------------------------ the pool

    def _reused(self) -> _Connection | None:
        """The most recently used idle connection still fit for a request, if any."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            if connection.reusable(time.monotonic() - self._keepalive_expiry):
                return connection
            self.discard(connection)

    def release(self, connection: _Connection, reusable: bool) -> None:
        """Take ``connection`` back after a complete exchange, or close it."""
        if reusable:
            connection.idle_since = time.monotonic()
            with self._lock:
                if not self._closed:
                    self._idle.append(connection)
                    return
        self.discard(connection)

    def discard(self, connection: _Connection) -> None:
        """Close ``connection`` for good."""
        with self._lock:
            self._open.discard(connection)
        connection.close()

    def _connect(
        self, request: httpx.Request, timeouts: Mapping[str, float | None]
    ) -> _Connection:
        url = request.url
        port = port_of(url)
        trace: Trace | None = request.extensions.get("trace")
        timeout = timeouts.get("connect")
        sock = _connect_tcp(url.host, port, timeout, trace)
        if url.scheme == "https":
            server_name = request.extensions.get("sni_hostname") or url.host
            sock = _start_tls(sock, self._tls_context(), server_name, timeout, trace)
        connection = _Connection(sock)
        with self._lock:
            self._open.add(connection)
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        """The upstream's context, else httpx's default one (built once per process)."""
        return self._ssl_context or default_ssl_context()


class _Connection:
    """One socket to the endpoint, and since when it has been idle."""

    __slots__ = ("idle_since", "sock", "stream")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.idle_since = 0.0
        self.stream = NetworkStream(sock)

    def reusable(self, idle_after: float) -> bool:
        """Idle since after ``idle_after``, and not closed (or written to) by the peer."""
        return self.idle_since >= idle_after and not self.stream.get_extra_info("is_readable")

    def close(self) -> None:
        """Close the socket (closing twice is harmless)."""
        with contextlib.suppress(OSError):  # a socket the kernel already dropped
            self.sock.close()


class NetworkStream:
    """The ``network_stream`` response extension: the connection's socket facts."""

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def get_extra_info(self, info: str) -> Any:
        """``ssl_object``, ``client_addr``, ``server_addr``, ``socket`` or ``is_readable``
        (as httpcore's streams answer them); None for anything else."""
        sock = self._sock
        if info == "is_readable":
            return (isinstance(sock, ssl.SSLSocket) and sock.pending() > 0) or readable(sock)
        if info == "ssl_object":
            return sock if isinstance(sock, ssl.SSLSocket) else None
        if info == "client_addr":
            return sock.getsockname()
        if info == "server_addr":
            return sock.getpeername()
        if info == "socket":
            return sock
        return None


# --------------------------------------------------------------------- connecting


def _connect_tcp(
    host: str, port: int, timeout: float | None, trace: Trace | None
) -> socket.socket:
    bound, capped, which = cap_current(timeout)
    if trace is not None:
        trace(
            "connection.connect_tcp.started",
            {
                "host": host,
                "port": port,
                "local_address": None,
                "timeout": capped,
                "socket_options": None,
            },
        )
    try:
        sock = socket.create_connection((host, port), capped)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as error:
        if trace is not None:
            trace("connection.connect_tcp.failed", {"exception": error})
        if isinstance(error, TimeoutError):
            expire(bound, which)
            raise httpx.ConnectTimeout(str(error) or "timed out") from error
        raise httpx.ConnectError(str(error)) from error
    if trace is not None:
        trace("connection.connect_tcp.complete", {"return_value": sock})
    return sock


def _start_tls(
    sock: socket.socket,
    context: ssl.SSLContext,
    server_name: str,
    timeout: float | None,
    trace: Trace | None,
) -> ssl.SSLSocket:
    bound, capped, which = cap_current(timeout)
    if trace is not None:
        trace(
            "connection.start_tls.started",
            {"ssl_context": context, "server_hostname": server_name, "timeout": capped},
        )
    tls: ssl.SSLSocket | None = None
    try:
        sock.settimeout(capped)
        tls = context.wrap_socket(sock, server_hostname=server_name)
        verify_peer(tls)
    except OSError as error:  # ssl.SSLError and PeerRejected included
        (tls or sock).close()
        if trace is not None:
            trace("connection.start_tls.failed", {"exception": error})
        if isinstance(error, TimeoutError):
            expire(bound, which)
            raise httpx.ConnectTimeout(str(error) or "timed out") from error
        raise httpx.ConnectError(str(error)) from error
    if trace is not None:
        trace("connection.start_tls.complete", {"return_value": tls})
    return tls


# ------------------------------------------------------------------- the exchange


def _send_request(
    connection: _Connection, request: httpx.Request, timeout: float | None
) -> h1.ResponseReader:
    """Write the request head and body; a write error is set aside (see module doc).
    Returns the reader for its response."""
    out = outgoing(request)
    stream, sock, body = request.stream, connection.sock, out.body
    try:
        if isinstance(stream, httpx.ByteStream):  # the whole body at hand: one write
            _write(sock, out.head + body.encode(b"".join(stream)) + body.end(), timeout)
            return out.reader
        _write(sock, out.head, timeout)
        for chunk in stream:  # type: ignore[union-attr]
            if chunk:
                _write(sock, body.encode(chunk), timeout)
        _write(sock, body.end(), timeout)
    except httpx.WriteError:
        out.reader.keep_alive = False  # as httpcore: the server may have answered and closed
    except h1.LocalProtocolError as error:  # the body's length disagrees with its header
        raise local_error(error) from error
    return out.reader


def _receive_head(
    connection: _Connection, reader: h1.ResponseReader, timeout: float | None
) -> h1.Response:
    """Read up to the final response's head (interim 1xx responses are skipped)."""
    while True:
        try:
            head = reader.next_head()
        except h1.RemoteProtocolError as error:
            raise remote_error(error) from error
        if head is not None:
            return head
        reader.receive(_read(connection.sock, timeout))


class _ResponseBody(httpx.SyncByteStream):
    """The response body as it arrives; the connection goes back to the pool at its end,
    or is closed when the body is closed before its end."""

    def __init__(
        self,
        pool: Http11Transport,
        connection: _Connection,
        reader: h1.ResponseReader,
        timeout: float | None,
    ) -> None:
        self._pool = pool
        self._connection: _Connection | None = connection
        self._reader = reader
        self._timeout = timeout

    def __iter__(self) -> Iterator[bytes]:
        connection, reader = self._connection, self._reader
        if connection is None:
            return
        try:
            while True:
                data = reader.next_body()
                if data is None:
                    reader.receive(_read(connection.sock, self._timeout))
                elif data:
                    yield data
                else:  # h1.END
                    break
        except h1.RemoteProtocolError as error:
            self.close()
            raise httpx.RemoteProtocolError(str(error)) from error
        except BaseException:
            self.close()
            raise
        self._connection = None
        self._pool.release(connection, reader.reusable)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool.discard(connection)


# ---------------------------------------------------------------------- socket I/O


def _read(sock: socket.socket, timeout: float | None) -> bytes:
    bound, timeout, which = cap_current(timeout)
    try:
        sock.settimeout(timeout)
        return sock.recv(READ_SIZE)
    except TimeoutError as error:
        expire(bound, which)
        raise httpx.ReadTimeout(str(error) or "timed out") from error
    except OSError as error:
        raise httpx.ReadError(str(error)) from error


def _write(sock: socket.socket, data: bytes, timeout: float | None) -> None:
    bound = current_bound()
    which = None
    if bound is not None:
        bound.started()
        timeout, which = bound.cap(timeout)
    try:
        sock.settimeout(timeout)
        sock.sendall(data)
    except TimeoutError as error:
        expire(bound, which)
        raise httpx.WriteTimeout(str(error) or "timed out") from error
    except OSError as error:
        raise httpx.WriteError(str(error)) from error
