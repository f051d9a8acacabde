"""Load balancing as a DestinationRule configures it.

* ``consistentHash: {httpHeaderName: x-user}``: every request of one user goes to the
  same endpoint (Envoy's ring hash over the endpoints' ``ip:port``), and different
  users spread over the endpoints.
* ``LEAST_REQUEST``, Istio's default: of two endpoints drawn at random, the one with
  fewer requests in flight wins. An endpoint that answers slowly holds its requests
  longer, so it gets fewer new ones. ``ROUND_ROBIN`` gives it its full third.

Each endpoint is an ``httpx.MockTransport``; nothing leaves the process.
"""

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

import meshlib

SERVICE = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: profile}
spec:
  hosts: [profile.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}, {address: 10.0.0.2}, {address: 10.0.0.3}]
"""
POLICY = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: profile}
spec:
  host: profile
  trafficPolicy:
    loadBalancer: LOAD_BALANCER
"""
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
SLOW = "10.0.0.3"


def endpoint(upstream: meshlib.Upstream) -> httpx.MockTransport:
    """The inner transport of one endpoint: a search takes 100 ms on 10.0.0.3 and 5 ms
    on the others; anything else is answered at once."""
    delay = 0.1 if upstream.address == SLOW else 0.005

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/search":
            time.sleep(delay)
        return httpx.Response(200)

    return httpx.MockTransport(handle)


def mesh_with(load_balancer: str) -> meshlib.Mesh:
    """The profile service, balanced as ``load_balancer`` says."""
    policy = POLICY.replace("LOAD_BALANCER", load_balancer)
    return meshlib.Mesh.from_yaml(SERVICE + "---" + policy, seed=1)


def affinity() -> None:
    """Five requests per user; print where each user's requests went."""
    mesh = mesh_with("{consistentHash: {httpHeaderName: x-user}}")
    with httpx.Client(transport=mesh.transport(endpoint)) as client:
        for user in USERS:
            served = Counter(
                client.get("http://profile:8000/me", headers={"x-user": user})
                .extensions["meshlib"]
                .endpoint
                for _ in range(5)
            )
            line = ", ".join(f"{name} {count} of 5" for name, count in served.items())
            print(f"x-user {user}: {line}")


def least_request() -> None:
    """120 requests from 8 threads, least request then round robin; count per endpoint."""
    for load_balancer in ("LEAST_REQUEST", "ROUND_ROBIN"):
        mesh = mesh_with(f"{{simple: {load_balancer}}}")
        with httpx.Client(transport=mesh.transport(endpoint)) as client:

            def get(_: int) -> str:
                response = client.get("http://profile:8000/search")
                info: meshlib.MeshInfo = response.extensions["meshlib"]
                return info.endpoint or ""

            with ThreadPoolExecutor(8) as pool:
                served = Counter(pool.map(get, range(120)))
        counts = ", ".join(
            f"{name} {served[name]}" + (" (slow)" if name.startswith(SLOW) else "")
            for name in sorted(served)
        )
        print(f"{load_balancer}: {counts}")


if __name__ == "__main__":
    affinity()
    least_request()
