"""The resilience steps: circuit breaking (istio.io's task) and outlier detection."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from meshlib._demo._servers import DemoServer
from meshlib._demo._story import Stage, sample, service_entry, step
from meshlib._mesh import Mesh

__all__ = ["circuit_breaking", "outlier_detection", "retry", "timeout"]

FLAKY = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details}
spec:
  hosts: [details]
  http:
  - route: [{destination: {host: details}}]
    RULE
"""


def _details_mesh(server: DemoServer, rule: str) -> Mesh:
    return Mesh.from_yaml(
        service_entry("details", [server]) + "---\n" + FLAKY.replace("RULE", rule)
    )


def retry(_stage: Stage) -> None:
    step(
        "Retries: a flaky endpoint (every 2nd answer 503) rescued",
        "retries: {attempts: 3, retryOn: 5xx}",
    )
    with DemoServer("details", "v1", fail_every=2) as flaky:
        for rule in ("timeout: 5s", "retries: {attempts: 3, retryOn: 5xx}"):
            mesh = _details_mesh(flaky, rule)
            with httpx.Client(transport=mesh.transport()) as client:
                answers = [client.get("http://details:9080/details/0") for _ in range(10)]
            statuses = Counter(r.status_code for r in answers)
            attempts = sum(r.extensions["meshlib"].attempts for r in answers)
            label = "with retries" if "retries" in rule else "Istio's default policy"
            print(f"   {label:22}: {dict(statuses)} in {attempts} attempts")


def timeout(_stage: Stage) -> None:
    step("Timeouts: a 0.5 s answer under a 0.2 s route timeout", "timeout: 0.2s")
    with DemoServer("details", "v1", delay=0.5) as slow:
        mesh = _details_mesh(slow, "timeout: 0.2s")
        with httpx.Client(transport=mesh.transport()) as client:
            started = time.monotonic()
            response = client.get("http://details:9080/details/0")
            elapsed = time.monotonic() - started
    flags = ",".join(response.extensions["meshlib"].flags)
    print(f"   {response.status_code} {response.text!r} ({flags}) after {elapsed:.1f} s")


def circuit_breaking(_stage: Stage) -> None:
    step(
        "Circuit breaking: one connection, one pending request",
        "kubectl apply -f circuit-breaking-destination-rule.yaml",
    )
    with DemoServer("httpbin", "v1") as httpbin:
        entry = service_entry("httpbin", [httpbin], port=8000)
        mesh = Mesh.from_yaml(entry + "---\n" + sample("circuit-breaking-destination-rule.yaml"))
        with httpx.Client(transport=mesh.transport()) as client:

            def get(_: int) -> httpx.Response:
                return client.get("http://httpbin:8000/get?delay=0.3")

            with ThreadPoolExecutor(3) as pool:
                responses = list(pool.map(get, range(3)))
    statuses = Counter(
        f"{r.status_code} {','.join(r.extensions['meshlib'].flags) or '-'}" for r in responses
    )
    for outcome, count in sorted(statuses.items()):
        print(f"   {count} x {outcome}")
    print("   (503 UO: answered at once by the client, with x-envoy-overloaded: true)")


OUTLIER = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details}
spec:
  host: details
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 10s
      baseEjectionTime: 30s
      maxEjectionPercent: 100
"""


def outlier_detection(_stage: Stage) -> None:
    step(
        "Outlier detection: an endpoint answering 503 is ejected",
        "outlierDetection: {consecutive5xxErrors: 3, baseEjectionTime: 30s, ...}",
    )
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(DemoServer("details", "a")),
            stack.enter_context(DemoServer("details", "b")),
            stack.enter_context(DemoServer("details", "broken", status=503)),
        ]
        mesh = Mesh.from_yaml(service_entry("details", servers) + "---\n" + OUTLIER, seed=1)
        with httpx.Client(transport=mesh.transport()) as client:
            for _ in range(30):
                client.get("http://details:9080/details/0")
        served = {server.version: server.served for server in servers}
    print(f"   30 requests (with Istio's default retries): served {served}")
    print("   the broken endpoint got 3 requests, then none: ejected for 30 s")
