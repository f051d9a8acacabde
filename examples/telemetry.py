"""Telemetry: spans, Istio's standard metrics and the access log, printed to the console.

meshlib speaks the OpenTelemetry API only; the application installs the SDK and its
exporters (``pip install opentelemetry-sdk``), here the console ones, as global providers.
The request to ``reviews`` is answered 503 once and retried: one INTERNAL span for the
call, one CLIENT span per attempt, each attempt with its own ``traceparent``. The
endpoints are in memory and the clock is virtual, so the output repeats.
"""

import logging
import sys

import httpx
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import meshlib
from meshlib.testing import Backends, VirtualClock

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.bookinfo.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: reviews-route
    route: [{destination: {host: reviews}}]
    retries: {attempts: 2, retryOn: 5xx}
"""


def span_line(span: ReadableSpan) -> str:
    """A span on one line: kind, name and its attributes."""
    attributes = " ".join(f"{k}={v}" for k, v in (span.attributes or {}).items())
    return f"span {span.kind.name} {span.name!r} {attributes}\n"


def istio_lines(data: MetricsData) -> str:
    """Istio's metrics, one data point per line."""
    lines = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if not metric.name.startswith("istio_"):
                    continue
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:  # a histogram: its count and sum
                        value = f"count={point.count} sum={point.sum}"
                    labels = ",".join(f"{k}={v}" for k, v in point.attributes.items())
                    lines.append(f"metric {metric.name}{{{labels}}} {value}\n")
    return "".join(lines)


# The application's OpenTelemetry setup: meshlib finds the global providers.
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=span_line)))
trace.set_tracer_provider(tracer_provider)
reader = PeriodicExportingMetricReader(
    ConsoleMetricExporter(formatter=istio_lines), export_interval_millis=3_600_000
)
meter_provider = MeterProvider(metric_readers=[reader])
metrics.set_meter_provider(meter_provider)
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stdout)
logging.getLogger("httpx").setLevel(logging.WARNING)

mesh = meshlib.Mesh.from_yaml(
    CONFIG,
    namespace="bookinfo",
    labels={"app": "productpage", "version": "v1"},
    access_log=True,  # Istio's default access-log line, to the "meshlib.access" logger
    clock=VirtualClock(),
    seed=1,
)
backends = Backends(mesh)
answers = iter([503])


def reviews(request: httpx.Request) -> httpx.Response:
    """The reviews endpoint: 503 the first time, then 200; says what traceparent it got."""
    print(f"reviews got traceparent {request.headers['traceparent']}")
    return httpx.Response(next(answers, 200), json={"reviews": []})


backends.mount("reviews", reviews, labels={"app": "reviews", "version": "v2"}, latency=0.012)

with httpx.Client(transport=backends.transport()) as client:
    response = client.get("http://reviews:9080/reviews/0")
print(f"status {response.status_code}, attempts {response.extensions['meshlib'].attempts}")

meter_provider.shutdown()  # exports the metrics once
