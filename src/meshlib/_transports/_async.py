"""``AsyncMeshTransport``: the async shell, for asyncio and trio alike (through anyio).

The same loop as the sync shell (:mod:`._sync`), with ``await``: inner async transports,
``anyio`` sleeps on the mesh's clock, DNS through ``anyio.getaddrinfo`` (never blocking
the event loop). Mirrors run in a task group the transport owns while it is entered
(``async with`` — which ``httpx.AsyncClient`` does for its transport); outside one, on
asyncio they run as background tasks, and on trio (which only runs tasks in nurseries)
they are skipped and logged.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import sniffio

from meshlib._core._actions import (
    Attempt,
    Deliver,
    Reply,
    Resolve,
    Send,
    Shadow,
    Sleep,
    WaitForConnection,
)
from meshlib._core._engine import Call
from meshlib._core._request import RequestHead
from meshlib._telemetry import answered, asend_attempt, unobserved
from meshlib._transports._async_http11 import AsyncHttp11Transport
from meshlib._transports._common import (
    EXTENSION,
    PlainKey,
    Upstream,
    apply_edits,
    body_position,
    bound_for,
    budget_for,
    default_ssl_context,
    inner_request,
    local_response,
    outcome_of_error,
    outcome_of_expiry,
    plaintext_key,
    request_head,
    responded,
    rewind,
    upstream_for,
)
from meshlib._transports._deadline import bounded
from meshlib._transports._tls import expecting

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from meshlib._mesh import Mesh

__all__ = ["AsyncMeshTransport", "AsyncTransportFactory"]

logger = logging.getLogger("meshlib.transport")

#: Builds the inner async transport for one endpoint of one cluster.
AsyncTransportFactory = Callable[[Upstream], httpx.AsyncBaseTransport]


def default_async_factory(upstream: Upstream) -> httpx.AsyncBaseTransport:
    """meshlib's async HTTP/1.1 pool per endpoint (:mod:`._async_http11`): its own
    keep-alive connections, its sockets under the mesh's deadlines."""
    context = upstream.ssl_context
    if context is None and upstream.scheme == "https":
        context = default_ssl_context()
    return AsyncHttp11Transport(context, upstream.pool_limits().keepalive_expiry or 0.0)


class AsyncMeshTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`~meshlib.MeshTransport` (asyncio and trio).

    Create it with :meth:`meshlib.Mesh.async_transport`.
    """

    def __init__(self, mesh: Mesh, transport_factory: AsyncTransportFactory | None = None) -> None:
        self._mesh = mesh
        self._factory = transport_factory or default_async_factory
        self._inner: dict[Upstream, httpx.AsyncBaseTransport] = {}
        self._plain: dict[PlainKey, httpx.AsyncBaseTransport] = {}  # the same, found faster
        self._task_group: TaskGroup | None = None
        self._background: set[Any] = set()

    async def __aenter__(self) -> AsyncMeshTransport:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        group, self._task_group = self._task_group, None
        if group is not None:
            await group.__aexit__(exc_type, exc_value, traceback)
        await self.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Route, balance, retry and answer ``request`` as the mesh configuration says."""
        call = self._mesh.start_call(request_head(request))
        try:
            return answered(call, await self._drive(call, request))
        except BaseException as error:
            self._mesh.finish_call(call, error)
            raise

    async def _drive(self, call: Call, request: httpx.Request) -> httpx.Response:
        mesh = self._mesh
        with mesh.lock:
            action = call.start()
        response: httpx.Response | None = None
        error: httpx.TransportError | None = None
        start = body_position(request)
        while True:
            result: object = None
            if isinstance(action, Send):
                if action.attempt.number > 1:
                    rewind(request, start)
                if response is not None:
                    await response.aclose()
                response, error, result = await self._send(request, action.attempt, call)
            elif isinstance(action, Sleep):
                await mesh.clock.asleep(action.seconds)
            elif isinstance(action, WaitForConnection):
                await self._wait(action)
            elif isinstance(action, Resolve):
                result = await _resolve(action.names)
            elif isinstance(action, Shadow):
                self._shadow(request, action.attempts, call.head)
            elif isinstance(action, Reply):
                if response is not None:
                    await response.aclose()
                mesh.finish_call(call)
                return local_response(request, action.reply, call.info)
            elif isinstance(action, Deliver):
                assert response is not None  # the engine delivers only after a response
                return self._deliver(call, response, action)
            else:  # Raise: the engine wants the last attempt's exception re-raised
                assert error is not None
                mesh.finish_call(call)
                error.mesh_info = call.info  # type: ignore[attr-defined]
                raise error
            with mesh.lock:
                action = call.send(result)

    async def _wait(self, action: WaitForConnection) -> None:
        """Wait for a connection of the cluster to be handed over, or for the timeout.

        The hand-over may happen on another thread (a sync client sharing the mesh), so
        the wake-up goes through the event loop's thread-safe entry.
        """
        granted = anyio.Event()
        wake = _thread_safe(granted.set)
        with self._mesh.lock:
            if action.ticket.granted:
                return
            action.ticket.wake = wake
        with anyio.move_on_after(math.inf if action.timeout is None else action.timeout):
            await granted.wait()

    async def _send(
        self, request: httpx.Request, attempt: Attempt, call: Call
    ) -> tuple[httpx.Response | None, httpx.TransportError | None, object]:
        now = self._mesh.clock.now()
        budget = budget_for(request, attempt, now)
        bound = bound_for(attempt, now)
        try:
            inner = self._transport_for(attempt)
            with bounded(bound), expecting(attempt.tls):
                outgoing = inner_request(request, attempt, budget, call.head)
                response = await asend_attempt(call, attempt, inner.handle_async_request, outgoing)
        except httpx.TransportError as error:
            outcome = outcome_of_expiry(bound) if bound is not None else None
            if outcome is None:
                outcome = outcome_of_error(error, attempt, budget, self._mesh.clock.now())
            if outcome is None:
                raise
            return None, error, outcome
        return response, None, responded(response)

    def _deliver(self, call: Call, response: httpx.Response, action: Deliver) -> httpx.Response:
        response.headers = apply_edits(response.headers, action.edits)
        if response.is_closed:  # the body is read already (httpx.MockTransport's are)
            self._mesh.finish_call(call)
        else:
            response.stream = _AsyncBodyStream(response.stream, call, self._mesh)  # type: ignore[arg-type]
        response.extensions = {**response.extensions, EXTENSION: call.info}
        return response

    def _transport_for(self, attempt: Attempt) -> httpx.AsyncBaseTransport:
        plain = plaintext_key(attempt)
        if plain is not None and (known := self._plain.get(plain)) is not None:
            return known
        mesh = self._mesh
        upstream = upstream_for(attempt, mesh.tls_contexts, mesh.identity)
        inner = self._inner.get(upstream)
        if inner is None:
            inner = self._inner[upstream] = self._factory(upstream)
        if plain is not None:
            self._plain[plain] = inner
        return inner

    def _shadow(
        self, request: httpx.Request, attempts: tuple[Attempt, ...], head: RequestHead
    ) -> None:
        """Mirror the request: fire and forget, in the transport's task group."""
        if not isinstance(request.stream, httpx.ByteStream):
            logger.debug(
                "not mirroring %s: its body is a stream that cannot be replayed", request.url
            )
            return
        for attempt in attempts:
            if self._task_group is not None:
                self._task_group.start_soon(self._mirror, request, attempt, head)
            elif sniffio.current_async_library() == "asyncio":
                import asyncio  # only asyncio can run tasks outside a group

                task = asyncio.get_running_loop().create_task(self._mirror(request, attempt, head))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            else:
                logger.warning(
                    "mirror to %s skipped: on trio, mirrors need the transport entered "
                    "(async with httpx.AsyncClient(...) or async with the transport)",
                    attempt.url,
                )

    async def _mirror(self, request: httpx.Request, attempt: Attempt, head: RequestHead) -> None:
        budget = budget_for(request, attempt, self._mesh.clock.now())
        try:
            inner = self._transport_for(attempt)
            with unobserved():  # no span of its own, and none from httpx's instrumentation
                response = await inner.handle_async_request(
                    inner_request(request, attempt, budget, head)
                )
            await response.aread()
            await response.aclose()
        except Exception:  # a mirror never affects the caller
            logger.debug("mirror request to %s failed", attempt.url, exc_info=True)

    async def aclose(self) -> None:
        """Close every inner transport."""
        transports, self._inner, self._plain = list(self._inner.values()), {}, {}
        for transport in transports:
            await transport.aclose()


class _AsyncBodyStream(httpx.AsyncByteStream):
    """The upstream body: ends at the route deadline, and releases the call when closed."""

    def __init__(self, stream: httpx.AsyncByteStream, call: Call, mesh: Mesh) -> None:
        self._stream = stream
        self._call: Call | None = call  # dropped once released: httpx's response is a
        self._mesh = mesh  # reference cycle, and the call need not wait for its collection
        self._deadline = call.deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._deadline is None:
            async for chunk in self._stream:
                yield chunk
            return
        chunks = self._stream.__aiter__()
        while True:
            remaining = self._deadline - self._mesh.clock.now()
            try:
                with anyio.fail_after(max(remaining, 0.0)):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise httpx.ReadTimeout("upstream request timeout (route timeout)") from None
            yield chunk

    async def aclose(self) -> None:
        call, self._call = self._call, None
        if call is None:
            return
        try:
            await self._stream.aclose()
        finally:
            self._mesh.finish_call(call)


async def _resolve(names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """DNS answers for ``names``, resolved in a worker thread (an empty answer on failure)."""
    answers = {}
    for name in names:
        try:
            infos = await anyio.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except OSError:
            infos = []
        answers[name] = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    return answers


def _thread_safe(callback: Callable[[], object]) -> Callable[[], None]:
    """``callback``, callable from any thread: it runs soon on the current event loop."""
    if sniffio.current_async_library() == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()

        def on_trio() -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(callback)

        return on_trio
    import asyncio

    loop = asyncio.get_running_loop()

    def on_asyncio() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(callback)

    return on_asyncio
