"""Rewrites, header operations, redirects and direct responses.

``rewrite.uri`` replaces the matched prefix, and only that: with ``prefix: /api`` and
``uri: /v1``, ``/apis`` becomes ``/v1s``. Match ``/api/`` and rewrite to ``/v1/`` to
replace whole path segments.
"""

import httpx

import meshlib

CONFIG = r"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: catalog}
spec:
  hosts: [catalog.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http}]
  endpoints: [{address: 10.0.0.7}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: catalog}
spec:
  hosts: [catalog]
  http:
  - match: [{uri: {prefix: /api}}]
    rewrite: {uri: /v1}
    headers:
      request:
        set: {x-user: "%REQ(end-user)%", x-cluster: "%UPSTREAM_CLUSTER%"}
        add: {x-trace-tag: canary}
        remove: [cookie]
      response:
        set: {cache-control: no-store}
    route: [{destination: {host: catalog}}]
  - match: [{uri: {regex: "/items/[0-9]+/reviews"}}]
    rewrite:
      uriRegexRewrite: {match: "^/items/([0-9]+)/reviews$", rewrite: '/v1/reviews/\1'}
    route: [{destination: {host: catalog}}]
  - match: [{uri: {prefix: /old-shop}}]
    redirect: {uri: /shop, redirectCode: 308}
  - match: [{uri: {exact: /healthz}}]
    directResponse: {status: 200, body: {string: "ok"}}
"""


def backend(request: httpx.Request) -> httpx.Response:
    """The upstream: echo the path and the headers the mesh set."""
    seen = {k: v for k, v in request.headers.items() if k.startswith("x-") or k == "cookie"}
    return httpx.Response(200, json={"path": request.url.raw_path.decode(), "headers": seen})


def main() -> None:
    """Print what the upstream saw, or what the mesh answered itself."""
    mesh = meshlib.Mesh.from_yaml(CONFIG)
    transport = mesh.transport(lambda _upstream: httpx.MockTransport(backend))
    headers = {"end-user": "jason", "cookie": "session=1"}
    with httpx.Client(transport=transport, headers=headers) as client:
        for path in ("/api/books", "/apis", "/items/42/reviews"):
            response = client.get(f"http://catalog:8080{path}")
            print(f"{path} -> upstream path {response.json()['path']}")
        response = client.get("http://catalog:8080/api/books")
        print(f"request headers added: {response.json()['headers']}")
        print(f"response header cache-control: {response.headers['cache-control']}")
        response = client.get("http://catalog:8080/old-shop/cart?id=7")
        print(f"/old-shop/cart -> {response.status_code} Location: {response.headers['location']}")
        response = client.get("http://catalog:8080/healthz")
        print(f"/healthz -> {response.status_code} {response.text!r} (answered by the mesh)")


if __name__ == "__main__":
    main()
