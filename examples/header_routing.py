"""Route by request header: ``end-user: jason`` goes to v2, everyone else to v1.

Rules are tried in order and the first match wins. ``exact`` is case-sensitive, so
``Jason`` takes the catch-all rule; header names are matched in lower case.
"""

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
  - {address: 10.0.0.2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: jason
    match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
  - name: everyone-else
    route:
    - destination: {host: reviews, subset: v1}
"""


def backend(request: httpx.Request) -> httpx.Response:
    """Every endpoint answers 200."""
    return httpx.Response(200, text=request.url.path)


def main() -> None:
    """Send the same request as three different users."""
    mesh = meshlib.Mesh.from_yaml(CONFIG)
    transport = mesh.transport(lambda _upstream: httpx.MockTransport(backend))
    with httpx.Client(transport=transport) as client:
        for user in ("jason", "Jason", None):
            headers = {"end-user": user} if user else {}
            info = client.get("http://reviews:9080/reviews/0", headers=headers).extensions[
                "meshlib"
            ]
            print(f"end-user={user or '(none)'}: route {info.route} -> subset {info.subset}")


if __name__ == "__main__":
    main()
