"""Outlier detection: Envoy's passive health checking, as Istio configures it.

Theory of operation (``envoy-semantics.md`` §4; ``istio-api.md`` §2.5). Only a
DestinationRule with an ``outlierDetection`` block turns it on. Each upstream answer is
a result for its host:

* a 5xx counts towards ``consecutive5xxErrors`` (5 when the block is present; 0
  disables) and, for 502/503/504, ``consecutiveGatewayErrors`` (off unless set); any
  other status resets both counters;
* a failure before the answer is a local-origin failure: a connect failure or reset
  counts as 503, a timeout as 504, unless ``splitExternalLocalOriginErrors`` counts
  them apart against ``consecutiveLocalOriginFailures`` (5);
* overflow replies (``UO``) and fault aborts are not results at all;
* ``outlierDetectionHttpErrorCodes``, when set, lists the statuses that are errors
  (a listed 502/503/504 also counts as a gateway error); every other status is a success.

A counter reaching its threshold ejects the host at once, if ``maxEjectionPercent``
allows it: Envoy ≥ 1.28 ejects only when ``100 × (ejected + 1) / hosts ≤ max`` (10 % by
default: with fewer than 10 hosts, nothing is ever ejected). The n-th ejection in a row
lasts ``min(baseEjectionTime × n, max(300 s, baseEjectionTime))``. Hosts return only at
sweeps, every ``interval``; a sweep also lowers the ejection multiplier of each host that
is not ejected by one. meshlib runs the sweeps that are due whenever the cluster is
used, on the mesh's clock, exactly as if a timer had fired at each interval.

The rules are data: :data:`TRANSITIONS` says how each result moves a host's counters,
:data:`STATE_MACHINE` how a host moves between healthy and ejected.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from meshlib._core._cluster import HostState
from meshlib.config import OutlierDetection

__all__ = ["Detector", "Result", "detector_for"]

_GATEWAY = frozenset({502, 503, 504})
_MAX_EJECTION_FLOOR = 300.0


class Result(enum.Enum):
    """What one attempt tells the detector about its host."""

    SUCCESS = "success"  # a non-5xx answer
    SERVER_ERROR = "5xx"  # a 5xx other than 502/503/504
    GATEWAY_ERROR = "gateway"  # 502, 503, 504
    LOCAL_FAILURE = "local"  # connect failure, reset or timeout (counted as 503/504)


class State(enum.Enum):
    """A host is either in the load-balancing set or ejected from it."""

    HEALTHY = "healthy"
    EJECTED = "ejected"


class Event(enum.Enum):
    """What can happen to a host."""

    RESULT = "result"  # an attempt's result was recorded
    THRESHOLD = "threshold"  # a consecutive counter reached its threshold
    SWEEP_DUE = "sweep"  # an interval passed


@dataclass(frozen=True, slots=True)
class Detector:
    """One cluster's outlier-detection settings, with Istio's and Envoy's defaults."""

    consecutive_5xx: int = 5
    consecutive_gateway: int = 0
    consecutive_local: int = 5
    split_local: bool = False
    interval: float = 10.0
    base_ejection: float = 30.0
    max_ejection_percent: int = 10
    error_codes: frozenset[int] = frozenset()

    @property
    def max_ejection(self) -> float:
        """Envoy's ``max_ejection_time`` default: 300 s, or the base time if longer."""
        return max(_MAX_EJECTION_FLOOR, self.base_ejection)

    def record(
        self, host: HostState, result: Result, hosts: Sequence[HostState], now: float
    ) -> bool:
        """Count ``result`` for ``host``; True when it got the host ejected.

        As Envoy does: a counter fires when it *equals* its threshold; an ejected host
        is not ejected again; the counter that fired is reset whether or not the
        ``maxEjectionPercent`` cap let the ejection happen.
        """
        TRANSITIONS[result](host, self.split_local)
        fired = self._fired(host)
        if fired is None or host.ejected_until is not None:
            return False
        ejected = self._eject(host, hosts, now)
        setattr(host, fired, 0)
        return ejected

    def succeeded(self, host: HostState) -> None:
        """Count a success for ``host``: what :meth:`record` does with one, in short (a
        success only resets counters, so no counter can fire and no host is ejected)."""
        _success(host, self.split_local)

    def _fired(self, host: HostState) -> str | None:
        """The consecutive counter of ``host`` that just reached its threshold, if any."""
        if self.consecutive_gateway and host.consecutive_gateway == self.consecutive_gateway:
            return "consecutive_gateway"
        if self.consecutive_5xx and host.consecutive_5xx == self.consecutive_5xx:
            return "consecutive_5xx"
        local = self.split_local and self.consecutive_local
        if local and host.consecutive_local == self.consecutive_local:
            return "consecutive_local"
        return None

    def _eject(self, host: HostState, hosts: Sequence[HostState], now: float) -> bool:
        ejected = sum(1 for h in hosts if h.ejected_until is not None)
        if 100 * (ejected + 1) > self.max_ejection_percent * len(hosts):
            return False  # Envoy >= 1.28: the cap counts the host about to be ejected
        if host.ejections * self.base_ejection < self.max_ejection + self.base_ejection:
            host.ejections += 1
        host.ejected_at = now
        host.ejected_until = now + self.ejection_time(host.ejections)
        return True

    def ejection_time(self, ejections: int) -> float:
        """How long the n-th ejection in a row lasts: ``min(base × n, max)``."""
        return min(self.base_ejection * ejections, self.max_ejection)

    def result_of_status(self, status: int) -> Result:
        """The result an upstream status stands for: 5xx are errors, unless
        ``outlierDetectionHttpErrorCodes`` lists the statuses that are."""
        if self.error_codes and status not in self.error_codes:
            return Result.SUCCESS
        if status in _GATEWAY:
            return Result.GATEWAY_ERROR
        if status >= 500 or self.error_codes:
            return Result.SERVER_ERROR
        return Result.SUCCESS

    def sweep(self, hosts: Sequence[HostState], last: float, now: float) -> tuple[float, bool]:
        """Run every sweep due between ``last`` and ``now``.

        Returns the time of the last sweep run and whether any host came back.
        """
        returned = False
        tick = last + self.interval
        while tick <= now:
            returned |= self._sweep_once(hosts, tick)
            if not any(h.ejected_until is not None or h.ejections for h in hosts):
                tick += self.interval * ((now - tick) // self.interval)  # nothing left to do
            last, tick = tick, tick + self.interval
        return last, returned

    def _sweep_once(self, hosts: Sequence[HostState], tick: float) -> bool:
        returned = False
        for host in hosts:
            if host.ejected_until is None:
                host.ejections = max(0, host.ejections - 1)
            elif tick - host.ejected_at >= self.ejection_time(host.ejections):
                host.ejected_until = None
                host.consecutive_5xx = host.consecutive_gateway = 0
                returned = True
        return returned


def _success(host: HostState, split: bool) -> None:
    host.consecutive_5xx = host.consecutive_gateway = 0
    if split:
        host.consecutive_local = 0


def _server_error(host: HostState, _split: bool) -> None:
    host.consecutive_gateway = 0
    host.consecutive_5xx += 1


def _gateway_error(host: HostState, _split: bool) -> None:
    host.consecutive_gateway += 1
    host.consecutive_5xx += 1


def _local_failure(host: HostState, split: bool) -> None:
    if split:
        host.consecutive_local += 1
    else:  # counted as the 503/504 Envoy reports for it
        _gateway_error(host, split)


#: How each result moves a host's counters.
TRANSITIONS: dict[Result, Callable[[HostState, bool], None]] = {
    Result.SUCCESS: _success,
    Result.SERVER_ERROR: _server_error,
    Result.GATEWAY_ERROR: _gateway_error,
    Result.LOCAL_FAILURE: _local_failure,
}

#: The ejection state machine: (state, event) → next state. ``THRESHOLD`` ejects only
#: when the cap allows (else the host stays); ``SWEEP_DUE`` returns an ejected host only
#: once its ejection time has passed.
STATE_MACHINE: dict[tuple[State, Event], State] = {
    (State.HEALTHY, Event.RESULT): State.HEALTHY,
    (State.HEALTHY, Event.THRESHOLD): State.EJECTED,
    (State.HEALTHY, Event.SWEEP_DUE): State.HEALTHY,  # and the multiplier decays by one
    (State.EJECTED, Event.RESULT): State.EJECTED,  # counted, but no new ejection
    (State.EJECTED, Event.THRESHOLD): State.EJECTED,
    (State.EJECTED, Event.SWEEP_DUE): State.HEALTHY,  # once base × n has passed
}


def detector_for(outlier: OutlierDetection | None) -> Detector | None:
    """The detector an ``outlierDetection`` block asks for (None: no detection at all)."""
    if outlier is None:
        return None
    return Detector(
        consecutive_5xx=_or_default(outlier.consecutive_5xx_errors, 5),
        consecutive_gateway=outlier.consecutive_gateway_errors or 0,
        consecutive_local=_or_default(outlier.consecutive_local_origin_failures, 5),
        split_local=outlier.split_external_local_origin_errors,
        interval=outlier.interval.seconds if outlier.interval else 10.0,
        base_ejection=outlier.base_ejection_time.seconds if outlier.base_ejection_time else 30.0,
        max_ejection_percent=outlier.max_ejection_percent or 10,
        error_codes=frozenset(outlier.outlier_detection_http_error_codes),
    )


def _or_default(value: int | None, default: int) -> int:
    """A wrapper field: unset means the default, an explicit 0 stays 0 (disabled)."""
    return default if value is None else value
