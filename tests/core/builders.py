"""A small mesh for core tests: one service, its endpoints, one rule and one policy."""

from __future__ import annotations

import textwrap
from typing import Any

from meshlib import Endpoint, Mesh
from tests.core.drive import FakeClock

HOST = "svc.default.svc.cluster.local"
URL = "http://svc/items"


def service_mesh(
    rule: str | None = "",
    policy: str = "",
    *,
    endpoints: int = 3,
    clock: FakeClock | None = None,
    seed: int = 7,
    **options: Any,
) -> Mesh:
    """A mesh with service ``svc`` (port 80) and ``endpoints`` endpoints 10.0.0.1, .2, ...

    ``rule`` is the YAML of a VirtualService rule sending to ``svc`` (None: no
    VirtualService, the default route); ``policy`` the YAML of a DestinationRule's
    ``trafficPolicy`` (empty: no DestinationRule).
    """
    documents = []
    if rule is not None:
        body = "route: [{destination: {host: svc}}]\n" + textwrap.dedent(rule)
        documents.append(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
            "metadata: {name: svc, namespace: default}\n"
            "spec:\n  hosts: [svc]\n  http:\n  - " + textwrap.indent(body, "    ").lstrip()
        )
    if policy:
        documents.append(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            "metadata: {name: svc, namespace: default}\n"
            "spec:\n  host: svc\n  trafficPolicy:\n"
            + textwrap.indent(textwrap.dedent(policy), "    ")
        )
    config = "---\n".join(documents)
    mesh = Mesh.from_yaml(config, seed=seed, clock=clock or FakeClock(), **options)
    mesh.set_endpoints(HOST, [Endpoint(f"10.0.0.{n}", port=80) for n in range(1, endpoints + 1)])
    return mesh
