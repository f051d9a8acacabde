"""Runtime state kept across requests and across configuration snapshots.

Per cluster: its hosts (with their counters) and its load balancer. A cluster's state is
rebuilt when its endpoints or its policy change, keeping the counters of hosts that are
still there, so a reload changes nothing for clusters whose identity is unchanged
(``ARCHITECTURE.md``, hot-path rule). Also the DNS answers, refreshed every
``dnsRefreshRate`` (60 s, Istio's mesh default; the standard resolver gives no TTL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from meshlib._core._balancer import Balancer, LeastRequest, RandomBalancer, RoundRobin
from meshlib._core._cluster import ClusterKey, HostState
from meshlib._endpoints import Endpoint
from meshlib._hostnames import is_ip
from meshlib.config import SimpleLB, TrafficPolicy

__all__ = ["ClusterRuntime", "Runtime", "balancer_for"]


def balancer_for(policy: TrafficPolicy | None) -> Balancer:
    """The balancer a cluster's ``loadBalancer`` asks for (LEAST_REQUEST by default)."""
    simple = policy.load_balancer.simple if policy and policy.load_balancer else None
    if simple is SimpleLB.ROUND_ROBIN:
        return RoundRobin()
    if simple is SimpleLB.RANDOM:
        return RandomBalancer()
    return LeastRequest()


@dataclass(slots=True, eq=False)
class ClusterRuntime:
    """The live state of one cluster."""

    key: ClusterKey
    hosts: list[HostState]
    balancer: Balancer
    source: tuple[object, ...]
    policy: TrafficPolicy | None = None

    def available(self) -> list[HostState]:
        """Hosts the balancer may pick (ejected hosts are filtered by the outlier detector)."""
        return self.hosts


@dataclass(slots=True)
class DnsAnswer:
    """The addresses a name resolved to, and when."""

    addresses: tuple[str, ...]
    resolved_at: float


@dataclass(slots=True)
class Runtime:
    """Everything mutable the engine keeps; guarded by the mesh's lock."""

    clusters: dict[ClusterKey, ClusterRuntime] = field(default_factory=dict)
    dns: dict[str, DnsAnswer] = field(default_factory=dict)
    dns_refresh: float = 60.0

    def stale_names(self, endpoints: Sequence[Endpoint], now: float) -> tuple[str, ...]:
        """Endpoint host names with no DNS answer, or an answer older than the refresh."""
        stale = []
        for endpoint in endpoints:
            name = endpoint.address
            if is_ip(name) or name.startswith("unix://"):
                continue
            answer = self.dns.get(name)
            if answer is None or now - answer.resolved_at >= self.dns_refresh:
                stale.append(name)
        return tuple(dict.fromkeys(stale))

    def resolved(self, name: str, addresses: Sequence[str], now: float) -> None:
        """Record a DNS answer (an empty one keeps the previous addresses, as Envoy does)."""
        previous = self.dns.get(name)
        if not addresses and previous is not None:
            self.dns[name] = DnsAnswer(previous.addresses, now)
        else:
            self.dns[name] = DnsAnswer(tuple(addresses), now)

    def current(self, key: ClusterKey, source: tuple[object, ...]) -> ClusterRuntime | None:
        """The runtime of ``key`` if it was built from ``source``.

        The same objects (the usual case: one snapshot) answer at once; after a reload,
        equal values keep the runtime as it is (balancer schedules included) and adopt
        the new objects.
        """
        known = self.clusters.get(key)
        if known is None:
            return None
        if _same(known.source, source):
            return known
        if known.source == source:
            known.source = source
            return known
        return None

    def cluster(
        self,
        key: ClusterKey,
        hosts: list[HostState],
        policy: TrafficPolicy | None,
        source: tuple[object, ...],
    ) -> ClusterRuntime:
        """The runtime of ``key``, rebuilt if its endpoints or policy changed.

        ``source`` names what the hosts were built from (endpoint tuples, the policy, DNS
        answers); the same objects mean nothing changed.
        """
        known = self.clusters.get(key)
        if known is not None and _same(known.source, source):
            return known
        if known is not None:
            previous = {(h.address, h.port): h for h in known.hosts}
            hosts = [_carry_over(h, previous.get((h.address, h.port))) for h in hosts]
        balancer = known.balancer if known is not None and _same_balancing(known, policy) else None
        runtime = ClusterRuntime(key, hosts, balancer or balancer_for(policy), source, policy)
        self.clusters[key] = runtime
        return runtime


def _same_balancing(known: ClusterRuntime, policy: TrafficPolicy | None) -> bool:
    """Does the cluster keep its load-balancing policy (so its balancer can stay)?"""

    def lb(p: TrafficPolicy | None) -> object:
        return p.load_balancer if p is not None else None

    return lb(known.policy) == lb(policy)


def _same(first: tuple[object, ...], second: tuple[object, ...]) -> bool:
    """Same objects, compared by identity: snapshots never change, so identity is enough."""
    return len(first) == len(second) and all(a is b for a, b in zip(first, second, strict=True))


def _carry_over(host: HostState, previous: HostState | None) -> HostState:
    """Keep a host's counters across a rebuild of its cluster."""
    if previous is None:
        return host
    previous.endpoint = host.endpoint
    return previous
