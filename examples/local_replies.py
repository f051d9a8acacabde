"""The answers a sidecar would give itself: Envoy's local replies, status, body and flags.

Each request below goes wrong in a different way. The application gets the same reply
an Istio sidecar would send (never a meshlib exception), and
``response.extensions["meshlib"].flags`` says why.
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
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /v2/}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{uri: {prefix: /slow/}}]
    timeout: 1s
    route: [{destination: {host: reviews, subset: v1}}]
  - match: [{uri: {prefix: /reviews/}}, {uri: {prefix: /down/}}]
    route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""

GRPC = {"content-type": "application/grpc"}

CASES = [
    ("no rule matches the path", "http://reviews:9080/other", {}),
    ("subset v2 is not defined", "http://reviews:9080/v2/reviews", {}),
    ("ratings has no endpoint", "http://ratings:9080/ratings/0", {}),
    ("the same, from a gRPC client", "http://ratings:9080/ratings/0", GRPC),
    ("the endpoint refuses connections", "http://reviews:9080/down/0", {}),
    ("the route timeout expires", "http://reviews:9080/slow/0", {}),
    ("unknown host, REGISTRY_ONLY", "http://example.com/", {}),
    ("all is well", "http://reviews:9080/reviews/0", {}),
]


def backend(request: httpx.Request) -> httpx.Response:
    """The upstream: refuses connections on /down/, never answers on /slow/."""
    if request.url.path.startswith("/down/"):
        raise httpx.ConnectError("connection refused", request=request)
    if request.url.path.startswith("/slow/"):
        raise httpx.ReadTimeout("timed out", request=request)
    return httpx.Response(200, text="ok")


def main() -> None:
    """Print status, flags and body (or gRPC status) of each case."""
    mesh = meshlib.Mesh.from_yaml(CONFIG)
    transport = mesh.transport(lambda _upstream: httpx.MockTransport(backend))
    with httpx.Client(transport=transport) as client:
        for situation, url, headers in CASES:
            response = client.get(url, headers=headers)
            info = response.extensions["meshlib"]
            answer = response.text or "(empty body)"
            if "grpc-status" in response.headers:
                status, message = response.headers["grpc-status"], response.headers["grpc-message"]
                answer = f"grpc-status {status}: {message}"
            print(f"{situation:34} {response.status_code} {info.response_flags:7} {answer}")


if __name__ == "__main__":
    main()
