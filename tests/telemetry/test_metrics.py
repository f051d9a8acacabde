"""Istio's standard metrics with Istio's labels and buckets, and Envoy's cluster
statistics, from in-memory endpoints on a virtual clock (durations are exact)."""

from __future__ import annotations

import anyio
import httpx
import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, generate_latest

from meshlib import Mesh
from meshlib._telemetry._metrics import BUCKETS
from meshlib.testing import VirtualClock
from tests.telemetry.conftest import (
    CLIENT_LABELS,
    CLUSTER,
    NAMESPACE,
    SERVICE,
    URL,
    Observed,
    backends_for,
    bucket_counts,
    destination_rule,
    lean_labels,
    service_entry,
    virtual_service,
)
from tests.transports.shells import Sent, Shell

ISTIO_BUCKETS = (
    *(0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000),
    *(300000, 600000, 1800000, 3600000),
)


def hello(request: httpx.Request) -> httpx.Response:
    """200 with a five-byte body."""
    return httpx.Response(200, content=b"hello")


def test_buckets_are_envoys_defaults() -> None:
    """Every histogram advises Envoy's default buckets, as Istio leaves them."""
    assert BUCKETS == ISTIO_BUCKETS


def test_success_metrics(observed: Observed, shell: Shell) -> None:
    """One call: counted with the lean labels; duration and sizes in Istio's buckets."""
    mesh = observed.mesh(service_entry())
    backends = backends_for(mesh, hello, latency=0.25)
    [got] = shell.send(mesh, [Sent(URL, "POST", content=b"abc")], inner=backends.inner)
    assert got.status == 200
    labels = lean_labels()
    requests = observed.point("istio_requests")
    assert (dict(requests.attributes), requests.value) == (labels, 1)
    duration = observed.point("istio_request_duration_milliseconds")
    assert dict(duration.attributes) == labels
    assert (duration.count, duration.sum) == (1, 250)
    assert bucket_counts(duration, ISTIO_BUCKETS) == {250: 1}
    sent = observed.point("istio_request_bytes")
    assert (sent.count, sent.sum) == (1, 3)
    assert bucket_counts(sent, ISTIO_BUCKETS) == {5: 1}
    received = observed.point("istio_response_bytes")
    assert (received.count, received.sum) == (1, 5)
    assert observed.points("envoy_cluster_upstream_rq_retry") == []


def test_full_labels(observed: Observed) -> None:
    """metric_labels="full": all 25 of Istio's labels, unknown where meshlib cannot know."""
    mesh = observed.mesh(service_entry(), metric_labels="full")
    backends = backends_for(mesh, hello)
    with httpx.Client(transport=backends.transport()) as client:
        client.get(URL)
    assert dict(observed.point("istio_requests").attributes) == {
        "reporter": "source",
        "source_workload": "frontend",
        "source_workload_namespace": NAMESPACE,
        "source_principal": "unknown",
        "source_app": "frontend",
        "source_version": "v2",
        "source_canonical_service": "frontend",
        "source_canonical_revision": "v2",
        "source_cluster": "unknown",
        "destination_workload": "svc",
        "destination_workload_namespace": NAMESPACE,
        "destination_principal": "unknown",
        "destination_app": "svc",
        "destination_version": "v1",
        "destination_service": SERVICE,
        "destination_service_name": "svc",
        "destination_service_namespace": NAMESPACE,
        "destination_canonical_service": "svc",
        "destination_canonical_revision": "v1",
        "destination_cluster": "unknown",
        "request_protocol": "http",
        "response_flags": "-",
        "connection_security_policy": "unknown",
        "response_code": "200",
        "grpc_response_status": "",
    }


def test_metric_labels_checked() -> None:
    """Only ``lean`` and ``full`` are label sets."""
    with pytest.raises(ValueError, match="metric_labels"):
        Mesh(metric_labels="some")


def test_fault_abort_metrics(observed: Observed, shell: Shell) -> None:
    """A fault abort counts as 500 FI; no endpoint was chosen, so its version is unknown."""
    yaml = service_entry() + virtual_service(
        "fault: {abort: {percentage: {value: 100}, httpStatus: 500}}"
    )
    mesh = observed.mesh(yaml)
    backends = backends_for(mesh, hello)
    shell.send(mesh, [Sent(URL)], inner=backends.inner)
    expected = lean_labels(
        response_code="500",
        response_flags="FI",
        destination_version="unknown",
        destination_service_namespace="unknown",
    )
    requests = observed.point("istio_requests")
    assert (dict(requests.attributes), requests.value) == (expected, 1)
    assert observed.point("istio_response_bytes").sum == len(b"fault filter abort")


def test_timeout_metrics(observed: Observed, shell: Shell) -> None:
    """A route timeout counts as 504 UT, after the route's 100 ms."""
    mesh = observed.mesh(service_entry() + virtual_service("timeout: 0.1s"))
    backends = backends_for(mesh, hello, latency=0.5)
    shell.send(mesh, [Sent(URL)], inner=backends.inner)
    expected = lean_labels(response_code="504", response_flags="UT")
    assert dict(observed.point("istio_requests").attributes) == expected
    duration = observed.point("istio_request_duration_milliseconds")
    assert (duration.sum, bucket_counts(duration, ISTIO_BUCKETS)) == (100, {100: 1})


def test_retry_counter(observed: Observed, shell: Shell) -> None:
    """A retried call: one request counted, one retry on the cluster's counter."""
    answers = iter([503, 200])
    mesh = observed.mesh(service_entry() + virtual_service("retries: {attempts: 2, retryOn: 5xx}"))
    backends = backends_for(mesh, lambda request: httpx.Response(next(answers)))
    shell.send(mesh, [Sent(URL)], inner=backends.inner)
    assert observed.point("istio_requests").value == 1
    retries = observed.point("envoy_cluster_upstream_rq_retry")
    assert (dict(retries.attributes), retries.value) == ({"cluster_name": CLUSTER}, 1)


OVERFLOW = service_entry() + destination_rule("{connectionPool: {http: {http2MaxRequests: 1}}}")


def streaming(request: httpx.Request) -> httpx.Response:
    """200 whose body stays open until read: the call holds its request slot till then."""
    return httpx.Response(200, stream=httpx.ByteStream(b"held"))


def test_overflow_metrics_sync(observed: Observed) -> None:
    """A held request slot: the next call is 503 UO, on Envoy's pending-overflow counter."""
    mesh = observed.mesh(OVERFLOW)
    backends = backends_for(mesh, streaming)
    with httpx.Client(transport=backends.transport()) as client, client.stream("GET", URL):
        assert client.get(URL).status_code == 503
        active = observed.point("envoy_cluster_upstream_rq_active")
        assert (dict(active.attributes), active.value) == ({"cluster_name": CLUSTER}, 1)
    assert_overflow_counted(observed)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_overflow_metrics_async(observed: Observed, backend: str) -> None:
    """The same overflow through the async shell."""
    mesh = observed.mesh(OVERFLOW)
    backends = backends_for(mesh, streaming)

    async def scenario() -> None:
        """Hold one streamed response open while sending another request."""
        async with (
            httpx.AsyncClient(transport=backends.async_transport()) as client,
            client.stream("GET", URL),
        ):
            assert (await client.get(URL)).status_code == 503

    anyio.run(scenario, backend=backend)
    assert_overflow_counted(observed)


def assert_overflow_counted(observed: Observed) -> None:
    """Two calls counted (200 and 503 UO), one pending overflow, no request left active."""
    overflowed, held = observed.spans(SpanKind.INTERNAL)  # the 503 ended first
    assert (overflowed.attributes or {})["meshlib.response_flags"] == "UO"
    assert (held.attributes or {})["meshlib.response_flags"] == "-"
    assert len(observed.spans(SpanKind.CLIENT)) == 1  # the overflow never went on the wire
    counted = {
        (p.attributes["response_code"], p.attributes["response_flags"]): p.value
        for p in observed.points("istio_requests")
    }
    assert counted == {("200", "-"): 1, ("503", "UO"): 1}
    overflow = observed.point("envoy_cluster_upstream_rq_pending_overflow")
    assert (dict(overflow.attributes), overflow.value) == ({"cluster_name": CLUSTER}, 1)
    assert observed.point("envoy_cluster_upstream_rq_active").value == 0


def test_ejection_gauge(observed: Observed) -> None:
    """The endpoint that answered 500 is ejected: the gauges say one of two hosts."""
    policy = (
        "{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutive5xxErrors: 1,"
        " interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 100}}"
    )
    mesh = observed.mesh(service_entry() + destination_rule(policy))
    backends = backends_for(mesh, hello, lambda request: httpx.Response(500))
    with httpx.Client(transport=backends.transport()) as client:
        statuses = [client.get(URL).status_code for _ in range(4)]
    assert 500 in statuses
    assert statuses[statuses.index(500) + 1 :] == [200] * (3 - statuses.index(500))
    gauges = {
        name: observed.point(f"envoy_cluster_{name}").value
        for name in (
            "outlier_detection_ejections_active",
            "membership_total",
            "membership_healthy",
        )
    }
    assert gauges == {
        "outlier_detection_ejections_active": 1,
        "membership_total": 2,
        "membership_healthy": 1,
    }


def test_prometheus_rendering() -> None:
    """Prometheus renders istio_requests_total and Istio's duration buckets and labels."""
    registry = CollectorRegistry()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(disable_target_info=True, registry=registry)]
    )
    mesh = Mesh.from_yaml(
        service_entry(),
        namespace=NAMESPACE,
        labels=CLIENT_LABELS,
        seed=1,
        clock=VirtualClock(),
        meter_provider=provider,
    )
    backends = backends_for(mesh, hello, latency=0.03)
    with httpx.Client(transport=backends.transport()) as client:
        client.get(URL)
    text = generate_latest(registry).decode()
    provider.shutdown()
    labels = (
        'destination_service="svc.shop.svc.cluster.local",'
        'destination_service_namespace="shop",destination_version="v1",'
        'otel_scope_name="meshlib",'
    )
    tail = (
        'reporter="source",request_protocol="http",response_code="200",response_flags="-",'
        'source_workload="frontend",source_workload_namespace="shop"}'
    )
    assert "# TYPE istio_requests_total counter" in text
    assert "istio_requests_total{" + labels in text
    assert tail + " 1.0" in text
    buckets = [
        line
        for line in text.splitlines()
        if line.startswith("istio_request_duration_milliseconds_bucket{")
    ]
    rendered = [line.split('le="')[1].split('"')[0] for line in buckets]
    assert rendered == [
        *("0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000"),
        *("10000", "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"),
    ]
    counts = [float(line.rsplit(" ", 1)[1]) for line in buckets]
    assert counts == [0.0] * 5 + [1.0] * 15  # 30 ms: in le="50" and above
    assert all(tail in line for line in buckets)
    assert "istio_request_duration_milliseconds_sum{" in text
    assert "istio_response_bytes_bucket{" in text
