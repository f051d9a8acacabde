"""Spans: one INTERNAL span per call with ``meshlib.*`` attributes, one CLIENT span per
attempt with the stable HTTP client attributes, each attempt's own ``traceparent`` on the
wire; through the sync shell and the async shell on asyncio and trio."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from meshlib import Mesh
from tests.servers import Answer, LocalServer, Seen, closed_port, serving
from tests.telemetry.conftest import (
    CLUSTER,
    SERVICE,
    URL,
    Observed,
    backends_for,
    service_entry,
    traceparent,
    virtual_service,
)
from tests.transports.shells import Sent, Shell


def ok(request: httpx.Request) -> httpx.Response:
    """The in-memory endpoint's answer: 200 with a small body."""
    return httpx.Response(200, content=b"hello")


def test_success_spans(observed: Observed, shell: Shell) -> None:
    """A plain call: an INTERNAL span and one CLIENT span under it, with exact attributes."""
    mesh = observed.mesh(service_entry())
    backends = backends_for(mesh, ok)
    [got] = shell.send(mesh, [Sent(URL)], inner=backends.inner)
    assert got.status == 200
    [client] = observed.spans(SpanKind.CLIENT)
    [internal] = observed.spans(SpanKind.INTERNAL)
    endpoint = got.info.endpoint if got.info else None
    request_id = backends.calls()[0].request.headers["x-request-id"]
    assert internal.name == f"GET {SERVICE}"
    assert dict(internal.attributes or {}) == {
        "meshlib.response_code": 200,
        "meshlib.response_flags": "-",
        "meshlib.attempts": 1,
        "meshlib.request_id": request_id,
        "meshlib.route": "default",
        "meshlib.destination_service": SERVICE,
        "meshlib.upstream_cluster": CLUSTER,
        "meshlib.upstream_host": endpoint,
        "meshlib.response_code_details": "via_upstream",
    }
    assert internal.status.status_code is StatusCode.UNSET
    assert client.name == "GET"
    assert dict(client.attributes or {}) == {
        "http.request.method": "GET",
        "url.full": URL,
        "server.address": "svc",
        "server.port": 8000,
        "network.peer.address": "192.0.2.1",
        "network.peer.port": 8000,
        "http.response.status_code": 200,
    }
    assert client.status.status_code is StatusCode.UNSET
    assert client.parent is not None
    assert client.parent.span_id == internal.context.span_id
    assert client.context.trace_id == internal.context.trace_id


def test_internal_span_is_a_child_of_the_callers_span(observed: Observed) -> None:
    """The call's INTERNAL span continues the application's current trace."""
    mesh = observed.mesh(service_entry())
    backends = backends_for(mesh, ok)
    tracer = observed.tracer_provider.get_tracer("app")
    with (
        tracer.start_as_current_span("handler") as parent,
        httpx.Client(transport=backends.transport()) as client,
    ):
        client.get(URL)
    [internal] = [s for s in observed.spans(SpanKind.INTERNAL) if s.name != "handler"]
    assert internal.parent is not None
    assert internal.parent.span_id == parent.get_span_context().span_id


def flaky(server_seen: list[Seen]) -> Answer:
    """503 to the first request, 200 to the others."""
    return Answer(503 if len(server_seen) == 1 else 200, b"ok")


def test_retried_request_has_a_client_span_per_attempt(observed: Observed, shell: Shell) -> None:
    """A retried 503: a CLIENT span per attempt, resend_count on the second, own traceparents."""
    server = LocalServer("svc")
    server.behaviour = lambda seen: flaky(server.seen)
    with serving(server):
        mesh = observed.mesh(
            service_entry(server.port) + virtual_service("retries: {attempts: 2, retryOn: 5xx}"),
            clock=None,
            seed=1,
        )
        [got] = shell.send(mesh, [Sent(URL)])
    assert got.status == 200
    first, second = observed.spans(SpanKind.CLIENT)
    [internal] = observed.spans(SpanKind.INTERNAL)
    assert "http.request.resend_count" not in (first.attributes or {})
    assert (second.attributes or {})["http.request.resend_count"] == 1
    assert (first.attributes or {})["http.response.status_code"] == 503
    assert (first.attributes or {})["error.type"] == "503"
    assert first.status.status_code is StatusCode.ERROR
    assert (second.attributes or {})["http.response.status_code"] == 200
    assert [seen.headers["traceparent"] for seen in server.seen] == [
        traceparent(first),
        traceparent(second),
    ]
    assert [seen.headers["x-envoy-attempt-count"] for seen in server.seen] == ["1", "2"]
    assert (internal.attributes or {})["meshlib.attempts"] == 2
    assert (internal.attributes or {})["meshlib.route"] == "main"


def test_fault_abort_has_no_client_span(observed: Observed, shell: Shell) -> None:
    """A fault abort never reaches the wire: the INTERNAL span alone, flagged FI."""
    yaml = service_entry() + virtual_service(
        "fault: {abort: {percentage: {value: 100}, httpStatus: 500}}"
    )
    mesh = observed.mesh(yaml)
    backends = backends_for(mesh, ok)
    [got] = shell.send(mesh, [Sent(URL)], inner=backends.inner)
    assert got.status == 500
    assert observed.spans(SpanKind.CLIENT) == []
    [internal] = observed.spans(SpanKind.INTERNAL)
    attributes = dict(internal.attributes or {})
    assert attributes["meshlib.response_code"] == 500
    assert attributes["meshlib.response_flags"] == "FI"
    assert attributes["meshlib.response_code_details"] == "fault_filter_abort"
    assert attributes["meshlib.attempts"] == 0
    assert internal.status.status_code is StatusCode.ERROR


def test_route_timeout(observed: Observed, shell: Shell) -> None:
    """A route timeout: the CLIENT span ends with httpx.ReadTimeout, the call is 504 UT."""
    mesh = observed.mesh(service_entry() + virtual_service("timeout: 0.1s"))
    backends = backends_for(mesh, ok, latency=0.5)
    [got] = shell.send(mesh, [Sent(URL)], inner=backends.inner)
    assert got.status == 504
    [client] = observed.spans(SpanKind.CLIENT)
    assert (client.attributes or {})["error.type"] == "httpx.ReadTimeout"
    assert "http.response.status_code" not in (client.attributes or {})
    assert client.status.status_code is StatusCode.ERROR
    [internal] = observed.spans(SpanKind.INTERNAL)
    attributes = dict(internal.attributes or {})
    assert attributes["meshlib.response_code"] == 504
    assert attributes["meshlib.response_flags"] == "UT"
    assert attributes["meshlib.response_code_details"] == "response_timeout"


def test_connect_failure_raised(observed: Observed) -> None:
    """upstream_errors="raise": both spans record the ConnectError, the call flags UF."""
    yaml = service_entry(closed_port()) + virtual_service("retries: {attempts: 0}")
    mesh = observed.mesh(yaml, clock=None, upstream_errors="raise")
    with httpx.Client(transport=mesh.transport()) as client, pytest.raises(httpx.ConnectError):
        client.get(URL)
    [client_span] = observed.spans(SpanKind.CLIENT)
    assert (client_span.attributes or {})["error.type"] == "httpx.ConnectError"
    [internal] = observed.spans(SpanKind.INTERNAL)
    attributes = dict(internal.attributes or {})
    assert attributes["meshlib.response_code"] == 0
    assert attributes["meshlib.response_flags"] == "UF"
    assert internal.status.status_code is StatusCode.ERROR
    assert [event.name for event in internal.events] == ["exception"]


def test_span_ends_when_the_body_is_closed(observed: Observed) -> None:
    """The CLIENT span ends at the headers, the INTERNAL span when the body is closed."""
    mesh = observed.mesh(service_entry())
    backends = backends_for(
        mesh, lambda request: httpx.Response(200, stream=httpx.ByteStream(b"x"))
    )
    with httpx.Client(transport=backends.transport()) as client:
        with client.stream("GET", URL) as response:
            assert [s.kind for s in observed.spans()] == [SpanKind.CLIENT]
            response.read()
        assert [s.kind for s in observed.spans()] == [SpanKind.CLIENT, SpanKind.INTERNAL]


def test_unknown_method_is_other(observed: Observed) -> None:
    """A method the HTTP conventions do not know is ``_OTHER``, the original kept."""
    mesh = observed.mesh(service_entry())
    backends = backends_for(mesh, ok)
    with httpx.Client(transport=backends.transport()) as client:
        client.request("PURGE", URL)
    [client_span] = observed.spans(SpanKind.CLIENT)
    assert client_span.name == "_OTHER"
    assert (client_span.attributes or {})["http.request.method"] == "_OTHER"
    assert (client_span.attributes or {})["http.request.method_original"] == "PURGE"


def test_global_provider_set_later_takes_effect(monkeypatch: pytest.MonkeyPatch) -> None:
    """A global SDK installed after the first request is used from the next one on."""
    mesh = Mesh.from_yaml(service_entry(), namespace="shop", seed=1)
    backends = backends_for(mesh, ok)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with httpx.Client(transport=backends.transport()) as client:
        client.get(URL)
        assert exporter.get_finished_spans() == ()
        # What trace.set_tracer_provider does (it may only run once per process).
        monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
        client.get(URL)
    assert [s.kind for s in exporter.get_finished_spans()] == [SpanKind.CLIENT, SpanKind.INTERNAL]
