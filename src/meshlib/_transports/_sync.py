"""``MeshTransport``: the sync shell. It does the I/O the engine asks for, nothing else.

Each request runs the engine's loop (see :mod:`meshlib._core._engine`): send an attempt
through an inner httpx transport for that endpoint, sleep on the mesh's clock, resolve
DNS, fire mirrors on a small thread pool. Engine calls happen under the mesh's lock and
never block; network I/O never happens under it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx

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
from meshlib._telemetry import answered, send_attempt, unobserved
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
from meshlib._transports._deadline import Bound, bounded
from meshlib._transports._http11 import Http11Transport
from meshlib._transports._tls import expecting

if TYPE_CHECKING:
    from meshlib._mesh import Mesh

__all__ = ["MeshTransport", "TransportFactory"]

logger = logging.getLogger("meshlib.transport")

#: Builds the inner transport for one endpoint of one cluster.
TransportFactory = Callable[[Upstream], httpx.BaseTransport]


def default_factory(upstream: Upstream) -> httpx.BaseTransport:
    """meshlib's HTTP/1.1 pool per endpoint (:mod:`._http11`): its own keep-alive
    connections, its sockets under the mesh's deadlines."""
    context = upstream.ssl_context
    if context is None and upstream.scheme == "https":
        context = default_ssl_context()
    return Http11Transport(context, upstream.pool_limits().keepalive_expiry or 0.0)


class MeshTransport(httpx.BaseTransport):
    """An httpx transport that routes every request as an Istio sidecar would.

    Create it with :meth:`meshlib.Mesh.transport`. ``transport_factory`` builds the inner
    transport for each endpoint (``httpx.MockTransport``, respx and pytest-httpx can sit
    there); it receives an :class:`Upstream` and sees requests for the endpoint's URL with
    the service's authority in ``Host``.
    """

    def __init__(self, mesh: Mesh, transport_factory: TransportFactory | None = None) -> None:
        self._mesh = mesh
        self._factory = transport_factory or default_factory
        self._inner: dict[Upstream, httpx.BaseTransport] = {}
        self._plain: dict[PlainKey, httpx.BaseTransport] = {}  # the same, found faster
        self._inner_lock = threading.Lock()
        self._mirror_pool: ThreadPoolExecutor | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Route, balance, retry and answer ``request`` as the mesh configuration says."""
        call = self._mesh.start_call(request_head(request))
        try:
            return answered(call, self._drive(call, request))
        except BaseException as error:
            self._mesh.finish_call(call, error)
            raise

    def _drive(self, call: Call, request: httpx.Request) -> httpx.Response:
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
                    response.close()  # a retry supersedes the previous response
                response, error, result = self._send(request, action.attempt, call)
            elif isinstance(action, Sleep):
                mesh.clock.sleep(action.seconds)
            elif isinstance(action, WaitForConnection):
                self._wait(action)
            elif isinstance(action, Resolve):
                result = _resolve(action.names)
            elif isinstance(action, Shadow):
                self._shadow(request, action.attempts, call.head)
            elif isinstance(action, Reply):
                if response is not None:
                    response.close()
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

    def _wait(self, action: WaitForConnection) -> None:
        """Wait for a connection of the cluster to be handed over, or for the timeout."""
        granted = threading.Event()
        with self._mesh.lock:
            if action.ticket.granted:
                return
            action.ticket.wake = granted.set
        granted.wait(action.timeout)

    def _send(
        self, request: httpx.Request, attempt: Attempt, call: Call
    ) -> tuple[httpx.Response | None, httpx.TransportError | None, object]:
        now = self._mesh.clock.now()
        budget = budget_for(request, attempt, now)
        bound = bound_for(attempt, now)
        try:
            inner = self._transport_for(attempt)
            with bounded(bound), expecting(attempt.tls):
                outgoing = inner_request(request, attempt, budget, call.head)
                response = send_attempt(call, attempt, inner.handle_request, outgoing)
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
            response.stream = _BodyStream(response.stream, call, self._mesh)  # type: ignore[arg-type]
        response.extensions = {**response.extensions, EXTENSION: call.info}
        return response

    def _transport_for(self, attempt: Attempt) -> httpx.BaseTransport:
        plain = plaintext_key(attempt)
        if plain is not None and (known := self._plain.get(plain)) is not None:
            return known
        mesh = self._mesh
        upstream = upstream_for(attempt, mesh.tls_contexts, mesh.identity)
        inner = self._inner.get(upstream)
        if inner is None:
            with self._inner_lock:
                inner = self._inner.get(upstream)
                if inner is None:
                    inner = self._inner[upstream] = self._factory(upstream)
        if plain is not None:
            self._plain[plain] = inner
        return inner

    def _shadow(
        self, request: httpx.Request, attempts: tuple[Attempt, ...], head: RequestHead
    ) -> None:
        """Mirror the request: fire and forget on a small thread pool."""
        if not isinstance(request.stream, httpx.ByteStream):
            logger.debug(
                "not mirroring %s: its body is a stream that cannot be replayed", request.url
            )
            return
        if self._mirror_pool is None:
            with self._inner_lock:
                if self._mirror_pool is None:
                    self._mirror_pool = ThreadPoolExecutor(4, thread_name_prefix="meshlib-mirror")
        for attempt in attempts:
            self._mirror_pool.submit(self._mirror, request, attempt, head)

    def _mirror(self, request: httpx.Request, attempt: Attempt, head: RequestHead) -> None:
        budget = budget_for(request, attempt, self._mesh.clock.now())
        try:
            with unobserved():  # no span of its own, and none from httpx's instrumentation
                response = self._transport_for(attempt).handle_request(
                    inner_request(request, attempt, budget, head)
                )
            response.read()
            response.close()
        except Exception:  # a mirror never affects the caller
            logger.debug("mirror request to %s failed", attempt.url, exc_info=True)

    def close(self) -> None:
        """Close every inner transport and stop the mirror threads."""
        with self._inner_lock:
            pool, self._mirror_pool = self._mirror_pool, None
        if pool is not None:
            pool.shutdown(wait=True)  # first: a pending mirror may yet make a transport
        with self._inner_lock:
            transports, self._inner, self._plain = list(self._inner.values()), {}, {}
        for transport in transports:
            transport.close()


class _BodyStream(httpx.SyncByteStream):
    """The upstream body: ends at the route deadline, and releases the call when closed.

    The deadline binds the socket reads of the default inner transports (see
    :mod:`._deadline`); a body that arrived in time is delivered however slowly the
    caller reads it, as Envoy delivers a response that completed within the timeout.
    """

    def __init__(self, stream: httpx.SyncByteStream, call: Call, mesh: Mesh) -> None:
        self._stream = stream
        self._call: Call | None = call  # dropped once released: httpx's response is a
        self._mesh = mesh  # reference cycle, and the call need not wait for its collection
        self._bound: Bound | None = None
        if call.deadline is not None:
            remaining = call.deadline - mesh.clock.now()
            self._bound = Bound(route=time.monotonic() + remaining)

    def __iter__(self) -> Iterator[bytes]:
        bound = self._bound
        if bound is None:
            yield from self._stream
            return
        chunks = iter(self._stream)
        while True:
            try:
                with bounded(bound):
                    chunk = next(chunks)
            except StopIteration:
                return
            except httpx.ReadTimeout:
                if bound.expired is not None:
                    raise httpx.ReadTimeout("upstream request timeout (route timeout)") from None
                raise
            yield chunk

    def close(self) -> None:
        call, self._call = self._call, None
        if call is None:
            return
        try:
            self._stream.close()
        finally:
            self._mesh.finish_call(call)


def _resolve(names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """DNS answers for ``names`` (an empty answer on failure)."""
    answers = {}
    for name in names:
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except OSError:
            infos = []
        answers[name] = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    return answers
