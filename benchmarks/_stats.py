"""Timing records and the summaries the benchmarks print: percentiles, medians, ratios.

On a shared machine, load comes in bursts. Every value is therefore a median over
rounds, and every ratio is the median over rounds of the ratio between two clients
timed one right after the other in the same round (paired), never a ratio of totals.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "METRICS",
    "Round",
    "Summary",
    "paired_difference",
    "paired_ratio",
    "paired_ratios",
    "percentile",
    "summarize",
]


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (``fraction`` in 0..1)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(slots=True)
class Round:
    """One timed run of one client: ``requests`` sequential requests.

    ``wall`` and ``cpu`` are seconds of ``time.perf_counter`` and ``time.process_time``
    (the client process only: the server runs in another process); ``latencies`` holds
    the wall time of each request in nanoseconds, from just before the call to just
    after the body was read.
    """

    requests: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    errors: int = 0
    latencies: list[int] = field(default_factory=list)

    @property
    def rps(self) -> float:
        """Requests per wall-clock second."""
        return self.requests / self.wall if self.wall else math.nan

    @property
    def cpu_us(self) -> float:
        """Client CPU per request, µs."""
        return self.cpu / self.requests * 1e6 if self.requests else math.nan

    @property
    def p50_us(self) -> float:
        """Median latency, µs."""
        return percentile(sorted(self.latencies), 0.50) / 1e3

    @property
    def p99_us(self) -> float:
        """99th-percentile latency, µs."""
        return percentile(sorted(self.latencies), 0.99) / 1e3


#: What is reported for each client, read off one round.
METRICS: dict[str, Callable[[Round], float]] = {
    "rps": lambda r: r.rps,
    "p50": lambda r: r.p50_us,
    "p99": lambda r: r.p99_us,
    "cpu": lambda r: r.cpu_us,
}


@dataclass(frozen=True, slots=True)
class Summary:
    """What a client achieved: the median over its rounds of each per-round value.

    ``rps_range`` is the lowest and highest round, to show how steady the machine was.
    """

    requests: int
    errors: int
    rps: float
    rps_range: tuple[float, float]
    p50_us: float
    p99_us: float
    cpu_us: float

    def as_dict(self) -> dict[str, object]:
        """Rounded values, for printing and JSON."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "rps": round(self.rps),
            "rps_range": [round(value) for value in self.rps_range],
            "p50_us": round(self.p50_us, 1),
            "p99_us": round(self.p99_us, 1),
            "cpu_us_per_request": round(self.cpu_us, 1),
        }


def _median(rounds: Sequence[Round], metric: Callable[[Round], float]) -> float:
    return statistics.median(metric(r) for r in rounds) if rounds else math.nan


def summarize(rounds: Sequence[Round]) -> Summary:
    """Combine the rounds of one client (see :class:`Summary`)."""
    timed = [r for r in rounds if r.requests]
    speeds = [r.rps for r in timed] or [math.nan]
    return Summary(
        requests=sum(r.requests for r in rounds),
        errors=sum(r.errors for r in rounds),
        rps=_median(timed, METRICS["rps"]),
        rps_range=(min(speeds), max(speeds)),
        p50_us=_median(timed, METRICS["p50"]),
        p99_us=_median(timed, METRICS["p99"]),
        cpu_us=_median(timed, METRICS["cpu"]),
    )


def paired_ratios(
    rounds: Sequence[Round], baseline: Sequence[Round], metric: Callable[[Round], float]
) -> list[float]:
    """``metric`` of each round ÷ that of the baseline's round with the same number."""
    return [metric(a) / metric(b) for a, b in zip(rounds, baseline, strict=True) if metric(b)]


def paired_ratio(
    rounds: Sequence[Round], baseline: Sequence[Round], metric: Callable[[Round], float]
) -> float:
    """The median of :func:`paired_ratios`, rounded to 3 places."""
    ratios = paired_ratios(rounds, baseline, metric)
    return round(statistics.median(ratios), 3) if ratios else math.nan


def paired_difference(
    rounds: Sequence[Round], baseline: Sequence[Round], metric: Callable[[Round], float]
) -> float:
    """The median over rounds of ``metric`` minus the baseline's in the same round."""
    pairs = zip(rounds, baseline, strict=True)
    return statistics.median(metric(a) - metric(b) for a, b in pairs) if rounds else math.nan
