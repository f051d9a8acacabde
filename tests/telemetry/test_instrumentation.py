"""With opentelemetry-instrumentation-httpx instrumenting httpx, meshlib's inner transports
(``httpx.HTTPTransport`` underneath) add no second span: one CLIENT span per attempt."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.trace import SpanKind

from tests.servers import Answer, LocalServer, serving
from tests.telemetry.conftest import URL, Observed, service_entry, traceparent, virtual_service
from tests.transports.shells import Sent, Shell

INSTRUMENTATION = "opentelemetry.instrumentation.httpx"


@pytest.fixture
def instrumented(observed: Observed) -> Iterator[Observed]:
    """httpx instrumented (globally, as an application does) for one test."""
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=observed.tracer_provider)
    yield observed
    instrumentor.uninstrument()


def test_one_client_span_per_attempt(instrumented: Observed, shell: Shell) -> None:
    """Two attempts, two CLIENT spans, both meshlib's, their traceparents on the wire."""
    server = LocalServer("svc")
    server.behaviour = lambda seen: Answer(503 if len(server.seen) == 1 else 200)
    with serving(server):
        mesh = instrumented.mesh(
            service_entry(server.port) + virtual_service("retries: {attempts: 2, retryOn: 5xx}"),
            clock=None,
        )
        [got] = shell.send(mesh, [Sent(URL)])
        assert got.status == 200
        clients = instrumented.spans(SpanKind.CLIENT)
        assert [span.instrumentation_scope.name for span in clients] == ["meshlib", "meshlib"]
        assert [seen.headers["traceparent"] for seen in server.seen] == [
            traceparent(span) for span in clients
        ]
        # The instrumentation is live: a plain httpx client beside meshlib gets its span.
        httpx.get(f"http://127.0.0.1:{server.port}/")
    scopes = [span.instrumentation_scope.name for span in instrumented.spans(SpanKind.CLIENT)]
    assert scopes == ["meshlib", "meshlib", INSTRUMENTATION]
