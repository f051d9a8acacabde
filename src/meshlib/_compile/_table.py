"""The routing table: a frozen snapshot of configuration, compiled for one workload.

Everything a request needs is looked up here with dictionary reads: which service an
authority names, the VirtualService for that host (exact hosts in a dict; wildcard hosts
by suffix, most specific first), its rules with precompiled matchers and cumulative
weights, the merged DestinationRule and the effective policy of each (host, subset, port),
and the service's endpoints. A reload compiles a new table and swaps one reference;
nothing in a table ever changes.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshlib._compile._policy import effective_policy
from meshlib._compile._services import Service
from meshlib._core._cluster import ClusterKey
from meshlib._core._fault import FaultPolicy
from meshlib._core._match import RequestMatcher
from meshlib._core._retry import DEFAULT_RETRY, RetryPolicy
from meshlib._hostnames import DEFAULT_DOMAIN, is_wildcard
from meshlib.config import (
    DestinationRule,
    Headers,
    HTTPRoute,
    MutualTLSMode,
    Resource,
    Subset,
    TrafficPolicy,
    VirtualService,
)

__all__ = [
    "CompiledRoute",
    "DestinationPolicy",
    "OutboundPolicy",
    "RouteTarget",
    "RoutingTable",
    "Service",
    "VirtualHost",
    "WeightedTargets",
    "Workload",
]


class OutboundPolicy(enum.Enum):
    """What happens to hosts the registry does not know (mesh ``outboundTrafficPolicy``)."""

    ALLOW_ANY = "ALLOW_ANY"  # sent as is: Istio's PassthroughCluster
    REGISTRY_ONLY = "REGISTRY_ONLY"  # refused: Istio's BlackHoleCluster (502)


@dataclass(frozen=True, slots=True)
class Workload:
    """The calling workload: whose point of view the table is compiled from.

    Istio compiles configuration per proxy; meshlib per :class:`~meshlib.Mesh`. The
    namespace decides visibility and short-name expansion, the labels decide
    ``sourceLabels`` matches, Sidecar and DestinationRule ``workloadSelector``.
    """

    namespace: str = "default"
    labels: Mapping[str, str] = field(default_factory=dict)
    domain: str = DEFAULT_DOMAIN
    root_namespace: str = "istio-system"

    def namespace_of(self, host: str) -> str:
        """The namespace of a Kubernetes-shaped FQDN ``svc.ns.svc.<domain>``, else ``""``."""
        suffix = f".svc.{self.domain}"
        if host.endswith(suffix) and not is_wildcard(host):
            labels = host[: -len(suffix)].split(".")
            if len(labels) == 2:
                return labels[1]
        return ""


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """One destination of a route: an FQDN, a subset (``""`` for none) and a port."""

    host: str
    subset: str = ""
    port: int = 0
    weight: int = 1
    headers: Headers | None = None


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """What a route destination means on one port: its cluster, the service behind it,
    the subset's label selector (None: no DestinationRule defines the subset, ``NC``)
    and the cluster's effective policy. Worked out once per snapshot."""

    key: ClusterKey
    service: Service | None
    labels: Mapping[str, str] | None
    policy: TrafficPolicy | None


@dataclass(frozen=True, slots=True)
class WeightedTargets:
    """A route's destinations with cumulative weights, ready for one draw per request.

    Weights are relative (``istio-api.md`` §1.4): a single destination gets everything
    whatever its weight, and zero-weight destinations are dropped when there are several.
    """

    targets: tuple[RouteTarget, ...]
    cumulative: tuple[int, ...]

    @property
    def total(self) -> int:
        """The sum of the weights; draws are in ``[0, total)``."""
        return self.cumulative[-1]

    def pick(self, draw: int) -> RouteTarget:
        """The target a draw in ``[0, total)`` lands on (Envoy's ``weighted_clusters``)."""
        return self.targets[bisect.bisect_right(self.cumulative, draw)]


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    """One ``http`` rule, compiled: matchers (none means "everything") and targets.

    ``index`` is the rule's position in the VirtualService's ``http`` list (after
    delegates are merged in); ``mirrors`` are the rule's mirror targets with their
    percentages.
    """

    name: str
    index: int
    matchers: tuple[RequestMatcher, ...]
    spec: HTTPRoute
    targets: WeightedTargets | None
    mirrors: tuple[tuple[RouteTarget, float], ...] = ()
    retry: RetryPolicy = DEFAULT_RETRY
    fault: FaultPolicy | None = None
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class VirtualHost:
    """The routes a VirtualService gives one host pattern.

    ``ports`` lists the ports on which at least one rule applies (``None``: every port);
    on other ports the host takes its default route, as pilot drops a VirtualService
    whose every match names another port.
    """

    host: str
    source: Resource[VirtualService]
    routes: tuple[CompiledRoute, ...]
    ports: frozenset[int] | None = None
    #: ``namespace/name`` of the VirtualService, as ``MeshInfo`` reports it.
    name: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", f"{self.source.namespace}/{self.source.name}")

    def applies_to_port(self, port: int) -> bool:
        """Does any rule of this VirtualService apply on ``port``?"""
        return self.ports is None or port in self.ports


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """The DestinationRules for one host pattern, merged as Istio merges them."""

    host: str
    sources: tuple[Resource[DestinationRule], ...]
    traffic_policy: TrafficPolicy | None
    subsets: Mapping[str, Subset]


def _lookup(exact: Mapping[str, Any], wildcards: tuple[Any, ...], host: str) -> Any:
    found = exact.get(host)
    if found is not None:
        return found
    for candidate in wildcards:  # most specific first
        if candidate.host == "*" or host.endswith(candidate.host[1:]):
            return candidate
    return None


_REMEMBERED_AUTHORITIES = 10_000


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """A compiled configuration snapshot for one workload. Read-only, shared freely."""

    workload: Workload
    virtual_hosts: Mapping[str, VirtualHost]
    wildcard_virtual_hosts: tuple[VirtualHost, ...]
    destination_policies: Mapping[str, Mapping[str, DestinationPolicy]]
    wildcard_destination_policies: Mapping[str, tuple[DestinationPolicy, ...]]
    services: Mapping[str, Service]
    cluster_policies: Mapping[tuple[str, str, int], TrafficPolicy | None]
    outbound_policy: OutboundPolicy = OutboundPolicy.ALLOW_ANY
    addresses: Mapping[str, str] = field(default_factory=dict)
    #: The wildcard ServiceEntry hosts (``*.example.com``), most specific first.
    wildcard_services: tuple[Service, ...] = ()
    #: The mTLS mode of each namespace's namespace-wide PeerAuthentication (the root
    #: namespace's is mesh-wide), for auto-mTLS.
    peer_modes: Mapping[str, MutualTLSMode] = field(default_factory=dict)
    #: Cluster policies worked out on first use, for ports no service declares (endpoints
    #: set in code declare none): one object per cluster for the snapshot's life.
    _later_policies: dict[tuple[str, str, int], TrafficPolicy | None] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    #: ``route_host`` answers, remembered for the authorities an application calls (up to
    #: a bound, so that calls to ever-new external hosts cannot grow it without end).
    _route_hosts: dict[tuple[str, int], str | None] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    _cluster_targets: dict[tuple[str, str, int, int], ClusterTarget] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def virtual_host(self, host: str) -> VirtualHost | None:
        """The VirtualService routes for ``host`` (an FQDN): exact host, else the most
        specific wildcard, else ``None``."""
        found: VirtualHost | None = _lookup(self.virtual_hosts, self.wildcard_virtual_hosts, host)
        return found

    def auto_mtls(self, namespace: str) -> bool:
        """Does auto-mTLS stay on towards services of ``namespace``? Off when the
        namespace's PeerAuthentication, else the mesh-wide one, says ``DISABLE``."""
        mode = self.peer_modes.get(namespace) or self.peer_modes.get(self.workload.root_namespace)
        return mode is not MutualTLSMode.DISABLE

    def route_host(self, host: str, port: int) -> str | None:
        """The known host a request to ``host:port`` is routed for, or ``None``.

        None also when the host's service declares ports but not ``port``: Istio builds
        the service's virtual hosts only on its declared ports, so on any other port the
        name is as unknown as any other (passthrough, or 502 under ``REGISTRY_ONLY``).
        """
        key = (host, port)
        if key in self._route_hosts:
            return self._route_hosts[key]
        name = self.resolve_authority(host)
        if name is not None:
            service = self.service(name)
            if service is not None and service.ports and service.port(port) is None:
                name = None
        if len(self._route_hosts) < _REMEMBERED_AUTHORITIES:
            self._route_hosts[key] = name
        return name

    def cluster_target(self, target: RouteTarget, called_port: int) -> ClusterTarget:
        """The cluster ``target`` sends to when the request came in on ``called_port``
        (``destination.port``, else the service's only port, else the port called:
        Istio's ``GetDestinationCluster``)."""
        memo = (target.host, target.subset, target.port, called_port)
        found = self._cluster_targets.get(memo)
        if found is None:
            service = self.service(target.host)
            port = target.port or (
                service.ports[0].number
                if service is not None and len(service.ports) == 1
                else called_port
            )
            key = ClusterKey(service.host if service else target.host, target.subset, port)
            found = ClusterTarget(
                key,
                service,
                self.subset_labels(key.host, target.subset),
                self.cluster_policy(key.host, key.subset, key.port),
            )
            if len(self._cluster_targets) < _REMEMBERED_AUTHORITIES:
                self._cluster_targets[memo] = found
        return found

    def subset_labels(self, host: str, subset: str) -> Mapping[str, str] | None:
        """The subset's label selector; ``{}`` for no subset; None when no DestinationRule
        defines it."""
        if not subset:
            return {}
        policy = self.destination_policy(host)
        found = policy.subsets.get(subset) if policy is not None else None
        return found.labels if found is not None else None

    def resolve_authority(self, host: str) -> str | None:
        """The known host a request's authority names, or ``None`` for an unknown host.

        Istio's virtual-host domains (``istio-api.md`` §5.4): the host as written (a
        trailing dot ignored), a service address, and for a client in namespace ``ns``
        the short forms of ``svc.ns.svc.<domain>``: ``svc`` (same namespace only),
        ``svc.ns`` and ``svc.ns.svc``. Known means declared by a ServiceEntry, set in
        code, or named by a VirtualService.
        """
        name = host.lower().removesuffix(".")
        if self._known(name):
            return name
        address_host = self.addresses.get(name)
        if address_host is not None:
            return address_host
        dots = name.count(".")
        domain = self.workload.domain
        if dots == 0:
            candidate = f"{name}.{self.workload.namespace}.svc.{domain}"
        elif dots == 1:
            candidate = f"{name}.svc.{domain}"
        elif dots == 2 and name.endswith(".svc"):
            candidate = f"{name}.{domain}"
        else:
            return None
        return candidate if self._known(candidate) else None

    def _known(self, host: str) -> bool:
        return (
            self.service(host) is not None
            or host in self.virtual_hosts
            or any(v.host == "*" or host.endswith(v.host[1:]) for v in self.wildcard_virtual_hosts)
        )

    def service(self, host: str) -> Service | None:
        """The service ``host`` belongs to: declared exactly, else by the most specific
        wildcard ServiceEntry host (``*.example.com``)."""
        found = self.services.get(host)
        if found is not None:
            return found
        for candidate in self.wildcard_services:
            if host.endswith(candidate.host[1:]):
                return candidate
        return None

    def destination_policy(self, host: str) -> DestinationPolicy | None:
        """The merged DestinationRule for ``host``, looked up as a sidecar does.

        Namespaces are searched in order: the client's, the service's, the root
        namespace; the first with a matching host wins, and within it the most specific
        host (``istio-api.md`` §2.8).
        """
        service = self.services.get(host)
        service_namespace = service.namespace if service else self.workload.namespace_of(host)
        namespaces = (self.workload.namespace, service_namespace, self.workload.root_namespace)
        for namespace in namespaces:
            found: DestinationPolicy | None = _lookup(
                self.destination_policies.get(namespace, {}),
                self.wildcard_destination_policies.get(namespace, ()),
                host,
            )
            if found is not None:
                return found
        return None

    def cluster_policy(self, host: str, subset: str, port: int) -> TrafficPolicy | None:
        """The effective TrafficPolicy of cluster ``outbound|port|subset|host``."""
        key = (host, subset, port)
        if key in self.cluster_policies:
            return self.cluster_policies[key]
        if key in self._later_policies:
            return self._later_policies[key]
        policy = self.destination_policy(host)
        effective = None
        if policy is not None:
            chosen = policy.subsets.get(subset) if subset else None
            effective = effective_policy(
                policy.traffic_policy, chosen.traffic_policy if chosen else None, port
            )
        self._later_policies[key] = effective  # one atomic store: safe across threads
        return effective
