"""Runtime state kept across requests and across configuration snapshots.

Per cluster: its hosts (with their counters) and its load balancer. A cluster's state is
rebuilt when its endpoints or its policy change, keeping the counters of hosts that are
still there, so a reload changes nothing for clusters whose identity is unchanged
(``ARCHITECTURE.md``, hot-path rule). Also the DNS answers, refreshed every
``dnsRefreshRate`` (60 s, Istio's mesh default; the standard resolver gives no TTL).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from meshlib._core._balancer import Balancer, LeastRequest, RandomBalancer, RoundRobin
from meshlib._core._cluster import ClusterKey, HostState
from meshlib._core._hash_policy import hash_table, locality_hash_table
from meshlib._core._hashring import host_key
from meshlib._core._limits import Limits, PoolSettings, limits_for, pool_settings
from meshlib._core._locality import REGION_LABEL, SUBZONE_LABEL, ZONE_LABEL, arrange
from meshlib._core._outlier import Detector, detector_for
from meshlib._core._tls_policy import NO_TLS, ClusterTls
from meshlib._core._topology import HashBuilder, HashTable, Topology
from meshlib._core._warmup import slow_start_for
from meshlib._endpoints import Endpoint
from meshlib._hostnames import is_ip
from meshlib.config import SimpleLB, TrafficPolicy

__all__ = [
    "ClusterRuntime",
    "Locality",
    "Runtime",
    "balancer_factory",
    "client_locality",
    "hash_builder_for",
    "topology_for",
]


@dataclass(frozen=True, slots=True)
class Locality:
    """Where the client runs, for locality-aware balancing."""

    locality: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


def client_locality(locality: str, labels: Mapping[str, str]) -> Locality:
    """The client's locality, with the topology labels ``failoverPriority`` compares."""
    region, _, rest = locality.partition("/")
    zone, _, subzone = rest.partition("/")
    implied = {REGION_LABEL: region, ZONE_LABEL: zone, SUBZONE_LABEL: subzone} if locality else {}
    return Locality(locality, {**implied, **labels})


def balancer_factory(policy: TrafficPolicy | None) -> Callable[[], Balancer]:
    """Makes the balancer a cluster's ``loadBalancer.simple`` asks for (LEAST_REQUEST by
    default), with slow start when ``warmup`` is set (ROUND_ROBIN and LEAST_REQUEST)."""
    settings = policy.load_balancer if policy is not None else None
    simple = settings.simple if settings is not None else None
    slow_start = slow_start_for(settings)
    if simple is SimpleLB.ROUND_ROBIN:
        return lambda: RoundRobin(slow_start)
    if simple is SimpleLB.RANDOM:
        return RandomBalancer
    return lambda: LeastRequest(slow_start=slow_start)


def hash_builder_for(policy: TrafficPolicy | None) -> HashBuilder | None:
    """Builds the ring or Maglev table ``loadBalancer.consistentHash`` asks for, over one
    priority level's localities, keyed as Envoy keys hosts (``ip:port``)."""
    settings = policy.load_balancer if policy is not None else None
    consistent = settings.consistent_hash if settings is not None else None
    if consistent is None:
        return None

    def build(localities: Sequence[tuple[int, Sequence[HostState]]]) -> HashTable:
        keyed = [
            (weight, [(_hash_key(h), h.weight) for h in hosts]) for weight, hosts in localities
        ]
        if len(keyed) == 1 and keyed[0][0] == 0:
            return hash_table(consistent, keyed[0][1])
        return locality_hash_table(consistent, keyed)

    return build


def _hash_key(host: HostState) -> str:
    """Envoy's host key: the address as it prints it (a name that is no IP stays as is)."""
    return _address_key(host.address, host.port)


@functools.lru_cache(maxsize=65536)
def _address_key(address: str, port: int) -> str:
    """Parsing an address costs microseconds; a ring over 10,000 hosts needs them all."""
    try:
        return host_key(address, port)
    except ValueError:
        return f"{address}:{port}"


def topology_for(
    hosts: list[HostState],
    policy: TrafficPolicy | None,
    client: Locality,
) -> Topology:
    """Arrange ``hosts`` as the cluster's policy says: locality levels, balancer (or
    consistent-hash table), panic threshold."""
    settings = policy.load_balancer if policy is not None else None
    outlier = policy.outlier_detection if policy is not None else None
    levels = arrange(
        hosts,
        settings.locality_lb_setting if settings is not None else None,
        client_locality=client.locality,
        client_labels=client.labels,
        failover=outlier is not None,
    )
    panic = outlier.min_health_percent if outlier is not None else 0
    return Topology(
        levels,
        balancer_factory(policy),
        panic_threshold=panic,
        hash_builder=hash_builder_for(policy),
    )


@dataclass(slots=True, eq=False)
class ClusterRuntime:
    """The live state of one cluster.

    ``limits`` are its circuit breakers (kept across rebuilds, see :meth:`Runtime.limits`);
    ``detector`` its outlier detection (None without an ``outlierDetection`` block), whose
    sweeps are due every ``interval`` after ``last_sweep``.
    """

    key: ClusterKey
    topology: Topology
    source: tuple[object, ...]
    policy: TrafficPolicy | None = None
    limits: Limits = field(default_factory=Limits)
    pool: PoolSettings = field(default_factory=PoolSettings)
    tls: ClusterTls = NO_TLS
    detector: Detector | None = None
    last_sweep: float = 0.0

    @property
    def hosts(self) -> tuple[HostState, ...]:
        """Every host of the cluster."""
        return self.topology.hosts

    def sweep(self, now: float) -> None:
        """Run the outlier-detection sweeps due by ``now``; rebalance if a host returned."""
        detector = self.detector
        if detector is None or now - self.last_sweep < detector.interval:
            return
        self.last_sweep, returned = detector.sweep(self.hosts, self.last_sweep, now)
        if returned:
            self.topology.invalidate()


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
    client: Locality = field(default_factory=Locality)
    connect_timeout: float = 10.0  # the mesh's, for clusters that set none
    trust_domain: str = "cluster.local"  # the workload identity's, for endpoint SPIFFE IDs
    has_identity: bool = False  # a workload identity to present: ISTIO_MUTUAL is possible
    changed_at: float = 0.0  # when the endpoints last changed (a reload, a DNS answer)
    _limits: dict[ClusterKey, tuple[TrafficPolicy | None, Limits]] = field(default_factory=dict)
    #: The runtime last found for a routing table's cluster target (by identity), so that
    #: a request to a known cluster skips re-checking what its hosts were built from.
    _found: dict[int, tuple[object, ClusterRuntime]] = field(default_factory=dict)

    def found_for(self, target: object) -> ClusterRuntime | None:
        """The runtime :meth:`remember` kept for ``target``, while the cluster has not
        been rebuilt since (a table is replaced whole, so its targets are snapshots)."""
        entry = self._found.get(id(target))
        if entry is None or entry[0] is not target:
            return None
        cluster = entry[1]
        return cluster if self.clusters.get(cluster.key) is cluster else None

    def remember(self, target: object, cluster: ClusterRuntime) -> None:
        """Keep ``cluster`` as ``target``'s until the endpoints or configuration change
        (only a registered cluster: an original-destination one is made per request)."""
        if self.clusters.get(cluster.key) is cluster:
            self._found[id(target)] = (target, cluster)

    def pool_settings(self, policy: TrafficPolicy | None) -> PoolSettings:
        """The connection-pool settings of a cluster with ``policy``."""
        return pool_settings(policy, self.connect_timeout)

    def limits(self, key: ClusterKey, policy: TrafficPolicy | None) -> Limits:
        """The circuit breakers of ``key``: one object for the cluster's whole life, so that
        requests in flight release what they took even across reloads; a new policy only
        changes its thresholds."""
        known = self._limits.get(key)
        if known is not None and known[0] is policy:
            return known[1]
        limits = limits_for(policy)
        if known is not None:
            known[1].configure(limits)
            limits = known[1]
        self._limits[key] = (policy, limits)
        return limits

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
            return
        if previous is None or previous.addresses != tuple(addresses):
            self.changed_at = now  # new addresses are new hosts from now on
        self.dns[name] = DnsAnswer(tuple(addresses), now)

    def endpoints_changed(self, now: float) -> None:
        """A reload or new endpoints: hosts first seen after this were added now.

        Slow start counts a host's age from when it joined the cluster (Envoy), not from
        the first request that finds it there.
        """
        self.changed_at = now
        self._found.clear()  # the new table's targets are new objects

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
        now: float,
        tls: ClusterTls = NO_TLS,
    ) -> ClusterRuntime:
        """The runtime of ``key``, rebuilt if its endpoints or policy changed.

        ``source`` names what the hosts were built from (endpoint tuples, the policy, DNS
        answers); the same objects mean nothing changed.
        """
        known = self.clusters.get(key)
        if known is not None and _same(known.source, source):
            return known
        last_sweep = now
        if known is not None:
            previous = {(h.address, h.port): h for h in known.hosts}
            hosts = [_carry_over(h, previous.get((h.address, h.port))) for h in hosts]
            last_sweep = known.last_sweep
        topology = topology_for(hosts, policy, self.client)
        outlier = policy.outlier_detection if policy is not None else None
        runtime = ClusterRuntime(
            key,
            topology,
            source,
            policy,
            limits=self.limits(key, policy),
            pool=self.pool_settings(policy),
            tls=tls,
            detector=detector_for(outlier),
            last_sweep=last_sweep,
        )
        self.clusters[key] = runtime
        return runtime


def _same(first: tuple[object, ...], second: tuple[object, ...]) -> bool:
    """Same objects, compared by identity: snapshots never change, so identity is enough."""
    if len(first) != len(second):
        return False
    for a, b in zip(first, second):  # noqa: B905, SIM110 - the hot path: no generator
        if a is not b:
            return False
    return True


def _carry_over(host: HostState, previous: HostState | None) -> HostState:
    """Keep a host's counters across a rebuild of its cluster."""
    if previous is None:
        return host
    previous.endpoint = host.endpoint
    return previous
