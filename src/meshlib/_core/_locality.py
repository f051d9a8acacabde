"""Locality: priority levels and locality weights, as Istio configures Envoy.

Istio (``pilot/pkg/networking/core/loadbalancer``; ``istio-api.md`` §2.3) turns the
client's locality and a DestinationRule's ``localityLbSetting`` into Envoy concepts:

* ``distribute``: for the first rule whose ``from`` matches the client's locality, each
  ``to`` locality gets its weight (split among matching localities by their endpoint
  weights); localities no rule names get no traffic. Applied whenever locality load
  balancing is enabled (the mesh default).
* failover, only when the cluster has ``outlierDetection`` (Envoy never drops to a lower
  priority otherwise): ``failoverPriority`` labels first (priority = how many of the
  listed labels match, from the first), then the locality priorities: same
  region/zone/subzone 0, same region/zone 1, same region 2, other regions 3 — 4 for
  regions a ``failover`` rule from the client's region does not name.

Envoy then spreads load over priorities by their health with an overprovisioning factor
of 1.4 (``envoy-semantics.md`` §5.5): a priority keeps all traffic until fewer than about
71 % of its hosts are healthy.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from meshlib._core._cluster import HostState
from meshlib.config import LocalityLoadBalancerSetting

__all__ = ["Group", "Level", "arrange", "locality_matches", "priority_loads"]

#: Envoy's default overprovisioning factor, in percent.
OVERPROVISIONING = 140

#: Topology labels Istio compares for ``failoverPriority`` (and derives from a locality).
REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
SUBZONE_LABEL = "topology.istio.io/subzone"


def _parts(locality: str) -> tuple[str, str, str]:
    region, _, rest = locality.partition("/")
    zone, _, subzone = rest.partition("/")
    return region, zone, subzone


def locality_matches(locality: str, pattern: str) -> bool:
    """``util.LocalityMatch``: ``region/zone/subzone`` against a pattern with ``*``.

    A ``*`` segment matches anything from there on; missing trailing segments match too.
    """
    for have, want in zip(_parts(locality), pattern.split("/"), strict=False):
        if want == "*":
            return True
        if have != want:
            return False
    return True


def locality_priority(client: str, endpoint: str) -> int:
    """``util.LbPriority``: 0 same region/zone/subzone, 1 same zone, 2 same region, 3 other."""
    mine, theirs = _parts(client), _parts(endpoint)
    if mine[0] != theirs[0]:
        return 3
    if mine[1] != theirs[1]:
        return 2
    return 0 if mine[2] == theirs[2] else 1


@dataclass(frozen=True, slots=True)
class Group:
    """Hosts of one locality within one priority, with the locality's weight (0: none)."""

    locality: str
    hosts: tuple[HostState, ...]
    weight: int = 0


@dataclass(frozen=True, slots=True)
class Level:
    """One priority level: its locality groups (one group when localities are not weighted)."""

    priority: int
    groups: tuple[Group, ...]
    hosts: tuple[HostState, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", tuple(h for group in self.groups for h in group.hosts))


def _topology_labels(host: HostState) -> Mapping[str, str]:
    """An endpoint's labels plus the topology labels its locality implies."""
    region, zone, subzone = _parts(host.endpoint.effective_locality)
    implied = {REGION_LABEL: region, ZONE_LABEL: zone, SUBZONE_LABEL: subzone}
    return {**implied, **host.endpoint.labels}


def _failover_priority(
    host: HostState, client_labels: Mapping[str, str], labels: Sequence[str]
) -> int:
    """``applyFailoverPriorityPerLocality``: lower when more leading labels match."""
    endpoint_labels = _topology_labels(host)
    for index, entry in enumerate(labels):
        name, _, forced = entry.partition("=")
        wanted = forced if "=" in entry else client_labels.get(name)
        if wanted != endpoint_labels.get(name):
            return len(labels) - index
    return 0


def _region_failover(
    priority: int, client: str, endpoint: str, setting: LocalityLoadBalancerSetting
) -> int:
    """A ``failover`` rule from the client's region sends other regions to priority 4."""
    if priority != 3:
        return priority
    region = _parts(client)[0]
    for rule in setting.failover:
        if rule.from_ == region:
            return 3 if _parts(endpoint)[0] == rule.to else 4
    return priority


def _priorities(
    hosts: Sequence[HostState],
    client_locality: str,
    client_labels: Mapping[str, str],
    setting: LocalityLoadBalancerSetting,
) -> list[int]:
    """The raw priority of each host (before compaction to 0..N).

    Without client labels Istio skips ``failoverPriority`` (every host stays at 0 before
    the locality priorities).
    """
    result = []
    for host in hosts:
        endpoint = host.endpoint.effective_locality
        priority = 0
        if setting.failover_priority:
            if client_labels:
                priority = _failover_priority(host, client_labels, setting.failover_priority)
            if not setting.failover:
                result.append(priority)
                continue
        locality = _region_failover(
            locality_priority(client_locality, endpoint), client_locality, endpoint, setting
        )
        result.append(priority * 5 + locality)
    return result


def _distribute_weights(
    hosts: Sequence[HostState], client_locality: str, setting: LocalityLoadBalancerSetting
) -> dict[str, int] | None:
    """``applyLocalityWeights``: locality → weight for the first matching ``from`` rule."""
    for rule in setting.distribute:
        if not locality_matches(client_locality, rule.from_):
            continue
        localities: dict[str, int] = {}
        for host in hosts:
            name = host.endpoint.effective_locality
            localities[name] = localities.get(name, 0) + host.weight
        weights: dict[str, int] = {}
        for pattern, weight in rule.to.items():
            matched = {
                n: w
                for n, w in localities.items()
                if n not in weights and locality_matches(n, pattern)
            }
            total = sum(matched.values())
            for name, original in matched.items():
                weights[name] = math.ceil(original * weight / total) if total else 0
        return weights
    return None


def arrange(
    hosts: Sequence[HostState],
    setting: LocalityLoadBalancerSetting | None,
    *,
    client_locality: str,
    client_labels: Mapping[str, str],
    failover: bool,
) -> tuple[Level, ...]:
    """Arrange a cluster's hosts into priority levels and locality groups.

    ``setting`` is the effective ``localityLbSetting`` (None: the mesh default, enabled
    with nothing configured); ``failover`` is whether the cluster has outlier detection.
    """
    if setting is not None and setting.enabled is False:
        return (Level(0, (Group("", tuple(hosts)),)),)
    setting = setting or LocalityLoadBalancerSetting()
    weights = _distribute_weights(hosts, client_locality, setting) if setting.distribute else None
    if weights is not None:
        return (Level(0, _weighted_groups(hosts, weights)),)
    if not failover:
        return (Level(0, (Group("", tuple(hosts)),)),)
    raw = _priorities(hosts, client_locality, client_labels, setting)
    levels = []
    for rank, priority in enumerate(sorted(set(raw))):
        members = tuple(h for h, p in zip(hosts, raw, strict=True) if p == priority)
        levels.append(Level(rank, (Group("", members),)))
    return tuple(levels)


def _weighted_groups(hosts: Sequence[HostState], weights: Mapping[str, int]) -> tuple[Group, ...]:
    groups: dict[str, list[HostState]] = {}
    for host in hosts:
        name = host.endpoint.effective_locality
        if weights.get(name):
            groups.setdefault(name, []).append(host)
    return tuple(Group(name, tuple(members), weights[name]) for name, members in groups.items())


def _health(healthy: int, total: int) -> int:
    """Envoy's per-priority health: ``min(100, 140 * healthy / total)``, integer percent."""
    return min(100, OVERPROVISIONING * healthy // total) if total else 0


def priority_loads(healthy: Sequence[int], totals: Sequence[int]) -> list[int]:
    """Envoy's per-priority load, in percent, from healthy and total host counts.

    Health is normalised by the total availability (capped at 100); each priority takes
    what its health allows of what is left; when nothing is available everything goes to
    priority 0 (and its panic handling).
    """
    health = [_health(h, t) for h, t in zip(healthy, totals, strict=True)]
    available = min(100, sum(health))
    if available == 0:
        return [100] + [0] * (len(health) - 1)
    loads = []
    left = 100
    for value in health:
        load = min(left, value * 100 // available)
        loads.append(load)
        left -= load
    if left:  # rounding: the first priority with any health takes the remainder
        first = next(i for i, value in enumerate(health) if value)
        loads[first] += left
    return loads


def choose_level(loads: Sequence[int], rng: random.Random) -> int:
    """The priority a request goes to: a draw in [0, 100) against the cumulative loads."""
    return level_for(rng.randrange(100), loads)


def level_for(draw: int, loads: Sequence[int]) -> int:
    """The priority ``draw`` (in [0, 100)) falls in, against the cumulative loads."""
    cumulative = 0
    for index, load in enumerate(loads):
        cumulative += load
        if draw < cumulative:
            return index
    return len(loads) - 1


def locality_availability(group: Group, healthy: int) -> float:
    """A locality's effective weight: weight × min(1, 1.4 × healthy / total)."""
    if not group.hosts:
        return 0.0
    return group.weight * min(1.0, OVERPROVISIONING / 100 * healthy / len(group.hosts))
