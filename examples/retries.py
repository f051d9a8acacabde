"""Retries as Istio configures them, and ``upstream_errors="raise"``.

* A ``retries`` block: here 503s are retried (``retryOn: 5xx``), with Envoy's backoff.
* No ``retries`` block: Istio's default policy retries connect failures twice, not 503s.
* ``upstream_errors="raise"``: after the last attempt the caller gets httpx's own
  exception, with the mesh's account of the request in ``error.mesh_info``.
"""

import itertools

import httpx

import meshlib

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: bookinfo}
spec:
  hosts: [reviews.default.svc.cluster.local, ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}, {address: 10.0.0.2}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    retries: {attempts: 3, retryOn: 5xx, perTryTimeout: 2s}
"""


def flaky() -> httpx.MockTransport:
    """Two 503s, then 200s, whichever endpoint is called; /down/ refuses connections."""
    statuses = itertools.chain([503, 503], itertools.repeat(200))

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/down/"):
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(next(statuses))

    return httpx.MockTransport(handle)


def get(mesh: meshlib.Mesh, url: str) -> httpx.Response:
    """One request through a fresh flaky upstream (shared by every endpoint)."""
    upstream = flaky()
    with httpx.Client(transport=mesh.transport(lambda _upstream: upstream)) as client:
        return client.get(url)


def with_replies() -> None:
    """The default: every outcome is a response, as from a sidecar."""
    mesh = meshlib.Mesh.from_yaml(CONFIG)
    for what, url in (
        ("reviews, retryOn 5xx", "http://reviews:9080/reviews/0"),
        ("ratings, default policy", "http://ratings:9080/ratings/0"),
        ("ratings, connection refused", "http://ratings:9080/down/0"),
    ):
        response = get(mesh, url)
        info = response.extensions["meshlib"]
        print(
            f"{what}: {response.status_code} flags={info.response_flags} attempts={info.attempts}"
        )


def with_exceptions() -> None:
    """``upstream_errors="raise"``: upstream failures raise httpx's exception."""
    mesh = meshlib.Mesh.from_yaml(CONFIG, upstream_errors="raise")
    with httpx.Client(transport=mesh.transport(lambda _upstream: flaky())) as client:
        try:
            client.get("http://ratings:9080/down/0")
        except httpx.ConnectError as error:
            info = error.mesh_info  # type: ignore[attr-defined]
            print(f"upstream_errors='raise': httpx.ConnectError, {info.attempts} attempts")


if __name__ == "__main__":
    with_replies()
    with_exceptions()
