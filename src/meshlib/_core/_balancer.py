"""Load balancing within a cluster: Envoy's algorithms, as Istio configures them.

``envoy-semantics.md`` §5 and ``istio-api.md`` §2.3:

* ``LEAST_REQUEST`` (Istio's default since 1.14, and what ``LEAST_CONN`` means): with
  equal weights, two samples drawn with replacement, the one with fewer active requests
  wins (ties keep the first); otherwise an earliest-deadline-first schedule on
  ``weight / (active + 1) ** bias`` (bias 1.0), the weight taken when a host is put back.
* ``ROUND_ROBIN``: in turn, from a random starting point; with unequal weights, an
  earliest-deadline-first schedule, also started at a random offset, so that clients
  don't march in step.
* ``RANDOM``: uniform over hosts, ignoring weights.
* Slow start (``warmup``) scales a new host's weight while it warms up; Envoy then takes
  the weighted path for every host (:mod:`._warmup`).

Every balancer keeps its state for one set of candidate hosts and starts afresh when the
set changes (a host added, removed, ejected or returned). Balancers never block; the
engine calls them under the mesh's lock.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence

from meshlib._core._cluster import HostState
from meshlib._core._warmup import SlowStart, WarmWindow

__all__ = ["Balancer", "LeastRequest", "RandomBalancer", "RoundRobin"]


class Balancer:
    """Picks one host among the candidate hosts of a cluster."""

    def pick(self, hosts: Sequence[HostState], rng: random.Random, now: float) -> HostState:
        """One of ``hosts`` (never empty)."""
        raise NotImplementedError


class RandomBalancer(Balancer):
    """``RANDOM``: ``hosts[random % n]``, weights ignored (Envoy ``random_lb.cc``)."""

    def pick(self, hosts: Sequence[HostState], rng: random.Random, now: float) -> HostState:  # noqa: ARG002 - time plays no part
        return hosts[rng.randrange(len(hosts))]


class _StaticSchedule:
    """Earliest-deadline-first over fixed weights (Envoy ``edf_scheduler.h``).

    A host's n-th deadline is exactly ``n / weight`` (computed, not accumulated), so over
    any cycle of ``sum(weights)`` picks aligned to the start each host gets exactly its
    weight; ties go to the host inserted first.
    """

    def __init__(self, hosts: Sequence[HostState], start: int) -> None:
        self.hosts = hosts
        self._weights = [host.weight for host in hosts]
        self._counts = [1] * len(hosts)
        self._heap = [(1 / w, i, i) for i, w in enumerate(self._weights)]
        heapq.heapify(self._heap)
        self._order = len(hosts)
        for _ in range(start):
            self.pick()

    def pick(self) -> HostState:
        _, _, index = heapq.heappop(self._heap)
        self._counts[index] += 1
        self._order += 1
        deadline = self._counts[index] / self._weights[index]
        heapq.heappush(self._heap, (deadline, self._order, index))
        return self.hosts[index]


class _DynamicSchedule:
    """Earliest-deadline-first where a host's weight is read when it is put back."""

    def __init__(self, hosts: Sequence[HostState], weight: Callable[[HostState], float]) -> None:
        self.hosts = hosts
        self._weight = weight
        self._now = 0.0
        self._heap = [(1 / max(weight(h), 1e-9), i, i) for i, h in enumerate(hosts)]
        heapq.heapify(self._heap)
        self._order = len(hosts)

    def pick(self) -> HostState:
        deadline, _, index = heapq.heappop(self._heap)
        self._now = deadline
        host = self.hosts[index]
        self._order += 1
        weight = max(self._weight(host), 1e-9)
        heapq.heappush(self._heap, (self._now + 1 / weight, self._order, index))
        return host


class RoundRobin(Balancer):
    """``ROUND_ROBIN``: in turn, or weighted earliest-deadline-first, from a random start."""

    def __init__(self, slow_start: SlowStart | None = None) -> None:
        self._slow_start = slow_start
        self._window = WarmWindow(slow_start)
        self._hosts: Sequence[HostState] | None = None
        self._cursor = 0
        self._warming = False
        self._now = 0.0
        self._schedule: _StaticSchedule | _DynamicSchedule | None = None

    def pick(self, hosts: Sequence[HostState], rng: random.Random, now: float) -> HostState:
        self._now = now
        warming = self._window.warming(hosts, now)
        if hosts is not self._hosts or warming != self._warming:
            self._reset(hosts, rng, warming=warming)
        if self._schedule is None:
            host = hosts[self._cursor % len(hosts)]
            self._cursor += 1
            return host
        return self._schedule.pick()

    def _reset(self, hosts: Sequence[HostState], rng: random.Random, *, warming: bool) -> None:
        self._hosts = hosts
        self._warming = warming
        self._cursor = rng.randrange(len(hosts))
        self._schedule = None
        if warming:
            self._schedule = _DynamicSchedule(hosts, self._warm_weight)
        elif len({host.weight for host in hosts}) > 1:
            self._schedule = _StaticSchedule(hosts, rng.randrange(sum(h.weight for h in hosts)))

    def _warm_weight(self, host: HostState) -> float:
        assert self._slow_start is not None  # only used while warming
        return host.weight * self._slow_start.factor(host, self._now)


class LeastRequest(Balancer):
    """``LEAST_REQUEST``: power of two choices on active requests; weighted: EDF."""

    def __init__(
        self,
        choices: int = 2,
        active_request_bias: float = 1.0,
        slow_start: SlowStart | None = None,
    ) -> None:
        self._choices = choices
        self._bias = active_request_bias
        self._slow_start = slow_start
        self._window = WarmWindow(slow_start)
        self._hosts: Sequence[HostState] | None = None
        self._equal = True
        self._schedule: _DynamicSchedule | None = None
        self._now = 0.0

    def pick(self, hosts: Sequence[HostState], rng: random.Random, now: float) -> HostState:
        if hosts is not self._hosts:
            self._hosts = hosts
            self._equal = len({host.weight for host in hosts}) == 1
            self._schedule = None
        self._now = now
        warming = self._window.warming(hosts, now)
        if self._equal and not warming:
            return self._two_choices(hosts, rng)
        if self._schedule is None:
            self._schedule = _DynamicSchedule(hosts, self._effective_weight)
        return self._schedule.pick()

    def _two_choices(self, hosts: Sequence[HostState], rng: random.Random) -> HostState:
        best = hosts[rng.randrange(len(hosts))]
        for _ in range(self._choices - 1):
            candidate = hosts[rng.randrange(len(hosts))]
            if candidate.active < best.active:
                best = candidate
        return best

    def _effective_weight(self, host: HostState) -> float:
        weight: float = host.weight / (host.active + 1) ** self._bias
        if self._slow_start is not None:
            weight *= self._slow_start.factor(host, self._now)
        return weight
