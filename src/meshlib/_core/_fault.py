"""Fault injection decisions (``HTTPFaultInjection``; ``envoy-semantics.md`` §7).

Istio gives Envoy's fault filter a delay and an abort, each with its own percentage: a
``Percent`` becomes a fraction per million (0.0001 % resolution), the deprecated integer
``delay.percent`` a fraction per hundred; an unset percentage injects nothing. The delay
is drawn first; the abort is drawn independently, after the delay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from meshlib._core._replies import LocalReply, fault_abort
from meshlib.config import HTTPFaultInjection

__all__ = ["GRPC_CODES", "FaultPolicy", "fault_policy"]

GRPC_CODES = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}


@dataclass(frozen=True, slots=True)
class FaultPolicy:
    """A delay and/or an abort, each as a fraction ``numerator / denominator``."""

    delay: float | None = None
    delay_numerator: int = 0
    delay_denominator: int = 1_000_000
    abort_status: int | None = None
    abort_grpc_status: int | None = None
    abort_numerator: int = 0
    abort_denominator: int = 1_000_000

    def draw_delay(self, rng: random.Random) -> float | None:
        """The delay to inject into this request, if the draw says so."""
        if self.delay is None or not _enabled(self.delay_numerator, self.delay_denominator, rng):
            return None
        return self.delay

    def draw_abort(self, rng: random.Random, *, delayed: bool) -> LocalReply | None:
        """The abort reply for this request, if the (independent) draw says so."""
        if self.abort_status is None and self.abort_grpc_status is None:
            return None
        if not _enabled(self.abort_numerator, self.abort_denominator, rng):
            return None
        # A gRPC abort answers HTTP 200 with the gRPC status (Envoy's fault filter).
        status = self.abort_status if self.abort_status is not None else 200
        return fault_abort(status, self.abort_grpc_status, delayed=delayed)


def _enabled(numerator: int, denominator: int, rng: random.Random) -> bool:
    """Envoy's ``featureEnabled``: ``random % denominator < numerator``."""
    return numerator > 0 and rng.randrange(denominator) < numerator


def fault_policy(fault: HTTPFaultInjection | None) -> FaultPolicy | None:
    """Translate ``HTTPFaultInjection`` as pilot does (``route.TranslateFault``)."""
    if fault is None:
        return None
    policy = FaultPolicy()
    delay = fault.delay
    if delay is not None and delay.fixed_delay is not None:
        if delay.percentage is not None:
            numerator, denominator = int(delay.percentage.value * 10_000), 1_000_000
        else:
            numerator, denominator = delay.percent, 100
        policy = FaultPolicy(delay.fixed_delay.seconds, numerator, denominator)
    abort = fault.abort
    if abort is not None and (abort.http_status is not None or abort.grpc_status is not None):
        numerator = int(abort.percentage.value * 10_000) if abort.percentage is not None else 0
        grpc = GRPC_CODES.get(abort.grpc_status) if abort.grpc_status is not None else None
        policy = FaultPolicy(
            policy.delay,
            policy.delay_numerator,
            policy.delay_denominator,
            abort.http_status,
            grpc,
            numerator,
        )
    return policy
