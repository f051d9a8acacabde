"""What every step of the demo shares: the stage (servers, mesh, client) and printing."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from importlib import resources

import httpx

from meshlib._demo._servers import DemoServer
from meshlib._mesh import Mesh

__all__ = ["REVIEWS", "VERSIONS", "Stage", "bar", "sample", "service_entry", "step", "version"]

VERSIONS = ("v1", "v2", "v3")
REVIEWS = "http://reviews:9080/reviews/0"


@dataclass
class Stage:
    """The servers on loopback, the mesh, a client through it, and the base YAML (the
    DestinationRules and ServiceEntries every step builds on)."""

    servers: dict[str, DemoServer]
    mesh: Mesh
    client: httpx.Client
    base: str

    def apply(self, *documents: str) -> None:
        """Apply the base YAML plus ``documents``."""
        self.mesh.apply("\n---\n".join([self.base, *documents]))


def sample(name: str) -> str:
    """One of Istio's sample files, as shipped with the demo."""
    return resources.files("meshlib._demo.data").joinpath(name).read_text(encoding="utf-8")


def service_entry(service: str, servers: list[DemoServer], port: int = 9080) -> str:
    """A ServiceEntry declaring ``service`` with ``servers`` as its endpoints."""
    endpoints = "".join(
        f"  - address: 127.0.0.1\n    ports: {{http: {server.port}}}\n"
        f"    labels: {{app: {service}, version: {server.version}}}\n"
        for server in servers
    )
    return (
        f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {service}}}\n"
        f"spec:\n  hosts: [{service}.default.svc.cluster.local]\n  location: MESH_INTERNAL\n"
        f"  resolution: STATIC\n  ports: [{{number: {port}, name: http, protocol: HTTP}}]\n"
        f"  endpoints:\n{endpoints}"
    )


def version(response: httpx.Response) -> str:
    """The version of the server that answered."""
    return str(json.loads(response.content)["version"])


def bar(counts: Counter[str], total: int, names: tuple[str, ...] = VERSIONS) -> str:
    """``v1   30 (100.0%)  v2    0 (  0.0%) ...``"""
    return "  ".join(
        f"{v} {counts[v]:4d} ({100 * counts[v] / max(total, 1):5.1f}%)" for v in names
    )


def step(title: str, command: str) -> None:
    """A step's heading, with what one would type against Istio."""
    print(f"\n== {title}\n   {command}")
