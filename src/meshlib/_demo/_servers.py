"""Tiny Bookinfo stand-ins on loopback: each answers with its service and version.

A server can be made slow (``delay`` seconds per answer, or ``?delay=`` on a request),
failing (``status``) or flaky (``fail_every``), for the resilience steps.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

__all__ = ["DemoServer"]


class _QuietServer(ThreadingHTTPServer):
    """A client that gives up (a route timeout) is part of the story, not an error."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: the demo prints its own story."""


class DemoServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 playing one version of one service."""

    def __init__(
        self,
        service: str,
        version: str,
        *,
        status: int = 200,
        delay: float = 0.0,
        fail_every: int = 0,
    ) -> None:
        self.service = service
        self.version = version
        self.status = status
        self.fail_every = fail_every  # every n-th request answers 503
        self.delay = delay
        self.served = 0
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> DemoServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _count(self) -> int:
        with self._lock:
            self.served += 1
            return self.served

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                served = server._count()
                asked = parse_qs(urlsplit(self.path).query).get("delay", ["0"])[0]
                time.sleep(max(server.delay, float(asked)))
                body = json.dumps({"service": server.service, "version": server.version})
                flaky = server.fail_every and served % server.fail_every == 0
                self.send_response(503 if flaky else server.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_: object) -> None:
                """Quiet: the demo prints its own story."""

        return Handler
