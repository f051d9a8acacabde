"""``meshlib demo``: Istio's Bookinfo story, told by meshlib on loopback.

Three reviews versions run as local servers, declared by a ServiceEntry; the steps apply
Istio's own sample VirtualServices one after the other, as the Istio tasks do, and show
where requests go.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections import Counter
from importlib import resources

import httpx

from meshlib._demo._servers import DemoServer
from meshlib._mesh import Mesh

__all__ = ["run_demo"]

VERSIONS = ("v1", "v2", "v3")


def _sample(name: str) -> str:
    return resources.files("meshlib._demo.data").joinpath(name).read_text(encoding="utf-8")


def _service_entry(servers: dict[str, DemoServer]) -> str:
    endpoints = "".join(
        f"  - address: 127.0.0.1\n    ports: {{http: {server.port}}}\n"
        f"    labels: {{app: reviews, version: {version}}}\n"
        for version, server in servers.items()
    )
    return (
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: reviews}\n"
        "spec:\n  hosts: [reviews.default.svc.cluster.local]\n  location: MESH_INTERNAL\n"
        "  resolution: STATIC\n  ports: [{number: 9080, name: http, protocol: HTTP}]\n"
        f"  endpoints:\n{endpoints}"
    )


def _version(response: httpx.Response) -> str:
    return str(json.loads(response.content)["version"])


def _bar(counts: Counter[str], total: int) -> str:
    return "  ".join(
        f"{v} {counts[v]:4d} ({100 * counts[v] / max(total, 1):5.1f}%)" for v in VERSIONS
    )


def _step(title: str, command: str) -> None:
    print(f"\n== {title}\n   {command}")


def _all_to_v1(client: httpx.Client, mesh: Mesh, base: str) -> None:
    _step("All traffic to v1", "kubectl apply -f virtual-service-all-v1.yaml")
    mesh.apply(base + _sample("virtual-service-all-v1.yaml"))
    counts = Counter(_version(client.get("http://reviews:9080/reviews/0")) for _ in range(30))
    print(f"   30 requests: {_bar(counts, 30)}")


def _canary(client: httpx.Client, mesh: Mesh, base: str) -> None:
    _step("Canary: 80% v1, 20% v2", "kubectl apply -f virtual-service-reviews-80-20.yaml")
    mesh.apply(base + _sample("virtual-service-reviews-80-20.yaml"))
    counts: Counter[str] = Counter()
    for sent in range(1, 501):
        counts[_version(client.get("http://reviews:9080/reviews/0"))] += 1
        if sent % 50 == 0:
            print(
                f"   {sent:3d} requests: {_bar(counts, sent)}",
                end="\r" if sys.stdout.isatty() else "\n",
            )
    print()
    info = client.get("http://reviews:9080/reviews/0").extensions["meshlib"]
    print(f"   last request: route {info.route}, cluster {info.cluster}, endpoint {info.endpoint}")


def _jason(client: httpx.Client, mesh: Mesh, base: str) -> None:
    _step(
        "Header routing: end-user jason to v2",
        "kubectl apply -f virtual-service-reviews-test-v2.yaml",
    )
    mesh.apply(base + _sample("virtual-service-reviews-test-v2.yaml"))
    for user in ("jason", "alice", None):
        headers = {"end-user": user} if user else {}
        versions = Counter(
            _version(client.get("http://reviews:9080/reviews/0", headers=headers))
            for _ in range(10)
        )
        print(f"   {user or '(no user)':10} -> {dict(versions)}")


def run_demo() -> int:
    """Run the story; returns the exit status."""
    with contextlib.ExitStack() as stack:
        servers = {v: stack.enter_context(DemoServer("reviews", v)) for v in VERSIONS}
        base = _sample("destination-rule-all.yaml") + "\n---\n" + _service_entry(servers) + "---\n"
        mesh = Mesh.from_yaml(base, seed=1)
        print("meshlib demo: Istio's Bookinfo reviews service, three versions on 127.0.0.1")
        for version, server in servers.items():
            print(f"   reviews {version}: 127.0.0.1:{server.port}")
        client = stack.enter_context(httpx.Client(transport=mesh.transport()))
        for step in (_all_to_v1, _canary, _jason):
            step(client, mesh, base)
    print("\nDone.")
    return 0
