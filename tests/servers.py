"""Real HTTP servers on loopback for integration tests: they start and stop themselves.

Each :class:`LocalServer` listens on 127.0.0.1 (a free port), answers every request with
what its ``behaviour`` says, and records what it saw (method, path, headers, body) so
tests can assert on the wire, not on meshlib's own account.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Seen:
    """One request as the server received it, and the client port it came from."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int = 0


@dataclass
class Answer:
    """What to answer: status, headers, body; optionally after a delay, or reset instead.

    ``trickle`` sends the response head one line at a time, that many seconds apart (a
    slow upstream whose every read arrives well within a read timeout).
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    trickle: float = 0.0


Behaviour = Callable[[Seen], Answer]


class _QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-exchange (a timeout, a reset) is no server error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalServer:
    """A threaded HTTP/1.1 keep-alive server on 127.0.0.1."""

    def __init__(self, name: str, behaviour: Behaviour | None = None) -> None:
        self.name = name
        self.behaviour = behaviour or (lambda seen: Answer(body=self.default_body(seen)))
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def default_body(self, seen: Seen) -> bytes:
        """The default answer: the server's name and the request it saw, as JSON."""
        return json.dumps(
            {"server": self.name, "path": seen.path, "headers": seen.headers}
        ).encode()

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: tests read ``seen`` instead of logs."""

            def setup(self) -> None:
                super().setup()
                # Headers and body go out as two writes: without TCP_NODELAY, Nagle's
                # algorithm and delayed ACKs stall every response by ~40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    self.client_address[1],
                )
                server.record(seen)
                try:
                    answer = server.behaviour(seen)
                    if answer.delay:
                        time.sleep(answer.delay)
                    if answer.reset:
                        self.connection.setsockopt(
                            socket.SOL_SOCKET,
                            socket.SO_LINGER,
                            b"\x01\x00\x00\x00\x00\x00\x00\x00",
                        )
                        self.connection.close()
                        self.close_connection = True
                        return
                    if answer.trickle:
                        self._trickle(answer)
                    else:
                        self.send_response(answer.status)
                        for name, value in answer.headers.items():
                            self.send_header(name, value)
                        self.send_header("content-length", str(len(answer.body)))
                        self.end_headers()
                    self.wfile.write(answer.body)
                finally:
                    server.done()

            def _trickle(self, answer: Answer) -> None:
                lines = [f"HTTP/1.1 {answer.status} {self.responses[answer.status][0]}"]
                lines += [f"{name}: {value}" for name, value in answer.headers.items()]
                lines += [f"content-length: {len(answer.body)}", ""]
                for number, line in enumerate(lines):
                    if number:
                        time.sleep(answer.trickle)
                    self.wfile.write(f"{line}\r\n".encode())

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve  # noqa: N815

        return Handler


@contextmanager
def serving(*servers: LocalServer) -> Iterator[tuple[LocalServer, ...]]:
    """Run ``servers`` for the duration of the block."""
    for server in servers:
        server.start()
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
