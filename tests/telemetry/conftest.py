"""Telemetry fixtures: the OpenTelemetry SDK with in-memory exporters, given to each mesh
as explicit providers (the global ones stay the API's, so tests never share state)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from meshlib import Mesh
from meshlib.testing import Backends, VirtualClock
from tests.transports.shells import SHELLS, Shell

NAMESPACE = "shop"
SERVICE = "svc.shop.svc.cluster.local"
CLUSTER = f"outbound|8000||{SERVICE}"
URL = "http://svc:8000/items?page=2"
SEED = 7
#: The client's own labels: its workload is ``frontend``, version ``v2``.
CLIENT_LABELS = {"app": "frontend", "version": "v2"}


def service_entry(*ports: int) -> str:
    """``svc`` on port 8000 in namespace ``shop``: endpoints on loopback at ``ports``, or
    one placeholder that in-memory endpoints (:class:`Backends`) replace."""
    if ports:
        labels = "labels: {app: svc, version: v1}"
        endpoints = "".join(
            f"  - {{address: 127.0.0.1, ports: {{http: {port}}}, {labels}}}\n" for port in ports
        )
    else:
        endpoints = "  - {address: 192.0.2.250}\n"
    return (
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
        f"metadata: {{name: svc, namespace: {NAMESPACE}}}\n"
        f"spec:\n  hosts: [{SERVICE}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n"
        "  ports: [{number: 8000, name: http, protocol: HTTP}]\n"
        f"  endpoints:\n{endpoints}"
    )


def virtual_service(rule: str) -> str:
    """A VirtualService for ``svc`` with one rule (flow-style fields), routed to ``svc``."""
    return (
        "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        f"metadata: {{name: svc, namespace: {NAMESPACE}}}\n"
        f"spec:\n  hosts: [svc]\n  http:\n  - {{name: main, {rule}, "
        "route: [{destination: {host: svc}}]}\n"
    )


def destination_rule(policy: str) -> str:
    """A DestinationRule for ``svc`` with this trafficPolicy (flow-style YAML)."""
    return (
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        f"metadata: {{name: svc, namespace: {NAMESPACE}}}\n"
        f"spec:\n  host: svc\n  trafficPolicy: {policy}\n"
    )


@dataclass
class Observed:
    """Providers with in-memory exporters, and what they caught."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    options: dict[str, Any] = field(default_factory=dict)

    def mesh(self, yaml: str, **options: Any) -> Mesh:
        """A mesh reporting to these providers, in namespace ``shop`` with the client's
        labels, on a virtual clock unless ``options`` give a clock."""
        settings: dict[str, Any] = {
            "namespace": NAMESPACE,
            "labels": CLIENT_LABELS,
            "seed": SEED,
            "clock": VirtualClock(),
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
            **options,
        }
        return Mesh.from_yaml(yaml, **settings)

    def spans(self, kind: SpanKind | None = None) -> list[ReadableSpan]:
        """The finished spans, in the order they ended; only those of ``kind`` if given."""
        spans = list(self.exporter.get_finished_spans())
        return [s for s in spans if kind is None or s.kind is kind]

    def points(self, name: str) -> list[Any]:
        """The data points of metric ``name`` (empty if it has none)."""
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def point(self, name: str) -> Any:
        """The one data point of metric ``name``."""
        points = self.points(name)
        assert len(points) == 1, (name, points)
        return points[0]


@pytest.fixture(params=SHELLS, ids=lambda shell: shell.name)
def shell(request: pytest.FixtureRequest) -> Shell:
    """The shell a scenario runs through: sync, asyncio or trio."""
    shell: Shell = request.param
    return shell


@pytest.fixture
def observed() -> Iterator[Observed]:
    """Fresh SDK providers for one test, shut down after it."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Observed(tracer_provider, meter_provider, exporter, reader)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def backends_for(mesh: Mesh, *handlers: Any, latency: float = 0.0) -> Backends:
    """In-memory endpoints of ``svc`` (labels ``app: svc, version: v1``), one per handler."""
    backends = Backends(mesh)
    for handler in handlers:
        backends.mount(SERVICE, handler, labels={"app": "svc", "version": "v1"}, latency=latency)
    return backends


def traceparent(span: ReadableSpan) -> str:
    """The ``traceparent`` header that carries ``span``'s context."""
    context = span.get_span_context()
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def lean_labels(**values: str) -> dict[str, str]:
    """The lean label set of a call from ``frontend`` to ``svc``, with ``values`` changed."""
    labels = {
        "reporter": "source",
        "source_workload": "frontend",
        "source_workload_namespace": NAMESPACE,
        "destination_service": SERVICE,
        "destination_service_namespace": NAMESPACE,
        "destination_version": "v1",
        "request_protocol": "http",
        "response_code": "200",
        "response_flags": "-",
    }
    labels.update(values)
    return labels


def bucket_counts(point: Any, boundaries: Sequence[float]) -> dict[float, int]:
    """A histogram point's non-empty buckets by upper bound (``inf`` for the last)."""
    assert tuple(point.explicit_bounds) == tuple(boundaries)
    bounds = [*point.explicit_bounds, float("inf")]
    return {b: c for b, c in zip(bounds, point.bucket_counts, strict=True) if c}
