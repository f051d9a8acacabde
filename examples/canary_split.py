"""A canary: 80 % of requests to v1 and 20 % to v3, drawn once per request.

Istio's weights are relative: 80/20, 4/1 and 8/2 split the same way. The mesh's
``seed`` makes the draws repeat from run to run.
"""

from collections import Counter

import httpx

import meshlib

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http}]
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
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 80
    - destination: {host: reviews, subset: v3}
      weight: 20
"""

REQUESTS = 1000


def backend(request: httpx.Request) -> httpx.Response:
    """Every endpoint answers 200."""
    return httpx.Response(200, text=request.url.path)


def main() -> None:
    """Send the requests and count where they went."""
    mesh = meshlib.Mesh.from_yaml(CONFIG, seed=1)
    transport = mesh.transport(lambda _upstream: httpx.MockTransport(backend))
    with httpx.Client(transport=transport) as client:
        subsets = Counter(
            client.get("http://reviews:9080/reviews/0").extensions["meshlib"].subset
            for _ in range(REQUESTS)
        )
    for subset, count in sorted(subsets.items()):
        print(f"{subset}: {count} of {REQUESTS} ({100 * count / REQUESTS:.1f}%)")


if __name__ == "__main__":
    main()
