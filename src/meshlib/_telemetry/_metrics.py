"""Istio's standard metrics and Envoy's cluster statistics, through the OpenTelemetry API.

Per call, once it is over: ``istio_requests`` (a counter, which Prometheus exports as
``istio_requests_total``), ``istio_request_duration_milliseconds``,
``istio_request_bytes`` and ``istio_response_bytes`` (histograms), with Istio's label
names (:mod:`._labels`) and ``reporter="source"``, as the client sidecar reports them
(``envoy-semantics.md`` §9.1). Istio leaves every histogram on Envoy's default buckets
(``HistogramSettingsImpl::defaultBuckets``) unless a pod annotation changes them, the
byte histograms included; meshlib advises the same boundaries
(``explicit_bucket_boundaries_advisory``, API 1.30).

Beside them, Envoy's cluster statistics under Envoy's names with a ``cluster_name``
label: retry and overflow counters from each finished call, and gauges read from the
mesh's runtime when the reader collects (active and pending requests, connections,
hosts, ejected hosts).

Instruments are made once per meter provider and shared by every mesh that reports to
it; the gauges add up the clusters of all of them, as one sidecar reports its process.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from meshlib._core import _replies as replies
from meshlib._telemetry._record import Finished
from meshlib._version import __version__

__all__ = ["BUCKETS", "ClusterStats", "IstioMetrics", "metrics_for"]

#: Envoy's default histogram buckets: Istio's for durations (ms) and sizes (bytes) alike.
#: Whole numbers stay ints, so Prometheus renders ``le="1"`` as Envoy does, not ``1.0``.
BUCKETS: tuple[float, ...] = (
    *(0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000),
    *(300000, 600000, 1800000, 3600000),
)

_OVERFLOW_DETAILS = replies.overflow().details


@dataclass(frozen=True, slots=True)
class ClusterStats:
    """One cluster's gauges at one moment."""

    name: str
    rq_active: int
    rq_pending_active: int
    cx_active: int
    membership_total: int
    membership_healthy: int
    ejections_active: int


class ClusterSource(Protocol):
    """What the gauges read: a mesh's clusters, now."""

    def cluster_stats(self) -> list[ClusterStats]:
        """Every cluster's gauges."""
        ...


_GAUGES: tuple[tuple[str, str, Callable[[ClusterStats], int]], ...] = (
    ("envoy_cluster_upstream_rq_active", "Requests in flight.", lambda s: s.rq_active),
    (
        "envoy_cluster_upstream_rq_pending_active",
        "Requests waiting for a connection.",
        lambda s: s.rq_pending_active,
    ),
    ("envoy_cluster_upstream_cx_active", "Connections in use.", lambda s: s.cx_active),
    ("envoy_cluster_membership_total", "Hosts in the cluster.", lambda s: s.membership_total),
    (
        "envoy_cluster_membership_healthy",
        "Hosts not ejected by outlier detection.",
        lambda s: s.membership_healthy,
    ),
    (
        "envoy_cluster_outlier_detection_ejections_active",
        "Hosts ejected by outlier detection now.",
        lambda s: s.ejections_active,
    ),
)


class IstioMetrics:
    """The instruments of one meter provider."""

    def __init__(self, meter: Meter) -> None:
        self.requests = meter.create_counter(
            "istio_requests", description="Requests, as Istio's istio_requests_total."
        )
        self.duration = meter.create_histogram(
            "istio_request_duration_milliseconds",
            unit="ms",
            description="Request duration, to the end of the response body.",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )
        self.request_bytes = meter.create_histogram(
            "istio_request_bytes",
            unit="By",
            description="Request body size.",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )
        self.response_bytes = meter.create_histogram(
            "istio_response_bytes",
            unit="By",
            description="Response body size.",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )
        self.retries = meter.create_counter(
            "envoy_cluster_upstream_rq_retry", description="Retries sent."
        )
        self.pending_overflow = meter.create_counter(
            "envoy_cluster_upstream_rq_pending_overflow",
            description="Requests refused by a connection-pool circuit breaker (503 UO).",
        )
        self.retry_overflow = meter.create_counter(
            "envoy_cluster_upstream_rq_retry_overflow",
            description="Retries not sent: maxRetries or the retry budget was used up.",
        )
        self._sources: weakref.WeakSet[ClusterSource] = weakref.WeakSet()
        for name, description, read in _GAUGES:
            meter.create_observable_gauge(
                name, callbacks=[self._callback(read)], description=description
            )

    def watch(self, source: ClusterSource) -> None:
        """Report the clusters of ``source`` in the gauges while it lives."""
        self._sources.add(source)

    def record(self, finished: Finished, labels: Mapping[str, str]) -> None:
        """Count one finished call."""
        self.requests.add(1, labels)
        self.duration.record(int(finished.duration_ms), labels)  # whole ms, as Istio
        self.request_bytes.record(finished.request_bytes, labels)
        self.response_bytes.record(finished.response_bytes, labels)
        info = finished.info
        if info.cluster is None:
            return
        cluster = {"cluster_name": info.cluster}
        if info.attempts > 1:
            self.retries.add(info.attempts - 1, cluster)
        if "UO" in info.flags:
            if info.details == _OVERFLOW_DETAILS:
                self.pending_overflow.add(1, cluster)
            else:
                self.retry_overflow.add(1, cluster)

    def _callback(
        self, read: Callable[[ClusterStats], int]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterator[Observation]:
            totals: dict[str, int] = {}
            for source in list(self._sources):
                for stats in source.cluster_stats():
                    totals[stats.name] = totals.get(stats.name, 0) + read(stats)
            for name, value in totals.items():
                yield Observation(value, {"cluster_name": name})

        return observe


_BY_PROVIDER: weakref.WeakKeyDictionary[MeterProvider, IstioMetrics] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def metrics_for(provider: MeterProvider) -> IstioMetrics:
    """The instruments for ``provider``, made on first use."""
    with _LOCK:
        try:
            found = _BY_PROVIDER.get(provider)
        except TypeError:  # a provider that cannot be weakly referenced: not shared
            return IstioMetrics(provider.get_meter("meshlib", __version__))
        if found is None:
            found = _BY_PROVIDER[provider] = IstioMetrics(
                provider.get_meter("meshlib", __version__)
            )
        return found
