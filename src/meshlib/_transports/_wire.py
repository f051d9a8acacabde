"""What both HTTP/1.1 pools do between httpx's objects and the codec, without I/O.

:mod:`._http11` (sockets) and :mod:`._async_http11` (anyio streams) differ only in how
they wait; turning an ``httpx.Request`` into bytes, a response head into an
``httpx.Response``, and the codec's errors into httpx's is the same for both, and lives
here once.
"""

from __future__ import annotations

import select
import socket
from typing import Any

import httpx

from meshlib._transports import _h1 as h1

__all__ = [
    "READ_SIZE",
    "Outgoing",
    "fallback_limits",
    "local_error",
    "outgoing",
    "port_of",
    "readable",
    "remote_error",
    "response",
]

#: The most one read takes from a socket.
READ_SIZE = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HTTP11 = b"HTTP/1.1"


class Outgoing:
    """A request ready for the wire: its head, its body's framing, its response's reader."""

    __slots__ = ("body", "head", "reader")

    def __init__(self, head: bytes, body: h1.RequestBody, reader: h1.ResponseReader) -> None:
        self.head, self.body, self.reader = head, body, reader


def outgoing(request: httpx.Request) -> Outgoing:
    """``request``'s head as bytes, and a reader for its response.

    Raises:
        httpx.LocalProtocolError: the request is not valid HTTP/1.1.
    """
    method = request.method.encode("ascii")
    try:
        head, body, close = h1.encode_request_head(
            method, request.url.raw_path, request.headers.raw
        )
    except h1.LocalProtocolError as error:
        raise httpx.LocalProtocolError(str(error)) from error
    return Outgoing(head, body, h1.ResponseReader(method == b"HEAD", keep_alive=not close))


def local_error(error: h1.LocalProtocolError) -> httpx.LocalProtocolError:
    """The httpx exception for a body that disagrees with its declared length."""
    return httpx.LocalProtocolError(str(error))


def remote_error(error: h1.RemoteProtocolError) -> httpx.RemoteProtocolError:
    """The httpx exception for a response that is not valid HTTP/1.1."""
    return httpx.RemoteProtocolError(str(error))


def response(
    head: h1.Response, stream: httpx.SyncByteStream | httpx.AsyncByteStream, network: Any
) -> httpx.Response:
    """The ``httpx.Response`` for ``head``, its body coming from ``stream``, with the
    extensions httpcore gives its responses."""
    return httpx.Response(
        head.status_code,
        headers=head.headers,
        stream=stream,
        extensions={
            "http_version": _HTTP11,
            "reason_phrase": head.reason,
            "network_stream": network,
        },
    )


def port_of(url: httpx.URL) -> int:
    """The port to connect to: the URL's, else the scheme's default."""
    return url.port or _DEFAULT_PORTS.get(url.scheme, 80)


def fallback_limits(keepalive_expiry: float) -> httpx.Limits:
    """The limits of the httpx transport a pool stands aside for while a mock is active:
    no caps (the mesh's circuit breakers count), the pool's own keep-alive expiry."""
    return httpx.Limits(
        max_connections=None, max_keepalive_connections=None, keepalive_expiry=keepalive_expiry
    )


def readable(sock: socket.socket) -> bool:
    """Has the peer sent anything (or closed) on ``sock``, which nobody reads now? A
    closed socket counts as readable: it cannot be reused either.

    ``poll`` where there is one, as httpcore does: ``select`` refuses descriptors past
    1024, which a busy process reaches.
    """
    if sock.fileno() < 0:
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])  # pragma: no cover - Windows
