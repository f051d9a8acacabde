"""Load balancing within a cluster: Envoy's algorithms, as Istio configures them.

``envoy-semantics.md`` §5 and ``istio-api.md`` §2.3:

* ``LEAST_REQUEST`` (Istio's default since 1.14, and what ``LEAST_CONN`` means): with
  equal weights, two samples drawn with replacement, the one with fewer active requests
  wins (ties keep the first); with unequal weights, an earliest-deadline-first schedule on
  ``weight / (active + 1) ** bias`` (bias 1.0).
* ``ROUND_ROBIN``: weighted by an earliest-deadline-first schedule that starts at a
  random offset, so clients don't march in step.
* ``RANDOM``: uniform over hosts, ignoring weights.

Balancers keep their state per cluster and never block; the engine calls them under its
lock.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence

from meshlib._core._cluster import HostState

__all__ = ["Balancer", "LeastRequest", "RandomBalancer", "RoundRobin"]


class Balancer:
    """Picks one host among the healthy hosts of a cluster."""

    def pick(self, hosts: Sequence[HostState], rng: random.Random) -> HostState:
        """One of ``hosts`` (never empty)."""
        raise NotImplementedError


class RandomBalancer(Balancer):
    """``RANDOM``: ``hosts[random % n]``, weights ignored (Envoy ``random_lb.cc``)."""

    def pick(self, hosts: Sequence[HostState], rng: random.Random) -> HostState:
        return hosts[rng.randrange(len(hosts))]


class _Schedule:
    """An earliest-deadline-first schedule (Envoy ``edf_scheduler.h``) over one host set."""

    def __init__(self, hosts: Sequence[HostState], weight: object, picks: int) -> None:
        self.hosts = tuple(hosts)
        self._weight = weight
        self._now = 0.0
        self._heap: list[tuple[float, int, int]] = []
        for index, host in enumerate(self.hosts):
            heapq.heappush(self._heap, (1.0 / self._weight_of(host), index, index))
        self._order = len(self.hosts)
        for _ in range(picks):  # start "as if" some picks happened: a random offset
            self.pick()

    def _weight_of(self, host: HostState) -> float:
        weight = self._weight(host)  # type: ignore[operator]
        return max(float(weight), 1e-9)

    def pick(self) -> HostState:
        deadline, _, index = heapq.heappop(self._heap)
        self._now = deadline
        host = self.hosts[index]
        self._order += 1
        heapq.heappush(self._heap, (self._now + 1.0 / self._weight_of(host), self._order, index))
        return host


class RoundRobin(Balancer):
    """``ROUND_ROBIN``: weighted earliest-deadline-first, from a random starting point."""

    def __init__(self) -> None:
        self._schedule: _Schedule | None = None

    def pick(self, hosts: Sequence[HostState], rng: random.Random) -> HostState:
        schedule = self._schedule
        if schedule is None or schedule.hosts != tuple(hosts):
            start = rng.randrange(max(1, sum(h.weight for h in hosts)))
            schedule = self._schedule = _Schedule(hosts, lambda h: h.weight, start)
        return schedule.pick()


class LeastRequest(Balancer):
    """``LEAST_REQUEST``: power of two choices on active requests; weighted: EDF."""

    def __init__(self, choices: int = 2, active_request_bias: float = 1.0) -> None:
        self._choices = choices
        self._bias = active_request_bias
        self._schedule: _Schedule | None = None

    def pick(self, hosts: Sequence[HostState], rng: random.Random) -> HostState:
        if len({h.weight for h in hosts}) > 1:
            return self._weighted(hosts, rng)
        best = hosts[rng.randrange(len(hosts))]
        for _ in range(self._choices - 1):
            candidate = hosts[rng.randrange(len(hosts))]
            if candidate.active < best.active:
                best = candidate
        return best

    def _weighted(self, hosts: Sequence[HostState], rng: random.Random) -> HostState:
        schedule = self._schedule
        if schedule is None or schedule.hosts != tuple(hosts):
            bias = self._bias
            schedule = self._schedule = _Schedule(
                hosts, lambda h: h.weight / (h.active + 1) ** bias, rng.randrange(len(hosts))
            )
        return schedule.pick()
