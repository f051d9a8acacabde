"""``meshlib demo``: Istio's Bookinfo story, told by meshlib on loopback.

reviews (three versions) and ratings run as local servers, declared by ServiceEntries;
the steps apply Istio's own sample files one after the other, as the Istio tasks do, and
show where requests go: routing, fault injection, retries, timeouts, circuit breaking,
outlier detection, session affinity, least-request balancing, and mTLS with an
AuthorizationPolicy.
"""

from __future__ import annotations

import contextlib

import httpx

from meshlib._demo import _balancing, _faults, _resilience, _routing, _security
from meshlib._demo._servers import DemoServer
from meshlib._demo._story import VERSIONS, Stage, sample, service_entry
from meshlib._mesh import Mesh

__all__ = ["run_demo"]

STEPS = (
    _routing.all_to_v1,
    _routing.canary,
    _routing.jason,
    _faults.delay,
    _faults.abort,
    _resilience.retry,
    _resilience.timeout,
    _resilience.circuit_breaking,
    _resilience.outlier_detection,
    _balancing.affinity,
    _balancing.least_request,
    _security.mtls,
)


def run_demo() -> int:
    """Run the story; returns the exit status."""
    with contextlib.ExitStack() as stack:
        servers = {v: stack.enter_context(DemoServer("reviews", v)) for v in VERSIONS}
        servers["ratings"] = stack.enter_context(DemoServer("ratings", "v1"))
        base = "\n---\n".join(
            [
                sample("destination-rule-all.yaml"),
                service_entry("reviews", [servers[v] for v in VERSIONS]),
                service_entry("ratings", [servers["ratings"]]),
            ]
        )
        mesh = Mesh.from_yaml(base, seed=1)
        print("meshlib demo: Istio's Bookinfo, reviews v1-v3 and ratings on 127.0.0.1")
        for server in servers.values():
            print(f"   {server.service} {server.version}: 127.0.0.1:{server.port}")
        client = stack.enter_context(httpx.Client(transport=mesh.transport()))
        stage = Stage(servers, mesh, client, base)
        for step in STEPS:
            step(stage)
    print("\nDone.")
    return 0
