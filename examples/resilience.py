"""Circuit breaking and outlier detection, as a DestinationRule configures them.

* ``connectionPool``: one connection and one waiting request at most; of three
  concurrent requests, one is answered at once with 503 ``UO`` (istio.io's
  circuit-breaking task, in process).
* ``outlierDetection``: an endpoint that answers 500 three times in a row is ejected
  for 30 s; the other endpoints take its traffic.
"""

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

import meshlib

SERVICE = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin}
spec:
  hosts: [httpbin.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}, {address: 10.0.0.2}, {address: 10.0.0.3}]
"""
CIRCUIT_BREAKER = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
"""
OUTLIER_DETECTION = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 10s
      baseEjectionTime: 30s
      maxEjectionPercent: 100
"""


def slow(_request: httpx.Request) -> httpx.Response:
    """Every endpoint takes 0.2 s to answer."""
    time.sleep(0.2)
    return httpx.Response(200)


def circuit_breaking() -> None:
    """Three requests at once against one connection and one pending slot."""
    one_endpoint = SERVICE.replace(", {address: 10.0.0.2}, {address: 10.0.0.3}", "")
    mesh = meshlib.Mesh.from_yaml(one_endpoint + "---" + CIRCUIT_BREAKER)
    upstream = httpx.MockTransport(slow)
    with httpx.Client(transport=mesh.transport(lambda _: upstream)) as client:

        def get(delay: float) -> httpx.Response:
            time.sleep(delay)  # arrive in order: first, second, third
            return client.get("http://httpbin:8000/get")

        with ThreadPoolExecutor(3) as pool:
            responses = list(pool.map(get, (0.0, 0.05, 0.1)))
    for n, response in enumerate(responses, start=1):
        info = response.extensions["meshlib"]
        overloaded = response.headers.get("x-envoy-overloaded", "-")
        print(
            f"request {n}: {response.status_code} flags={info.response_flags}"
            f" x-envoy-overloaded={overloaded}"
        )


def outlier_detection() -> None:
    """10.0.0.1 answers 500; after three in a row it gets nothing more."""

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if request.url.host == "10.0.0.1" else 200)

    mesh = meshlib.Mesh.from_yaml(SERVICE + "---" + OUTLIER_DETECTION, seed=1)
    upstream = httpx.MockTransport(handle)
    served: Counter[str] = Counter()
    with httpx.Client(transport=mesh.transport(lambda _: upstream)) as client:
        for _ in range(30):
            response = client.get("http://httpbin:8000/get")
            served[f"{response.extensions['meshlib'].endpoint} {response.status_code}"] += 1
    for endpoint, count in sorted(served.items()):
        print(f"{endpoint}: {count}")


if __name__ == "__main__":
    circuit_breaking()
    outlier_detection()
