"""meshlib's own HTTP/1.1 pools (the shells' default inner transports), on the wire.

Each test scripts a raw loopback server byte for byte, so what is proved is the pools'
own behaviour: keep-alive reuse and its limits, framing, the httpx exceptions they
raise, and their hand-over to httpx's transports while a mock replaces httpx's send
path. Every scenario runs through the sync pool and the async pool on asyncio and trio.
"""

from __future__ import annotations

import functools
import os
import resource
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import anyio
import httpcore
import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from meshlib._transports._async_http11 import AsyncHttp11Transport
from meshlib._transports._common import transport_failure
from meshlib._transports._http11 import Http11Transport
from meshlib._transports._patched import async_send_path_replaced, send_path_replaced
from meshlib._transports._wire import readable

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
T = TypeVar("T")

Script = Callable[[socket.socket, int], None]


class ScriptedServer:
    """A loopback server that runs ``script(connection, index)`` on every connection."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self.connections = 0
        self.received: list[bytes] = []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._serving = threading.Thread(target=self._serve, daemon=True)
        self._serving.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            index, self.connections = self.connections, self.connections + 1
            thread = threading.Thread(target=self._run, args=(conn, index), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket, index: int) -> None:
        conn.settimeout(2.0)
        with conn, suppress(OSError):  # the client left: the script has nothing to do
            self._script(conn, index)

    def read_request(self, conn: socket.socket) -> bytes:
        """One request's head (and what came with it), as received."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        self.received.append(data)
        return data

    def stop(self) -> None:
        self._stopping.set()
        self._serving.join(2.0)
        for thread in self._threads:
            thread.join(2.0)
        self._listener.close()


@contextmanager
def scripted(
    script: Callable[[ScriptedServer, socket.socket, int], None],
) -> Iterator[ScriptedServer]:
    server = ScriptedServer(lambda conn, index: script(server, conn, index))
    try:
        yield server
    finally:
        server.stop()


def keep_alive(server: ScriptedServer, conn: socket.socket, index: int) -> None:
    """Answers every request on the connection with 200 ``ok`` until the client leaves."""
    while server.read_request(conn):
        conn.sendall(OK)


# ------------------------------------------------------ one API over the three pools


class PoolClient:
    """An httpx client over one of the pools, driven from the test's thread."""

    def __init__(self, kind: str, client: Any, portal: BlockingPortal | None) -> None:
        self.kind = kind
        self._client = client
        self._portal = portal

    def _run(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        assert self._portal is not None
        return self._portal.call(function, *args)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        if self._portal is None:
            response: httpx.Response = self._client.get(url, **kwargs)
            return response
        return self._run(functools.partial(self._client.get, url, **kwargs))

    def post_chunks(self, url: str, chunks: list[bytes], headers: dict[str, str]) -> int:
        """POST ``chunks`` as a streamed body (no length known); the status."""
        if self._portal is None:
            return int(self._client.post(url, content=iter(chunks), headers=headers).status_code)

        async def body() -> AsyncIterator[bytes]:  # an async generator, as users write
            for chunk in chunks:
                yield chunk

        async def post() -> int:
            response = await self._client.post(url, content=body(), headers=headers)
            return int(response.status_code)

        return self._run(post)

    def open_then_close(self, url: str) -> None:
        """Open ``url``'s response and close it without reading its body."""
        if self._portal is None:
            with self._client.stream("GET", url):
                return

        async def close() -> None:
            async with self._client.stream("GET", url):
                return

        self._run(close)

    def close_while_streaming(self, url: str) -> int:
        """Open ``url``'s response, close the client under it: the socket's fileno."""
        if self._portal is None:
            with self._client.stream("GET", url) as response:
                sock = response.extensions["network_stream"].get_extra_info("socket")
                self._client.close()
                return int(sock.fileno())

        async def close() -> int:
            async with self._client.stream("GET", url) as response:
                sock = response.extensions["network_stream"].get_extra_info("socket")
                await self._client.aclose()
                return int(sock.fileno())

        return self._run(close)


@contextmanager
def pool(kind: str, **options: Any) -> Iterator[PoolClient]:
    """A client over a fresh pool of ``kind`` (``sync``, ``asyncio`` or ``trio``)."""
    if kind == "sync":
        with httpx.Client(transport=Http11Transport(**options)) as client:
            yield PoolClient(kind, client, None)
        return
    with start_blocking_portal(backend=kind) as portal:
        transport = AsyncHttp11Transport(**options)
        client = portal.call(_async_client, transport)
        try:
            yield PoolClient(kind, client, portal)
        finally:
            portal.call(client.aclose)


async def _async_client(transport: AsyncHttp11Transport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport)


@pytest.fixture(params=["sync", "asyncio", "trio"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ------------------------------------------------------------------------- scenarios


def test_a_kept_alive_connection_carries_the_next_request(kind: str) -> None:
    """Two requests in a row, one connection: the pool keeps what the server keeps."""
    with scripted(keep_alive) as server, pool(kind) as client:
        assert client.get(server.url).text == "ok"
        assert client.get(server.url).text == "ok"
    assert server.connections == 1


def test_an_expired_idle_connection_is_not_reused(kind: str) -> None:
    """With a keep-alive expiry of zero, every request opens its own connection."""
    with scripted(keep_alive) as server, pool(kind, keepalive_expiry=0.0) as client:
        client.get(server.url)
        client.get(server.url)
    assert server.connections == 2


def test_a_connection_the_server_closed_while_idle_is_replaced(kind: str) -> None:
    """The server answers once and hangs up: the next request gets a fresh connection,
    not "Server disconnected" (the pool checks an idle socket before reusing it)."""
    hung_up = threading.Event()

    def once(server: ScriptedServer, conn: socket.socket, index: int) -> None:
        server.read_request(conn)
        conn.sendall(OK)
        conn.shutdown(socket.SHUT_RDWR)
        hung_up.set()

    with scripted(once) as server, pool(kind) as client:
        client.get(server.url)
        assert hung_up.wait(2.0)
        assert client.get(server.url).text == "ok"
    assert server.connections == 2


def test_connection_close_from_the_server_is_honoured(kind: str) -> None:
    """``Connection: close`` ends the connection after the response."""

    def closing(server: ScriptedServer, conn: socket.socket, index: int) -> None:
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")

    with scripted(closing) as server, pool(kind) as client:
        assert client.get(server.url).text == "ok"
        assert client.get(server.url).text == "ok"
    assert server.connections == 2


def test_a_body_closed_before_its_end_closes_the_connection(kind: str) -> None:
    """An unread remainder would corrupt the next response: the connection is dropped."""

    def big(server: ScriptedServer, conn: socket.socket, index: int) -> None:
        while server.read_request(conn):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000)

    with scripted(big) as server, pool(kind) as client:
        client.open_then_close(server.url)
        assert len(client.get(server.url).content) == 100000
    assert server.connections == 2


def test_chunked_and_informational_responses_are_read_as_httpx_reads_them(kind: str) -> None:
    """A 100 Continue is skipped; a chunked body is joined; the reason phrase is kept."""

    def chunked(server: ScriptedServer, conn: socket.socket, index: int) -> None:
        server.read_request(conn)
        conn.sendall(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 201 Made It\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )

    with scripted(chunked) as server, pool(kind) as client:
        response = client.get(server.url)
    assert (response.status_code, response.text) == (201, "abcde")
    assert response.extensions["reason_phrase"] == b"Made It"
    assert response.extensions["http_version"] == b"HTTP/1.1"


def test_a_streamed_request_body_goes_out_chunked_and_the_head_is_httpx_s(kind: str) -> None:
    """A generator body has no length: it is sent with chunked framing; headers keep
    httpx's casing and order."""

    def echo_raw(server: ScriptedServer, conn: socket.socket, index: int) -> None:
        data = server.read_request(conn)
        while not data.endswith(b"0\r\n\r\n"):
            data += conn.recv(65536)
        server.received[-1] = data
        conn.sendall(OK)

    with scripted(echo_raw) as server, pool(kind) as client:
        client.post_chunks(server.url + "up?x=1", [b"abc", b"", b"de"], {"X-Trace": "7"})
    [raw] = server.received
    head, _, sent = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /up?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nX-Trace: 7\r\n" in head + b"\r\n"
    assert b"\r\nTransfer-Encoding: chunked" in head
    assert sent == b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"


def test_an_early_answer_to_an_upload_is_delivered(kind: str) -> None:
    """The server answers 413 and closes before the body is in: the write error is set
    aside and the caller gets the 413, as with httpx's own transport."""

    def refuse(server: ScriptedServer, conn: socket.socket, index: int) -> None:
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
        conn.shutdown(socket.SHUT_WR)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    with scripted(refuse) as server, pool(kind) as client:
        if kind == "asyncio":
            # anyio's asyncio streams give nothing more to read once a write has failed,
            # the answer included: httpx's own async transport raises the same.
            with pytest.raises(httpx.ReadError):
                client.post_chunks(server.url, [b"x" * 65536] * 200, {})
        else:
            assert client.post_chunks(server.url, [b"x" * 65536] * 200, {}) == 413


def test_a_server_that_hangs_up_before_answering_is_a_remote_protocol_error(kind: str) -> None:
    """httpcore's error and message: Envoy counts it as a connection termination (UC)."""

    def hang_up(server: ScriptedServer, conn: socket.socket, index: int) -> None:
        server.read_request(conn)

    with (
        scripted(hang_up) as server,
        pool(kind) as client,
        pytest.raises(httpx.RemoteProtocolError, match="without sending a response"),
    ):
        client.get(server.url)


def test_a_malformed_response_is_a_remote_protocol_error(kind: str) -> None:
    """A status line that is not HTTP's is the peer's protocol error, not a crash."""

    def garbage(server: ScriptedServer, conn: socket.socket, index: int) -> None:
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 two hundred\r\n\r\n")

    with (
        scripted(garbage) as server,
        pool(kind) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        client.get(server.url)


def test_a_short_body_is_a_remote_protocol_error(kind: str) -> None:
    """Fewer bytes than ``Content-Length`` promised, then the end of the connection."""

    def short(server: ScriptedServer, conn: socket.socket, index: int) -> None:
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")

    with (
        scripted(short) as server,
        pool(kind) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        client.get(server.url)


def test_a_refused_connection_is_a_connect_error_caused_by_the_socket_error(kind: str) -> None:
    """The socket error stays among the causes: Envoy's transport failure reason (what
    meshlib reports with a ``UF``) is read from it."""
    with scripted(keep_alive) as server:
        port = server.port
    with pool(kind) as client, pytest.raises(httpx.ConnectError) as raised:
        client.get(f"http://127.0.0.1:{port}/")
    assert transport_failure(raised.value) == "delayed connect error: Connection refused"


def test_a_silent_server_is_a_read_timeout(kind: str) -> None:
    """The caller's read timeout bounds each read (0.1 s here)."""
    release = threading.Event()

    def silent(server: ScriptedServer, conn: socket.socket, index: int) -> None:
        server.read_request(conn)
        release.wait(1.0)

    with scripted(silent) as server, pool(kind) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get(server.url, timeout=httpx.Timeout(1.0, read=0.1))
        release.set()


def test_close_closes_connections_still_in_use(kind: str) -> None:
    """Closing the transport releases every socket, a response's still open included."""
    with scripted(keep_alive) as server, pool(kind) as client:
        assert client.close_while_streaming(server.url) == -1


def test_the_trace_extension_hears_the_connection_steps(kind: str) -> None:
    """httpcore's connection events, once per new connection; the network stream tells
    where it goes and that it is plaintext."""
    heard: list[str] = []

    def trace(name: str, info: Any) -> None:
        heard.append(name)

    with scripted(keep_alive) as server, pool(kind) as client:
        response = client.get(server.url, extensions={"trace": trace})
        client.get(server.url, extensions={"trace": trace})  # reused: no connection steps
        stream = response.extensions["network_stream"]
        assert stream.get_extra_info("ssl_object") is None
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", server.port)
    assert heard == ["connection.connect_tcp.started", "connection.connect_tcp.complete"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_cancelled_exchange_closes_its_connection(backend: str) -> None:
    """A request cancelled while it waits for the response (0.1 s here) leaves no
    connection behind, and the next request is served on a new one."""
    release = threading.Event()

    def slow_first(server: ScriptedServer, conn: socket.socket, index: int) -> None:
        while server.read_request(conn):
            if index == 0:
                release.wait(1.0)
                return
            conn.sendall(OK)

    async def scenario(url: str) -> tuple[int, str]:
        transport = AsyncHttp11Transport()
        async with httpx.AsyncClient(transport=transport) as client:
            with anyio.move_on_after(0.1):
                await client.get(url)
            left_open = len(transport._open)
            return left_open, (await client.get(url)).text

    with scripted(slow_first) as server:
        try:
            assert anyio.run(scenario, server.url, backend=backend) == (0, "ok")
        finally:
            release.set()
    assert server.connections == 2


def _free_descriptor_above(floor: int) -> int:
    for number in range(floor, floor + 1000):
        try:
            os.fstat(number)
        except OSError:
            return number
    pytest.skip("no free file descriptor found")


def test_readability_is_checked_on_descriptors_past_1024() -> None:
    """``select()`` refuses descriptors past 1024, which a busy process reaches; the
    pools' check before reusing a connection must work there too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2100:
        pytest.skip("the descriptor limit is too low to open one past 2000")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2100), hard))
    left, right = socket.socketpair()
    try:
        high = socket.socket(fileno=os.dup2(left.fileno(), _free_descriptor_above(2000)))
        with high:
            assert high.fileno() > 1024
            assert not readable(high)
            right.sendall(b"x")
            assert readable(high)
    finally:
        left.close()
        right.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --------------------------------------------------------------- mocks and wrappers


def test_a_replaced_httpx_send_path_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest-httpx's way of mocking: the pool must hand over to httpx's transport."""
    assert not send_path_replaced()
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", lambda self, request: None)
    assert send_path_replaced()
    monkeypatch.undo()
    assert not send_path_replaced()


def test_a_replaced_httpcore_pool_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    """respx's way of mocking."""
    monkeypatch.setattr(httpcore.ConnectionPool, "handle_request", lambda self, request: None)
    assert send_path_replaced()


def test_the_async_send_path_is_watched_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The async pool hands over when httpx's or httpcore's async path is replaced, and
    only then."""
    assert not async_send_path_replaced()
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", lambda self, request: None)
    assert not async_send_path_replaced()
    monkeypatch.setattr(
        httpcore.AsyncConnectionPool, "handle_async_request", lambda self, request: None
    )
    assert async_send_path_replaced()


def test_a_wrapper_that_keeps_the_original_is_not_a_replacement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Instrumentation wraps and calls through: the pool keeps its own path."""
    original = httpx.HTTPTransport.handle_request

    @functools.wraps(original)
    def instrumented(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        return original(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", instrumented)
    assert not send_path_replaced()


def test_while_httpx_is_mocked_requests_go_through_the_mock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No server at all: the mocked httpx transport answers for the pool."""

    def mocked(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        return httpx.Response(418, text=str(request.url))

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", mocked)
    with httpx.Client(transport=Http11Transport()) as client:
        response = client.get("http://192.0.2.1:9/teapot")
    assert (response.status_code, response.text) == (418, "http://192.0.2.1:9/teapot")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_while_async_httpx_is_mocked_requests_go_through_the_mock(
    monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    async def mocked(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        return httpx.Response(418, text=str(request.url))

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", mocked)

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=AsyncHttp11Transport()) as client:
            return await client.get("http://192.0.2.1:9/teapot")

    response = anyio.run(get, backend=backend)
    assert (response.status_code, response.text) == (418, "http://192.0.2.1:9/teapot")
