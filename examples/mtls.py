"""Two services on loopback, talking Istio mTLS with SPIFFE identities.

* A development CA issues three workload certificates in Istio's layout: reviews,
  productpage and ratings (``meshlib ca`` does the same from the command line).
* reviews runs under ``meshlib.server`` with an AuthorizationPolicy that lets only
  productpage in; it answers with the caller's SPIFFE ID.
* productpage calls ``http://reviews:9080/`` through a mesh: auto-mTLS picks Istio mutual
  TLS (the endpoint has a service account) and checks reviews' SPIFFE ID.
* ratings, another identity, gets ``403 RBAC: access denied``.
"""

import tempfile
from pathlib import Path
from typing import Any

import httpx

import meshlib
from meshlib._ca import init_ca, issue
from meshlib.server import Server

POLICY = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-callers, namespace: default}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/productpage]}}]
"""


def service_entry(port: int) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews}}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}, serviceAccount: reviews}}]
"""


async def reviews(scope: dict[str, Any], _receive: Any, send: Any) -> None:
    """The reviews service: it tells the caller who it thinks the caller is."""
    caller = scope["extensions"]["tls"]["spiffe_id"]
    body = f"hello {caller}".encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        root = Path(workdir)
        init_ca(root / "ca")
        for name in ("reviews", "productpage", "ratings"):
            issue(root / "ca", f"spiffe://cluster.local/ns/default/sa/{name}", root / name)
        with Server(reviews, identity=root / "reviews", policies=POLICY) as server:
            for caller in ("productpage", "ratings"):
                mesh = meshlib.Mesh.from_yaml(service_entry(server.port), identity=root / caller)
                with httpx.Client(transport=mesh.transport()) as client:
                    response = client.get("http://reviews:9080/")
                print(f"{caller:11} -> {response.status_code} {response.text}")


if __name__ == "__main__":
    main()
