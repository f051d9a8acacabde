"""The fault steps: Istio's ratings delay and abort samples, for jason only.

The delay step runs on :class:`meshlib.testing.VirtualClock`: the 7 s delay is waited in
virtual time, so the demo does not stop for 7 s, and ``MeshInfo`` still reports 7 s.
"""

from __future__ import annotations

import httpx

from meshlib._demo._story import Stage, sample, step
from meshlib._mesh import Mesh
from meshlib.testing import VirtualClock

__all__ = ["abort", "delay"]

RATINGS = "http://ratings:9080/ratings/0"
JASON = {"end-user": "jason"}


def delay(stage: Stage) -> None:
    step(
        "Fault injection: a 7 s delay for jason's calls to ratings",
        "kubectl apply -f virtual-service-ratings-test-delay.yaml",
    )
    clock = VirtualClock()
    mesh = Mesh.from_yaml(
        stage.base + "\n---\n" + sample("virtual-service-ratings-test-delay.yaml"), clock=clock
    )
    with httpx.Client(transport=mesh.transport()) as client:
        for user, headers in (("jason", JASON), ("alice", {"end-user": "alice"})):
            response = client.get(RATINGS, headers=headers)
            info = response.extensions["meshlib"]
            flags = ",".join(info.flags) or "-"
            waited = f"waited {info.elapsed:.1f} s"
            print(f"   {user:6} -> {response.status_code}, {waited}, flags {flags}")
    print("   (the delay ran on meshlib.testing.VirtualClock: no real waiting)")


def abort(stage: Stage) -> None:
    step(
        "Fault injection: HTTP 500 for jason's calls to ratings",
        "kubectl apply -f virtual-service-ratings-test-abort.yaml",
    )
    stage.apply(sample("virtual-service-ratings-test-abort.yaml"))
    before = stage.servers["ratings"].served
    for user, headers in (("jason", JASON), ("alice", {"end-user": "alice"})):
        response = stage.client.get(RATINGS, headers=headers)
        flags = ",".join(response.extensions["meshlib"].flags) or "-"
        print(f"   {user:6} -> {response.status_code} {response.text!r}, flags {flags}")
    print(f"   ratings served {stage.servers['ratings'].served - before} of the 2 requests")
