"""The access log: Istio's default TEXT format, one line per call to ``meshlib.access``,
off unless ``access_log=True``."""

from __future__ import annotations

import datetime
import logging
import re

import httpx
import pytest

from meshlib import Mesh
from meshlib._core._request import RequestHead
from meshlib._info import MeshInfo
from meshlib._telemetry._access_log import access_log_line
from meshlib._telemetry._record import Finished
from meshlib._transports._common import request_head
from meshlib.testing import VirtualClock
from tests.servers import Answer, LocalServer, closed_port, serving
from tests.telemetry.conftest import (
    CLUSTER,
    NAMESPACE,
    URL,
    backends_for,
    service_entry,
    virtual_service,
)

TIME = r"\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\]"
HEADERS = {"user-agent": "shop/1.0", "x-forwarded-for": "10.9.9.9", "x-request-id": "rid-1"}


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The lines ``meshlib.access`` logged."""
    return [r.getMessage() for r in caplog.records if r.name == "meshlib.access"]


def test_line_format() -> None:
    """Every field in Istio's order, ``-`` for what a library does not have."""
    head = RequestHead(
        method="GET",
        scheme="http",
        host="svc",
        port=8000,
        authority="svc:8000",
        path="/items",
        query="page=2",
        headers={"user-agent": "shop/1.0", "x-request-id": "rid-1"},
    )
    info = MeshInfo(
        route="main",
        destination="svc.shop.svc.cluster.local",
        cluster=CLUSTER,
        endpoint="10.0.0.7:8000",
        attempts=1,
        details="via_upstream",
    )
    finished = Finished(
        head=head,
        info=info,
        request_id="rid-1",
        status=200,
        grpc_status="",
        flags="-",
        details="via_upstream",
        request_bytes=0,
        response_bytes=512,
        duration_ms=42.7,
        upstream_service_ms=40,
        upstream_local_address="10.0.0.2:51234",
    )
    now = datetime.datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=datetime.timezone.utc)
    assert access_log_line(finished, now) == (
        '[2024-05-01T12:00:00.457Z] "GET /items?page=2 HTTP/1.1" 200 - via_upstream - "-" '
        '0 512 42 40 "-" "shop/1.0" "rid-1" "svc:8000" "10.0.0.7:8000" '
        f"{CLUSTER} 10.0.0.2:51234 - - - main"
    )


def test_upstream_call_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A call to a loopback server: its headers, sizes, endpoint and local address."""
    caplog.set_level(logging.INFO, logger="meshlib.access")
    server = LocalServer("svc", lambda seen: Answer(200, b"hello"))
    with serving(server):
        mesh = Mesh.from_yaml(
            service_entry(server.port), namespace=NAMESPACE, seed=1, access_log=True
        )
        with httpx.Client(transport=mesh.transport()) as client:
            client.post(URL, content=b"abc", headers=HEADERS)
    [line] = logged(caplog)
    pattern = (
        TIME + r' "POST /items\?page=2 HTTP/1\.1" 200 - via_upstream - "-" 3 5 \d+ \d+ '
        r'"10\.9\.9\.9" "shop/1\.0" "rid-1" "svc:8000" '
        f'"127.0.0.1:{server.port}" {re.escape(CLUSTER)} '
        f"127.0.0.1:{server.seen[0].client_port} - - - default"
    )
    assert re.fullmatch(pattern, line), line


def test_local_reply_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A refused connection logs 503 UF with Envoy's details and transport failure reason."""
    caplog.set_level(logging.INFO, logger="meshlib.access")
    yaml = service_entry(closed_port()) + virtual_service("retries: {attempts: 0}")
    mesh = Mesh.from_yaml(yaml, namespace=NAMESPACE, seed=1, access_log=True)
    with httpx.Client(transport=mesh.transport()) as client:
        body = client.get(URL, headers=HEADERS).content
    [line] = logged(caplog)
    assert re.fullmatch(
        TIME + r' "GET /items\?page=2 HTTP/1\.1" 503 UF '
        r"upstream_reset_before_response_started\{remote_connection_failure\} - "
        rf'"delayed_connect_error:_Connection_refused" 0 {len(body)} \d+ - '
        r'"10\.9\.9\.9" "shop/1\.0" '
        r'"rid-1" "svc:8000" "127\.0\.0\.1:\d+" ' + re.escape(CLUSTER) + " - - - - main",
        line,
    ), line


def test_fault_abort_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A fault abort: no upstream host, the generated request id, the route name."""
    caplog.set_level(logging.INFO, logger="meshlib.access")
    yaml = service_entry() + virtual_service(
        "fault: {abort: {percentage: {value: 100}, httpStatus: 418}}"
    )
    mesh = Mesh.from_yaml(yaml, namespace=NAMESPACE, seed=1, clock=VirtualClock(), access_log=True)
    with httpx.Client(transport=mesh.transport()) as client:
        response = client.get(URL, headers={"user-agent": "shop/1.0"})
    [line] = logged(caplog)
    request_id = re.search(r'"shop/1\.0" "([0-9a-f-]{36})"', line)
    assert request_id is not None
    assert line.endswith(
        '"GET /items?page=2 HTTP/1.1" 418 FI fault_filter_abort - "-" 0 18 0 - "-" '
        f'"shop/1.0" "{request_id[1]}" "svc:8000" "-" {CLUSTER} - - - - main'
    )
    assert response.status_code == 418


def test_off_by_default(caplog: pytest.LogCaptureFixture) -> None:
    """Istio logs nothing unless told to; so does meshlib."""
    caplog.set_level(logging.INFO, logger="meshlib.access")
    mesh = Mesh.from_yaml(service_entry(), namespace=NAMESPACE, seed=1)
    backends = backends_for(mesh, lambda request: httpx.Response(200))
    with httpx.Client(transport=backends.transport()) as client:
        client.get(URL)
    assert logged(caplog) == []
    assert mesh.telemetry.observe(mesh.start_call(_head())) is None


def _head() -> RequestHead:
    """The engine's view of a GET of ``URL``."""
    return request_head(httpx.Request("GET", URL))
