"""In-memory endpoints: handlers instead of servers, and a record of every attempt.

:class:`Backends` gives each mounted handler an endpoint of its service, with an address
from the documentation ranges (``192.0.2.0/24``, ``198.51.100.0/24``, ``203.0.113.0/24``,
never routed), and an inner transport that calls the handler instead of opening a socket.
The mesh routes, balances, retries and injects faults exactly as it does over the
network; the handlers see what an endpoint would (its URL, the service's ``Host``, the
mesh's headers), and every attempt is recorded as an :class:`UpstreamCall`.
"""

from __future__ import annotations

import inspect
import ipaddress
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import httpx

from meshlib._endpoints import Endpoint
from meshlib._hostnames import expand
from meshlib._transports._common import Upstream

if TYPE_CHECKING:
    from meshlib._mesh import Mesh
    from meshlib._transports._async import AsyncMeshTransport
    from meshlib._transports._sync import MeshTransport

__all__ = ["Backends", "Handler", "MemoryTransport", "UpstreamCall"]

#: An endpoint's handler: a request in, a response out (or an httpx exception raised,
#: ``httpx.ConnectError`` for a refused connection). Async handlers serve async clients.
Handler = Callable[[httpx.Request], "httpx.Response | Awaitable[httpx.Response]"]

_RANGES = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")


@dataclass(frozen=True)
class UpstreamCall:
    """One attempt that reached an in-memory endpoint.

    ``service`` is the FQDN (or the host as called, for a passthrough), ``subset`` the
    subset routed to (``""`` for none), ``endpoint`` its ``address:port``; ``request``
    is what the endpoint received; then the ``response`` or the ``error`` raised, and
    ``at``, the mesh's clock when the attempt arrived.
    """

    service: str
    subset: str
    endpoint: str
    request: httpx.Request
    response: httpx.Response | None
    error: Exception | None
    at: float

    @property
    def status(self) -> int | None:
        """The response status, or None when the attempt failed."""
        return self.response.status_code if self.response is not None else None


@dataclass
class _Mounted:
    endpoint: Endpoint
    handler: Handler
    latency: float


@dataclass
class _Ledger:
    """Every attempt, in order; shared by the inner transports."""

    calls: list[UpstreamCall] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, call: UpstreamCall) -> None:
        with self.lock:
            self.calls.append(call)


class Backends:
    """In-memory endpoints for a mesh.

    >>> backends = Backends(mesh)
    >>> backends.mount("ratings", lambda request: httpx.Response(200, json={"stars": 5}))
    >>> client = httpx.Client(transport=backends.transport())
    """

    def __init__(self, mesh: Mesh) -> None:
        self._mesh = mesh
        self._ledger = _Ledger()
        self._by_address: dict[str, _Mounted] = {}
        self._by_service: dict[str, list[Endpoint]] = {}
        self._addresses = (str(ip) for net in _RANGES for ip in ipaddress.ip_network(net).hosts())

    # ------------------------------------------------------------------- endpoints

    def mount(
        self,
        host: str,
        handler: Handler,
        *,
        labels: Mapping[str, str] | None = None,
        locality: str = "",
        weight: int = 1,
        latency: float = 0.0,
    ) -> Endpoint:
        """Add an endpoint to ``host`` (short name or FQDN) that answers with ``handler``.

        ``labels`` are what subsets select on (``{"version": "v2"}``); ``latency`` is
        how long each answer takes, on the mesh's clock (virtual with
        :class:`~meshlib.testing.VirtualClock`): past the attempt's timeout, the attempt
        times out as it would over the network. Endpoints mounted for a host replace
        the ones its ServiceEntry lists.
        """
        address = next(self._addresses)
        endpoint = Endpoint(address, labels=dict(labels or {}), locality=locality, weight=weight)
        self._by_address[address] = _Mounted(endpoint, handler, latency)
        name = expand(host, self._mesh.workload.namespace, self._mesh.workload.domain)
        self._by_service.setdefault(name, []).append(endpoint)
        self._mesh.set_endpoints(name, self._by_service[name])
        return endpoint

    def mount_external(self, host: str, handler: Handler, *, latency: float = 0.0) -> None:
        """Answer requests that pass through to an unknown ``host`` (``ALLOW_ANY``)."""
        self._by_address[host.lower()] = _Mounted(Endpoint(host), handler, latency)

    # ------------------------------------------------------------------ transports

    def transport(self) -> MeshTransport:
        """A sync mesh transport whose endpoints are the mounted handlers."""
        return self._mesh.transport(self.inner)

    def async_transport(self) -> AsyncMeshTransport:
        """An async mesh transport (asyncio and trio) whose endpoints are the handlers."""
        return self._mesh.async_transport(self.inner)

    def inner(self, upstream: Upstream) -> MemoryTransport:
        """The inner transport of one endpoint, sync and async (a ``transport_factory``
        for :meth:`Mesh.transport` and :meth:`Mesh.async_transport`)."""
        return MemoryTransport(upstream, self._by_address, self._ledger, self._mesh)

    # ------------------------------------------------------------------ the record

    def calls(self, host: str | None = None, *, subset: str | None = None) -> list[UpstreamCall]:
        """The attempts made, in order; only those to ``host`` (and ``subset``) if given."""
        with self._ledger.lock:
            calls = list(self._ledger.calls)
        if host is not None:
            name = expand(host, self._mesh.workload.namespace, self._mesh.workload.domain)
            calls = [c for c in calls if c.service in (name, host)]
        if subset is not None:
            calls = [c for c in calls if c.subset == subset]
        return calls

    def assert_called(
        self,
        host: str,
        *,
        times: int | None = None,
        statuses: Sequence[int | None] | None = None,
        subset: str | None = None,
    ) -> list[UpstreamCall]:
        """Assert how ``host`` was called; returns its calls.

        ``times`` is the number of attempts; ``statuses`` their statuses in order
        (``None`` for an attempt that failed without a response). The message of a
        failure lists every attempt made.
        """
        calls = self.calls(host, subset=subset)
        seen = [c.status for c in calls]
        where = f"{host}" + (f" (subset {subset})" if subset is not None else "")
        if times is not None and len(calls) != times:
            raise AssertionError(
                f"{where} was called {len(calls)} times, expected {times}\n{self._listing()}"
            )
        if statuses is not None and seen != list(statuses):
            raise AssertionError(
                f"{where} answered {seen}, expected {list(statuses)}\n{self._listing()}"
            )
        return calls

    def reset(self) -> None:
        """Forget the attempts recorded so far."""
        with self._ledger.lock:
            self._ledger.calls.clear()

    def _listing(self) -> str:
        with self._ledger.lock:
            calls = list(self._ledger.calls)
        if not calls:
            return "no upstream call was made"
        lines = ["upstream calls made:"]
        for n, call in enumerate(calls, start=1):
            outcome = call.status if call.response is not None else repr(call.error)
            subset = f" subset {call.subset}" if call.subset else ""
            lines.append(
                f"  {n}. {call.request.method} {call.service}{subset} at {call.endpoint}"
                f" {call.request.url.raw_path.decode()}: {outcome}"
            )
        return "\n".join(lines)


class MemoryTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The inner transport of one endpoint: calls its handler, records the attempt."""

    def __init__(
        self,
        upstream: Upstream,
        mounted: Mapping[str, _Mounted],
        ledger: _Ledger,
        mesh: Mesh,
    ) -> None:
        self._upstream = upstream
        self._mounted = mounted
        self._ledger = ledger
        self._mesh = mesh
        service, subset = upstream.address, ""
        if upstream.cluster is not None:  # outbound|port|subset|host
            _, _, subset, service = upstream.cluster.split("|", 3)
        self._service, self._subset = service, subset

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        mounted, at = self._begin(request)
        try:
            self._take(mounted, request, self._mesh.clock.sleep)
            response = cast(httpx.Response, mounted.handler(request))
            if inspect.isawaitable(response):
                raise TypeError("an async handler needs an async client")
            return self._answered(request, response, at)
        except Exception as error:
            self._failed(request, error, at)
            raise

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        mounted, at = self._begin(request)
        try:
            await self._atake(mounted, request)
            result: Any = mounted.handler(request)
            response = await result if inspect.isawaitable(result) else result
            return self._answered(request, response, at)
        except Exception as error:
            self._failed(request, error, at)
            raise

    def _begin(self, request: httpx.Request) -> tuple[_Mounted, float]:
        mounted = self._mounted.get(self._upstream.address)
        if mounted is None:
            message = f"no in-memory endpoint at {self._upstream.address}"
            raise httpx.ConnectError(message, request=request)
        return mounted, self._mesh.clock.now()

    def _take(
        self, mounted: _Mounted, request: httpx.Request, sleep: Callable[[float], None]
    ) -> None:
        """Spend the endpoint's latency, or time out part way as a socket would."""
        read = _read_timeout(request)
        if mounted.latency and read is not None and mounted.latency >= read:
            sleep(read)
            raise httpx.ReadTimeout("timed out (in-memory endpoint latency)", request=request)
        if mounted.latency:
            sleep(mounted.latency)

    async def _atake(self, mounted: _Mounted, request: httpx.Request) -> None:
        read = _read_timeout(request)
        if mounted.latency and read is not None and mounted.latency >= read:
            await self._mesh.clock.asleep(read)
            raise httpx.ReadTimeout("timed out (in-memory endpoint latency)", request=request)
        if mounted.latency:
            await self._mesh.clock.asleep(mounted.latency)

    def _answered(
        self, request: httpx.Request, response: httpx.Response, at: float
    ) -> httpx.Response:
        response.request = request
        self._ledger.record(
            UpstreamCall(self._service, self._subset, self._name, request, response, None, at)
        )
        return response

    def _failed(self, request: httpx.Request, error: Exception, at: float) -> None:
        self._ledger.record(
            UpstreamCall(self._service, self._subset, self._name, request, None, error, at)
        )

    @property
    def _name(self) -> str:
        return f"{self._upstream.address}:{self._upstream.port}"


def _read_timeout(request: httpx.Request) -> float | None:
    timeouts: Mapping[str, Any] = request.extensions.get("timeout", {})
    read = timeouts.get("read")
    return float(read) if read is not None else None
