"""``Telemetry``: a mesh's spans, metrics and access log, and the hooks the shells call.

The shells call four things, each a no-op for a call nobody observes:

* :meth:`meshlib.Mesh.start_call` asks :meth:`Telemetry.observe` for a
  :class:`~._call.CallObserver` (the INTERNAL span starts) and keeps it on the call;
* :func:`send_attempt` / :func:`asend_attempt` wrap each attempt's inner send (the CLIENT
  span, the attempt's ``traceparent``, no second span from httpx's instrumentation);
* :func:`answered` hands over the response the caller gets;
* :meth:`meshlib.Mesh.finish_call` (body closed, reply built, exception raised) ends it.

Nothing is observed, and each hook costs a function call, when there is no SDK (the
global providers are still the API's proxies and none was given) and no access log. The
providers are looked up on every call, so an SDK installed later takes effect at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import httpx
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.trace import TracerProvider

from meshlib._core._actions import Attempt
from meshlib._telemetry import _tracing
from meshlib._telemetry._access_log import access_log_line
from meshlib._telemetry._access_log import logger as access_logger
from meshlib._telemetry._call import CallObserver
from meshlib._telemetry._globals import meter_provider
from meshlib._telemetry._labels import (
    FULL_LABELS,
    LEAN_LABELS,
    UNKNOWN,
    endpoint_workload,
    principal_namespace,
    service_name,
    workload_of,
)
from meshlib._telemetry._metrics import ClusterStats, IstioMetrics, metrics_for
from meshlib._telemetry._record import Finished

try:  # the API's stand-in before an SDK is set: private, hence the guard
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    _INACTIVE_METERS: tuple[type, ...] = (_ProxyMeterProvider, NoOpMeterProvider)
except ImportError:  # pragma: no cover - then the proxy's instruments are used, as no-ops
    _INACTIVE_METERS = (NoOpMeterProvider,)

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from meshlib._core._engine import Call
    from meshlib._mesh import Mesh

__all__ = ["Telemetry", "answered", "asend_attempt", "send_attempt", "unobserved"]

logger = logging.getLogger("meshlib.telemetry")

_PASSTHROUGH = ("PassthroughCluster", "BlackHoleCluster")
_LABEL_SETS = {"lean": LEAN_LABELS, "full": FULL_LABELS}


class Telemetry:
    """The spans, metrics and access log of one mesh.

    Args:
        mesh: the mesh observed (its workload, clock, lock, runtime and identity).
        tracer_provider: spans go here; by default the global provider's.
        meter_provider: metrics go here; by default the global provider's.
        access_log: write an access-log line per call to ``meshlib.access``.
        metric_labels: ``"lean"`` (the default) or ``"full"`` (every Istio label).
    """

    def __init__(
        self,
        mesh: Mesh,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        access_log: bool = False,
        metric_labels: str = "lean",
    ) -> None:
        if metric_labels not in _LABEL_SETS:
            raise ValueError(f"metric_labels must be 'lean' or 'full', not {metric_labels!r}")
        self._mesh = mesh
        self.clock = mesh.clock
        self.access_log = access_log
        self._tracers = _tracing.Tracers(tracer_provider)
        self._meter_provider = meter_provider
        self._metrics: tuple[MeterProvider, IstioMetrics] | None = None
        self._label_names = _LABEL_SETS[metric_labels]
        source = workload_of(mesh.workload.labels, mesh.workload.namespace)
        self._source_labels = {
            "reporter": "source",
            "source_workload": source.workload,
            "source_workload_namespace": source.namespace,
            "source_app": source.app,
            "source_version": source.version,
            "source_canonical_service": source.canonical_service,
            "source_canonical_revision": source.canonical_revision,
            "source_cluster": source.cluster,
            "connection_security_policy": UNKNOWN,  # what a client sidecar reports
        }

    # ----------------------------------------------------------------- per call

    def observe(self, call: Call) -> CallObserver | None:
        """A follower for ``call``, or None when nothing would be recorded."""
        tracer = self._tracers.current()
        if tracer is None and self._current_metrics() is None and not self.access_log:
            return None
        return CallObserver(self, call, tracer)

    def emit(self, finished: Finished, span: Span | None) -> None:
        """Record a finished call: end its span, count it, log it. Never raises: the
        caller's response must not fail for telemetry."""
        try:
            if span is not None:
                _tracing.end_call(span, finished)
            found = self._current_metrics()
            if found is not None:
                found.record(finished, self.labels(finished))
            if self.access_log and access_logger.isEnabledFor(logging.INFO):
                access_logger.info("%s", access_log_line(finished))
        except Exception:
            logger.exception("recording telemetry failed")

    def labels(self, finished: Finished) -> dict[str, str]:
        """Istio's labels for ``finished``: the lean set, or all of them."""
        info, head = finished.info, finished.head
        cluster = info.cluster or ""
        if cluster in _PASSTHROUGH or not info.destination:
            service = head.authority
            name = cluster if cluster in _PASSTHROUGH else head.authority
        else:
            service = info.destination
            name = service_name(service, self._mesh.workload.domain)
        principal = finished.peer_principal
        namespace = principal_namespace(principal)
        if not namespace and finished.endpoint is not None and info.destination:
            known = self._mesh.table.service(info.destination)
            namespace = known.namespace if known is not None else ""
        peer = endpoint_workload(finished.endpoint, namespace)
        labels = {
            **self._source_labels,
            "source_principal": self._source_principal(),
            "destination_workload": peer.workload,
            "destination_workload_namespace": peer.namespace,
            "destination_principal": principal or UNKNOWN,
            "destination_app": peer.app,
            "destination_version": peer.version,
            "destination_service": service,
            "destination_service_name": name,
            "destination_service_namespace": peer.namespace,
            "destination_canonical_service": peer.canonical_service,
            "destination_canonical_revision": peer.canonical_revision,
            "destination_cluster": peer.cluster,
            "request_protocol": "grpc" if head.is_grpc else "http",
            "response_flags": finished.flags,
            "response_code": str(finished.status),
            "grpc_response_status": finished.grpc_status,
        }
        if self._label_names is FULL_LABELS:
            return labels
        return {name: labels[name] for name in self._label_names}

    def _source_principal(self) -> str:
        """The mesh's own SPIFFE ID, when it has a workload identity (mTLS)."""
        identity = self._mesh.identity
        return identity.current().spiffe_id if identity is not None else UNKNOWN

    # ------------------------------------------------------------------ metrics

    def _current_metrics(self) -> IstioMetrics | None:
        provider = self._meter_provider or meter_provider()
        if provider is None:
            return None
        known = self._metrics
        if known is not None and known[0] is provider:
            return known[1]
        if isinstance(provider, _INACTIVE_METERS):
            return None
        found = metrics_for(provider)
        found.watch(self)
        self._metrics = (provider, found)
        return found

    def cluster_stats(self) -> list[ClusterStats]:
        """Every cluster's gauges, read under the mesh's lock."""
        mesh = self._mesh
        with mesh.lock:
            clusters = list(mesh.runtime.clusters.values())
            stats = []
            for cluster in clusters:
                hosts = cluster.hosts
                ejected = sum(1 for host in hosts if host.ejected_until is not None)
                limits = cluster.limits
                stats.append(
                    ClusterStats(
                        name=cluster.key.name,
                        rq_active=limits.active,
                        rq_pending_active=limits.pending,
                        cx_active=limits.connections,
                        membership_total=len(hosts),
                        membership_healthy=len(hosts) - ejected,
                        ejections_active=ejected,
                    )
                )
        return stats


# -------------------------------------------------------------------- shell hooks


def answered(call: Call, response: httpx.Response) -> httpx.Response:
    """The caller gets ``response`` (returned as it is)."""
    observer: CallObserver | None = call.observer
    if observer is not None:
        observer.answered(response)
    return response


def send_attempt(
    call: Call,
    attempt: Attempt,
    send: Callable[[httpx.Request], httpx.Response],
    request: httpx.Request,
) -> httpx.Response:
    """``send(request)`` for one attempt, inside the attempt's CLIENT span."""
    observer: CallObserver | None = call.observer
    if observer is None:
        return send(request)
    started = observer.attempt_started(attempt, request)
    try:
        response = send(request)
    except BaseException as error:
        observer.attempt_ended(started, attempt, None, error)
        raise
    observer.attempt_ended(started, attempt, response, None)
    return response


async def asend_attempt(
    call: Call,
    attempt: Attempt,
    send: Callable[[httpx.Request], Awaitable[httpx.Response]],
    request: httpx.Request,
) -> httpx.Response:
    """The async twin of :func:`send_attempt`."""
    observer: CallObserver | None = call.observer
    if observer is None:
        return await send(request)
    started = observer.attempt_started(attempt, request)
    try:
        response = await send(request)
    except BaseException as error:
        observer.attempt_ended(started, attempt, None, error)
        raise
    observer.attempt_ended(started, attempt, response, None)
    return response


class unobserved:  # noqa: N801 - a context manager, used like contextlib's
    """No HTTP instrumentation span inside (a mirror: fire and forget, no span of its own,
    where httpx's instrumentation would start an orphan trace)."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _tracing.suppressed()

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _tracing.detach(self._token)
