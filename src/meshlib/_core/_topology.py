"""Picking a host: priority level, then locality, then the cluster's balancer.

The order Envoy follows (``envoy-semantics.md`` §5.5): choose a priority level by the
levels' health (overprovisioning factor 1.4); in it, choose a locality by weight when
``distribute`` weights localities; then let the load balancer pick among the healthy
hosts there. Ejected hosts are unhealthy. When a level has fewer healthy hosts than the
panic threshold allows, Envoy balances over all its hosts instead; Istio sets that
threshold from ``minHealthPercent`` (0 by default: no panic, 503 ``UH`` when nothing is
healthy).

Health is recomputed only when it changes (an ejection, a return), never per pick.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Protocol

from meshlib._core._balancer import Balancer
from meshlib._core._cluster import HostState
from meshlib._core._locality import (
    Group,
    Level,
    choose_level,
    level_for,
    locality_availability,
    priority_loads,
)

__all__ = ["HashTable", "Topology"]


class HashTable(Protocol):
    """A consistent-hash table over some hosts (Envoy's ring hash or Maglev)."""

    def pick(self, hash_value: int, attempt: int = 0) -> int:
        """The index of the host ``hash_value`` maps to (``attempt`` for retries)."""
        ...


#: Builds the table of one priority level from its localities: ``(weight, hosts)`` pairs,
#: weighted by locality when ``distribute`` gives weights (a single pair of weight 0:
#: no locality weighting). Indexes count hosts across the pairs, in order.
HashBuilder = Callable[[Sequence[tuple[int, Sequence[HostState]]]], HashTable]


class Topology:
    """The hosts of one cluster, arranged for picking."""

    def __init__(
        self,
        levels: Sequence[Level],
        make_balancer: Callable[[], Balancer],
        *,
        panic_threshold: int = 0,
        hash_builder: HashBuilder | None = None,
    ) -> None:
        self.levels = tuple(levels)
        self._make_balancer = make_balancer
        self._panic = panic_threshold
        self._hash_builder = hash_builder
        self._balancers: dict[tuple[int, int], Balancer] = {}
        self._healthy: list[list[tuple[HostState, ...]]] = []
        self._loads: list[int] = []
        self._healthy_counts: list[int] = []
        self._level_of = {host: i for i, level in enumerate(self.levels) for host in level.hosts}
        self._hosts = tuple(self._level_of)
        self._tables: dict[int, tuple[tuple[HostState, ...], HashTable]] = {}
        self._stale = True

    @property
    def hosts(self) -> tuple[HostState, ...]:
        """Every host of the cluster, healthy or not."""
        return self._hosts

    def level_of(self, host: HostState) -> int:
        """The priority level ``host`` is in."""
        return self._level_of[host]

    def invalidate(self) -> None:
        """Health changed (a host ejected or returned): recompute before the next pick."""
        self._stale = True

    def pick(
        self,
        rng: random.Random,
        now: float,
        *,
        hash_value: int | None = None,
        attempt: int = 0,
        excluded: frozenset[int] = frozenset(),
    ) -> HostState | None:
        """A host for the next attempt, or None when no host is healthy (``UH``).

        ``excluded`` priority levels get no load (a retry with ``retryRemoteLocalities``:
        Envoy's ``previous_priorities``), unless that would leave no healthy level.
        """
        if self._stale:
            self._refresh()
        if not any(self._loads):
            return None
        loads = self._loads_without(excluded) if excluded else self._loads
        if self._hash_builder is not None:
            return self._hashed(loads, rng, hash_value, attempt)
        level = choose_level(loads, rng) if len(self.levels) > 1 else 0
        group, hosts = self._candidates(level, rng)
        if not hosts:
            return None
        balancer = self._balancers.get((level, group))
        if balancer is None:
            balancer = self._balancers[(level, group)] = self._make_balancer()
        return balancer.pick(hosts, rng, now)

    def _refresh(self) -> None:
        self._healthy = [
            [tuple(h for h in group.hosts if h.ejected_until is None) for group in level.groups]
            for level in self.levels
        ]
        healthy = [sum(len(g) for g in groups) for groups in self._healthy]
        totals = [len(level.hosts) for level in self.levels]
        loads = priority_loads(healthy, totals)
        if not any(healthy) and not (self._panic and any(totals)):
            loads = [0] * len(loads)
        self._loads = loads
        self._healthy_counts = healthy
        self._tables.clear()
        self._stale = False

    def _loads_without(self, excluded: frozenset[int]) -> list[int]:
        """Priority loads with the ``excluded`` levels counted as having no healthy host;
        the usual loads when no other level has one (Envoy then resets the exclusions)."""
        healthy = [0 if i in excluded else n for i, n in enumerate(self._healthy_counts)]
        if not any(healthy):
            return self._loads
        return priority_loads(healthy, [len(level.hosts) for level in self.levels])

    def _candidates(self, level: int, rng: random.Random) -> tuple[int, tuple[HostState, ...]]:
        """The group chosen in ``level`` and its hosts to balance over (all of them in panic)."""
        groups = self.levels[level].groups
        healthy = self._healthy[level]
        index = 0
        if len(groups) > 1 or groups[0].weight:
            index = _weighted_group(groups, healthy, rng)
        total = len(groups[index].hosts)
        if total and 100 * len(healthy[index]) < self._panic * total:
            return index, groups[index].hosts  # panic: balance over every host
        return index, healthy[index]

    def _hashed(
        self, loads: Sequence[int], rng: random.Random, hash_value: int | None, attempt: int
    ) -> HostState | None:
        """Consistent hashing as Envoy's thread-aware balancers do it: the hash itself picks
        the priority level (``hash % 100`` against the loads), then the level's one table,
        built over its healthy hosts (all of them in panic) and weighted by locality when
        ``distribute`` weights localities. A request without a key hashes a random value.
        """
        hashed = hash_value if hash_value is not None else rng.getrandbits(64)
        level = level_for(hashed % 100, loads) if len(self.levels) > 1 else 0
        cached = self._tables.get(level)  # tables live until health changes (_refresh)
        if cached is None:
            localities = self._hash_localities(level)
            hosts = tuple(host for _, group in localities for host in group)
            if not hosts:
                return None
            assert self._hash_builder is not None  # only called with hashing on
            cached = self._tables[level] = (hosts, self._hash_builder(localities))
        hosts, table = cached
        return hosts[table.pick(hashed, attempt)]

    def _hash_localities(self, level: int) -> list[tuple[int, tuple[HostState, ...]]]:
        """The ``(weight, hosts)`` a level's table is built from."""
        groups = self.levels[level].groups
        healthy = self._healthy[level]
        total = len(self.levels[level].hosts)
        if total and 100 * sum(len(h) for h in healthy) < self._panic * total:
            healthy = [group.hosts for group in groups]  # panic: every host
        if any(group.weight for group in groups):
            return [(group.weight, hosts) for group, hosts in zip(groups, healthy, strict=True)]
        return [(0, tuple(host for hosts in healthy for host in hosts))]


def _weighted_group(
    groups: Sequence[Group], healthy: Sequence[tuple[HostState, ...]], rng: random.Random
) -> int:
    """A locality drawn by its effective weight (weight × availability).

    Envoy walks an earliest-deadline-first schedule over localities; a weighted draw gives
    the same shares without a schedule to keep per level.
    """
    weights = [
        locality_availability(group, len(hosts))
        for group, hosts in zip(groups, healthy, strict=True)
    ]
    total = sum(weights)
    if total <= 0:
        return 0
    draw = rng.random() * total
    for index, weight in enumerate(weights):
        draw -= weight
        if draw < 0:
            return index
    return len(weights) - 1
