"""The resilience steps: circuit breaking (istio.io's task) and outlier detection."""

from __future__ import annotations

import contextlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from meshlib._demo._servers import DemoServer
from meshlib._demo._story import Stage, sample, service_entry, step
from meshlib._mesh import Mesh

__all__ = ["circuit_breaking", "outlier_detection"]


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
