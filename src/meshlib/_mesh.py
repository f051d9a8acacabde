"""``Mesh``: the configuration, the runtime state, and the transports that use them."""

from __future__ import annotations

import enum
import logging
import os
import random
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from meshlib._clock import Clock, SystemClock
from meshlib._compile import OutboundPolicy, RoutingTable, Workload, compile_table
from meshlib._core._engine import Call, EngineOptions
from meshlib._core._fault import FaultPolicy
from meshlib._core._request import RequestHead
from meshlib._core._runtime import Runtime, client_locality
from meshlib._endpoints import Endpoint
from meshlib._fault_scope import MeshFaults, matching
from meshlib._hostnames import DEFAULT_DOMAIN, expand
from meshlib._identity import Identity, IdentitySource
from meshlib._telemetry import Telemetry
from meshlib._transports._async import AsyncMeshTransport, AsyncTransportFactory
from meshlib._transports._sync import MeshTransport, TransportFactory
from meshlib._transports._tls import TlsContexts
from meshlib.config import ConfigSet, Resource, read_paths, read_yaml

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from meshlib._explain import Explanation

__all__ = ["Mesh", "UpstreamErrors"]

logger = logging.getLogger("meshlib")


def _own_address() -> str:
    """This machine's address as its host name resolves, else loopback."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


class UpstreamErrors(str, enum.Enum):
    """What the caller gets when the upstream fails (connect failure, reset, timeout)."""

    REPLY = "reply"  # Envoy's local reply: 503 UF/UR/UC, 504 UT (the default)
    RAISE = "raise"  # the last attempt's httpx exception, with MeshInfo attached


Config = str | ConfigSet | Iterable[Resource[Any]]


class Mesh:
    """An in-process service mesh: Istio configuration, endpoints and runtime state.

    Build it from YAML (:meth:`from_yaml`, :meth:`from_paths`) or from resources, then
    give its transports to httpx clients::

        mesh = meshlib.Mesh.from_paths("mesh/")
        client = httpx.Client(transport=mesh.transport())

    Args:
        config: resources, a :class:`~meshlib.config.ConfigSet`, or YAML text.
        namespace: the client's own namespace; also the namespace of resources that
            name none, and of short host names.
        labels: the client's labels (``sourceLabels`` matches, Sidecar and
            DestinationRule ``workloadSelector``).
        domain: the cluster domain suffix (``cluster.local``).
        seed: seed for every random draw (weights, faults, balancing, backoff), so
            runs repeat; ``None`` draws one at random.
        upstream_errors: ``"reply"`` (Envoy's local reply, the default) or ``"raise"``.
        outbound_traffic_policy: ``"ALLOW_ANY"`` (unknown hosts are sent as they are,
            Istio's default) or ``"REGISTRY_ONLY"`` (502), unless a Sidecar says otherwise.
        connect_timeout: seconds, Istio's mesh ``connectTimeout`` (10 s).
        clock: the clock and sleeps (:class:`meshlib.testing.VirtualClock` in tests).
        shadow_host_suffix: append ``-shadow`` to a mirrored request's host, as Istio
            did before 1.28.
        locality: the client's own ``region/zone/subzone``, for locality-aware load
            balancing (``localityLbSetting``).
        source_address: the client's own IP address, hashed by ``consistentHash:
            useSourceIp`` (the address of the host name by default).
        identity: the workload identity for Istio mutual TLS: an :class:`Identity`, a
            folder in Istio's layout (``cert-chain.pem``, ``key.pem``,
            ``root-cert.pem``) watched for rotation, or an :class:`IdentitySource`.
            Without one, auto-mTLS is off and ``ISTIO_MUTUAL`` connections fail.
        tracer_provider: where spans go (an OpenTelemetry SDK ``TracerProvider``); the
            global provider by default, looked up per request.
        meter_provider: where Istio's standard metrics go; the global one by default.
        access_log: log a line per request in Istio's default format to the
            ``meshlib.access`` logger (off by default, as in Istio).
        metric_labels: ``"lean"`` (a few of Istio's labels, the default) or ``"full"``
            (all of them). See ``docs/telemetry.md``.

    Raises:
        ConfigError: the configuration has problems Istio would reject.
    """

    def __init__(
        self,
        config: Config = (),
        *,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        domain: str = DEFAULT_DOMAIN,
        seed: int | None = None,
        upstream_errors: UpstreamErrors | str = UpstreamErrors.REPLY,
        outbound_traffic_policy: OutboundPolicy | str = OutboundPolicy.ALLOW_ANY,
        connect_timeout: float = 10.0,
        clock: Clock | None = None,
        shadow_host_suffix: bool = False,
        locality: str = "",
        source_address: str | None = None,
        identity: Identity | IdentitySource | str | os.PathLike[str] | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        access_log: bool = False,
        metric_labels: str = "lean",
    ) -> None:
        self.workload = Workload(namespace=namespace, labels=dict(labels or {}), domain=domain)
        self.clock: Clock = clock or SystemClock()
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.source_address = source_address or _own_address()
        #: Where the workload identity comes from (None: no mTLS of Istio's kind).
        self.identity = (
            identity
            if isinstance(identity, IdentitySource) or identity is None
            else IdentitySource(identity)
        )
        #: The SSL contexts of this mesh's TLS connections, built once per TLS material.
        self.tls_contexts = TlsContexts()
        self.runtime = Runtime(
            client=client_locality(locality, self.workload.labels),
            connect_timeout=connect_timeout,
            trust_domain=(
                self.identity.current().trust_domain if self.identity else "cluster.local"
            ),
            has_identity=self.identity is not None,
        )
        self._outbound = OutboundPolicy(outbound_traffic_policy)
        self._options = EngineOptions(
            hostname=socket.gethostname(),
            connect_timeout=connect_timeout,
            raise_upstream_errors=UpstreamErrors(upstream_errors) is UpstreamErrors.RAISE,
            shadow_host_suffix=shadow_host_suffix,
            source_address=self.source_address,
            fault_override=self._injected_fault,
        )
        #: Faults injected on this mesh from code, for every thread (:mod:`meshlib.testing`).
        self.injected_faults = MeshFaults()
        self._resources: tuple[Resource[Any], ...] = ()
        self._endpoints: dict[str, tuple[Endpoint, ...]] = {}
        self._table = compile_table((), self.workload, outbound_policy=self._outbound)
        #: Spans, metrics and the access log (:mod:`meshlib._telemetry`).
        self.telemetry = Telemetry(
            self,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            access_log=access_log,
            metric_labels=metric_labels,
        )
        self.apply(config)

    @classmethod
    def from_yaml(cls, text: str, **options: Any) -> Mesh:
        """A mesh from YAML text (one or more documents).

        Takes every option of :class:`Mesh`; ``namespace`` is also the namespace of
        resources that name none.
        """
        return cls(read_yaml(text, namespace=options.get("namespace", "default")), **options)

    @classmethod
    def from_paths(cls, *paths: str | os.PathLike[str], **options: Any) -> Mesh:
        """A mesh from YAML files and folders (read recursively, in path order)."""
        return cls(read_paths(paths, namespace=options.get("namespace", "default")), **options)

    # ------------------------------------------------------------------- configuration

    @property
    def table(self) -> RoutingTable:
        """The current routing table (a frozen snapshot)."""
        return self._table

    @property
    def resources(self) -> tuple[Resource[Any], ...]:
        """The resources of the current configuration."""
        return self._resources

    def apply(self, config: Config) -> None:
        """Replace the configuration atomically.

        Requests in flight finish on the configuration they started with; load-balancer
        state, ejections and limits carry over for clusters that still exist. On a
        :class:`~meshlib.ConfigError` nothing changes.
        """
        resources = self._resources_of(config)
        table = compile_table(
            resources, self.workload, endpoints=self._endpoints, outbound_policy=self._outbound
        )
        with self.lock:
            self._resources, self._table = resources, table
            self.runtime.endpoints_changed(self.clock.now())

    def set_endpoints(self, host: str, endpoints: Sequence[Endpoint]) -> None:
        """Set the endpoints of ``host`` in code; they replace any from YAML.

        ``host`` may be a short name (expanded in the mesh's namespace) or an FQDN. An
        empty list removes the override.
        """
        self.update_endpoints({host: endpoints})

    def update_endpoints(self, endpoints: Mapping[str, Sequence[Endpoint]]) -> None:
        """:meth:`set_endpoints` for many hosts at once: the table is rebuilt once."""
        with self.lock:
            endpoints_by_host = dict(self._endpoints)
        for host, given in endpoints.items():
            name = expand(host, self.workload.namespace, self.workload.domain)
            if given:
                endpoints_by_host[name] = tuple(given)
            else:
                endpoints_by_host.pop(name, None)
        table = compile_table(
            self._resources,
            self.workload,
            endpoints=endpoints_by_host,
            outbound_policy=self._outbound,
        )
        with self.lock:
            self._endpoints, self._table = endpoints_by_host, table
            self.runtime.endpoints_changed(self.clock.now())

    def _resources_of(self, config: Config) -> tuple[Resource[Any], ...]:
        if isinstance(config, str):
            config = read_yaml(config, namespace=self.workload.namespace)
        if isinstance(config, ConfigSet):
            config.raise_for_errors()
            for warning in config.warnings:
                logger.warning("%s", warning)
            return config.resources
        return tuple(config)

    # ------------------------------------------------------------------------ requests

    def transport(self, transport_factory: TransportFactory | None = None) -> MeshTransport:
        """An ``httpx.BaseTransport`` for ``httpx.Client(transport=...)``.

        ``transport_factory`` builds the inner transport of each endpoint (by default
        meshlib's HTTP/1.1 keep-alive pool; ``httpx.HTTPTransport`` also fits).
        """
        return MeshTransport(self, transport_factory)

    def async_transport(
        self, transport_factory: AsyncTransportFactory | None = None
    ) -> AsyncMeshTransport:
        """An ``httpx.AsyncBaseTransport`` for ``httpx.AsyncClient`` (asyncio and trio).

        ``transport_factory`` builds the inner transport of each endpoint (by default
        meshlib's async HTTP/1.1 pool; ``httpx.AsyncHTTPTransport`` also fits).
        """
        return AsyncMeshTransport(self, transport_factory)

    def explain(
        self, method: str, url: str, headers: Mapping[str, str] | None = None
    ) -> Explanation:
        """A dry run: what the mesh would do with this request, and why.

        Which host the authority names, which VirtualService and rule match (and why the
        rules before it did not), the destinations with their weights and endpoints, and
        the effective policies of each cluster. Nothing is sent and no state changes.
        """
        from meshlib._explain import explain  # not needed on the hot path

        return explain(self, method, url, headers or {})

    def start_call(self, head: RequestHead) -> Call:
        """The engine's call for one request (used by the transports)."""
        call = Call(self._table, self.runtime, head, self.clock.now, self.rng, self._options)
        call.observer = self.telemetry.observe(call)
        return call

    def finish_call(self, call: Call, error: BaseException | None = None) -> None:
        """Release what a call holds (used by the transports); safe to repeat.

        ``error`` is the exception the caller gets instead of a response, if any.
        Telemetry records the call once it is released and answered.
        """
        with self.lock:
            call.finish()
        observer = call.observer
        if observer is not None:
            observer.released(error)

    def _injected_fault(
        self, head: RequestHead, destination: str, subset: str
    ) -> FaultPolicy | None:
        """The fault :func:`meshlib.testing.fault` injects into this request, if any."""
        return matching(self.injected_faults, head, destination, subset, self._fqdn)

    def _fqdn(self, host: str) -> str:
        return expand(host, self.workload.namespace, self.workload.domain)
