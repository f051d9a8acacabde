"""HTTP/1.1 over one byte stream with ``h11``, running an ASGI 3 application.

One :class:`HttpConnection` per accepted connection: requests in turn (keep-alive, no
pipelining in parallel), request bodies streamed to ``receive()``, responses streamed
from ``send()`` (chunked when the application gives no ``content-length``), ``Expect:
100-continue`` answered when the application first asks for the body. The scope follows
the ASGI HTTP spec 2.4: ``send()`` raises :class:`ClientDisconnectedError` (an ``OSError``)
once the client is gone, and ``receive()`` returns ``http.disconnect`` after the body,
once the response is complete or the connection lost.
"""

from __future__ import annotations

import http
import logging
from typing import Any
from urllib.parse import unquote

import anyio
import h11
from anyio.abc import ByteStream

from meshlib.server._asgi import ASGIApp, Message, Scope

__all__ = ["ClientDisconnectedError", "HttpConnection"]

logger = logging.getLogger("meshlib.server")

_READ_SIZE = 65536
_MAX_DRAIN = 1 << 20  # unread request body worth reading to keep the connection
_STREAM_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class ClientDisconnectedError(OSError):
    """The client went away before the response was complete."""


class HttpConnection:
    """Serves HTTP/1.1 requests from ``stream`` to ``app`` until either side closes."""

    def __init__(
        self,
        stream: ByteStream,
        app: ASGIApp,
        *,
        scheme: str,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        extensions: dict[str, Any],
        keepalive_timeout: float,
    ) -> None:
        self.stream = stream
        self.app = app
        self.conn = h11.Connection(h11.SERVER)
        self.scheme, self.client, self.server = scheme, client, server
        self.extensions = extensions
        self.keepalive_timeout = keepalive_timeout
        self.lost = False

    async def run(self) -> None:
        """Serve requests until the connection closes, idles out or breaks."""
        while True:
            try:
                with anyio.fail_after(self.keepalive_timeout):
                    event = await self.next_event()
            except TimeoutError:
                return
            except h11.RemoteProtocolError as error:
                await self._bad_request(error)
                return
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed, or nothing more to serve
            await self._serve(event)
            if not await self._next_cycle():
                return

    async def next_event(self) -> Any:
        """The next h11 event, reading from the stream as needed."""
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.stream.receive(_READ_SIZE)
            except (anyio.EndOfStream, *_STREAM_ERRORS):
                data = b""
            self.conn.receive_data(data)

    async def write(self, event: Any) -> None:
        """Send one h11 event; a lost connection raises :class:`ClientDisconnectedError`."""
        if self.lost:
            raise ClientDisconnectedError("the client closed the connection")
        data = self.conn.send(event)
        if not data:
            return
        try:
            await self.stream.send(data)
        except _STREAM_ERRORS as error:
            self.lost = True
            raise ClientDisconnectedError("the client closed the connection") from error

    async def _serve(self, request: h11.Request) -> None:
        exchange = _Exchange(self, request)
        try:
            await self.app(self._scope(request), exchange.receive, exchange.send)
        except ClientDisconnectedError:
            return
        except Exception:
            logger.exception("the ASGI application raised an exception")
        else:
            if exchange.started:
                return
            logger.error("the ASGI application returned without a response")
        if not exchange.started and not self.lost:
            await exchange.fail()

    def _scope(self, request: h11.Request) -> Scope:
        path, _, query = bytes(request.target).partition(b"?")
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": request.http_version.decode("ascii"),
            "method": request.method.decode("ascii"),
            "scheme": self.scheme,
            "path": unquote(path.decode("latin-1")),
            "raw_path": path,
            "query_string": query,
            "root_path": "",
            "headers": [(bytes(name), bytes(value)) for name, value in request.headers],
            "client": self.client,
            "server": self.server,
            "extensions": {key: dict(value) for key, value in self.extensions.items()},
        }

    async def _next_cycle(self) -> bool:
        """Whether the connection can carry another request; reads an unread body."""
        if self.lost or self.conn.our_state is not h11.DONE:
            return False
        drained = 0
        try:
            with anyio.fail_after(self.keepalive_timeout):
                while self.conn.their_state is h11.SEND_BODY and drained <= _MAX_DRAIN:
                    event = await self.next_event()
                    if isinstance(event, h11.Data):
                        drained += len(event.data)
                    elif not isinstance(event, h11.EndOfMessage):
                        return False
        except (TimeoutError, h11.RemoteProtocolError):
            return False
        if self.conn.their_state is not h11.DONE:
            return False
        self.conn.start_next_cycle()
        return True

    async def _bad_request(self, error: h11.RemoteProtocolError) -> None:
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = http.HTTPStatus(error.error_status_hint).phrase.encode()
        headers = [
            (b"content-type", b"text/plain"),
            (b"content-length", b"%d" % len(body)),
            (b"connection", b"close"),
        ]
        try:
            status = error.error_status_hint
            await self.write(
                h11.Response(status_code=status, headers=headers, reason=_reason(status))
            )
            await self.write(h11.Data(data=body))
            await self.write(h11.EndOfMessage())
        except (ClientDisconnectedError, h11.LocalProtocolError):
            pass


class _Exchange:
    """The ``receive`` and ``send`` of one request."""

    def __init__(self, connection: HttpConnection, request: h11.Request) -> None:
        self.connection = connection
        self.head = request.method == b"HEAD"
        self.started = self.complete = self.body_done = False
        self.finished = anyio.Event()  # the response is complete, or the connection lost

    async def receive(self) -> Message:
        if self.body_done or self.connection.lost:
            await self.finished.wait()
            return {"type": "http.disconnect"}
        connection = self.connection
        if connection.conn.they_are_waiting_for_100_continue:
            await self._guarded(
                h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
            )
        try:
            event = await connection.next_event()
        except h11.RemoteProtocolError:
            event = None
        if isinstance(event, h11.Data):
            return {"type": "http.request", "body": bytes(event.data), "more_body": True}
        if isinstance(event, h11.EndOfMessage):
            self.body_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        connection.lost = True
        self.finished.set()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self.started = True
            status = int(message["status"])
            headers = [(bytes(name), bytes(value)) for name, value in message.get("headers", ())]
            await self._guarded(
                h11.Response(status_code=status, headers=headers, reason=_reason(status))
            )
        elif kind == "http.response.body":
            if not self.started or self.complete:
                raise RuntimeError("http.response.body outside a response")
            body = bytes(message.get("body", b""))
            if body and not self.head:
                await self._guarded(h11.Data(data=body))
            if not message.get("more_body", False):
                await self._guarded(h11.EndOfMessage())
                self.complete = True
                self.finished.set()
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r}")

    async def _guarded(self, event: Any) -> None:
        try:
            await self.connection.write(event)
        except ClientDisconnectedError:
            self.finished.set()
            raise

    async def fail(self) -> None:
        """Answer 500 when the application gave no response."""
        body = b"Internal Server Error"
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
        try:
            await self.send({"type": "http.response.start", "status": 500, "headers": headers})
            await self.send({"type": "http.response.body", "body": body})
        except (ClientDisconnectedError, h11.LocalProtocolError):
            self.connection.lost = True


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
