"""Closing a mesh transport closes every inner transport it made, a mirror's included."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from meshlib import Mesh, Upstream
from meshlib._clock import SystemClock
from tests.transports.shells import Sent, Shell

YAML = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc}
spec:
  hosts: [svc.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mirror}
spec:
  hosts: [mirror.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.2}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc}
spec:
  hosts: [svc]
  http:
  - route: [{destination: {host: svc}}]
    mirror: {host: mirror}
    mirrorPercentage: {value: 100}
"""


class Recorded(httpx.MockTransport):
    """Answers 200 and remembers being closed (sync and async alike)."""

    def __init__(self) -> None:
        super().__init__(lambda request: httpx.Response(200))
        self.closed = False

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


class MirrorLag(SystemClock):
    """The real clock, 0.1 s slow to answer on the sync shell's mirror threads: the
    mirror's request (and its inner transport) then starts after the caller is done."""

    def now(self) -> float:
        if threading.current_thread().name.startswith("meshlib-mirror"):
            time.sleep(0.1)
        return super().now()


def test_a_mirror_still_pending_at_close_has_its_transport_closed(shell: Shell) -> None:
    """Closing the client waits for a pending mirror, then closes every inner transport,
    the one the mirror made last included (no socket is left to the collector)."""
    made: dict[str, Recorded] = {}

    def factory(upstream: Upstream) -> Any:
        made[upstream.address] = Recorded()
        return made[upstream.address]

    mesh = Mesh.from_yaml(YAML, clock=MirrorLag())
    [got] = shell.send(mesh, [Sent("http://svc:8000/")], inner=factory)
    assert got.status == 200
    assert sorted(made) == ["10.0.0.1", "10.0.0.2"]
    assert all(transport.closed for transport in made.values())
