"""Slow start (``LoadBalancerSettings.warmup`` / ``warmupDurationSecs``).

Envoy's ``slow_start_config`` (``envoy-semantics.md`` §5.7): while a host is younger
than the window, its weight is scaled by ``max(minimum, (age / window) ** (1 /
aggression))`` with the age at least 1 ms; ``minimumPercent`` defaults to 10 % and
``aggression`` to 1 (linear). Istio applies it to ROUND_ROBIN and LEAST_REQUEST only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from meshlib._core._cluster import HostState
from meshlib.config import LoadBalancerSettings

__all__ = ["SlowStart", "WarmWindow", "slow_start_for"]


@dataclass(frozen=True, slots=True)
class SlowStart:
    """A slow-start window, its floor and its aggression."""

    window: float
    minimum: float = 0.1
    aggression: float = 1.0

    def factor(self, host: HostState, now: float) -> float:
        """The weight multiplier of ``host`` now (1.0 once it has warmed up)."""
        age = now - host.added_at
        if age >= self.window:
            return 1.0
        time_factor = max(age, 0.001) / self.window
        scaled: float = time_factor ** (1 / self.aggression)
        return max(self.minimum, scaled)


class WarmWindow:
    """Is a balancer's host set still warming? Worked out once per host set: hosts only
    age, so the set warms until its youngest host's window ends."""

    __slots__ = ("_hosts", "_slow_start", "_until")

    def __init__(self, slow_start: SlowStart | None) -> None:
        self._slow_start = slow_start
        self._hosts: Sequence[HostState] | None = None
        self._until = -math.inf

    def warming(self, hosts: Sequence[HostState], now: float) -> bool:
        """True while any of ``hosts`` is younger than the window."""
        if self._slow_start is None:
            return False
        if hosts is not self._hosts:
            self._hosts = hosts
            youngest = max((host.added_at for host in hosts), default=-math.inf)
            self._until = youngest + self._slow_start.window
        return now < self._until


def slow_start_for(settings: LoadBalancerSettings | None) -> SlowStart | None:
    """The slow start a cluster's load balancer settings ask for, if any."""
    if settings is None:
        return None
    warmup = settings.warmup
    if warmup is not None and warmup.duration is not None:
        minimum = warmup.minimum_percent if warmup.minimum_percent is not None else 10.0
        aggression = warmup.aggression if warmup.aggression is not None else 1.0
        return SlowStart(warmup.duration.seconds, minimum / 100, aggression)
    if settings.warmup_duration_secs is not None:
        return SlowStart(settings.warmup_duration_secs.seconds)
    return None
