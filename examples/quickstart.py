"""Quickstart: Istio routing for httpx, with no sidecar and no network.

A ServiceEntry declares the ``reviews`` service and its endpoints, a DestinationRule
names its versions, and a VirtualService sends every request to v1. ``ratings`` gets
its endpoint from code instead. ``httpx.MockTransport`` stands in for the network, so
the script runs anywhere: ``python examples/quickstart.py``.
"""

import httpx

import meshlib

SERVICES = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v3, labels: {version: v3}}
"""

ALL_TO_V1 = """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
"""

ALL_TO_V3 = ALL_TO_V1.replace("subset: v1", "subset: v3")


def backend(request: httpx.Request) -> httpx.Response:
    """Play every upstream: report the URL and the Host header the request arrived with."""
    return httpx.Response(200, json={"url": str(request.url), "host": request.headers["host"]})


def show(client: httpx.Client, url: str) -> None:
    """Send one request and print what the upstream saw and what the mesh did."""
    response = client.get(url)
    seen = response.json()
    info: meshlib.MeshInfo = response.extensions["meshlib"]
    print(f"GET {url} -> {response.status_code}, sent to {seen['url']} (Host: {seen['host']})")
    print(
        f"  route={info.route} subset={info.subset or '-'} endpoint={info.endpoint} "
        f"attempts={info.attempts} flags={info.response_flags}"
    )


def main() -> None:
    """Route a few requests, then replace the configuration and route again."""
    mesh = meshlib.Mesh.from_yaml(SERVICES + ALL_TO_V1)
    mesh.set_endpoints("ratings", [meshlib.Endpoint("10.0.2.1", port=9080)])
    transport = mesh.transport(lambda _upstream: httpx.MockTransport(backend))
    with httpx.Client(transport=transport) as client:
        show(client, "http://reviews:9080/reviews/0")
        show(client, "http://ratings:9080/ratings/0")
        mesh.apply(SERVICES + ALL_TO_V3)  # atomic; requests in flight finish on the old one
        print("after mesh.apply():")
        show(client, "http://reviews:9080/reviews/0")


if __name__ == "__main__":
    main()
