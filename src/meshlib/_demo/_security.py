"""The security step: Istio mTLS with SPIFFE identities, and an AuthorizationPolicy."""

from __future__ import annotations

import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import httpx

from meshlib._ca import init_ca, issue
from meshlib._demo._story import Stage, step
from meshlib._mesh import Mesh

__all__ = ["mtls"]

POLICY = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-callers, namespace: default}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/productpage]}}]
"""


def _entry(port: int) -> str:
    return (
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: secure}\n"
        "spec:\n  hosts: [secure.default.svc.cluster.local]\n  location: MESH_INTERNAL\n"
        "  resolution: STATIC\n  ports: [{number: 9080, name: http, protocol: HTTP}]\n"
        "  endpoints:\n"
        f"  - {{address: 127.0.0.1, ports: {{http: {port}}}, serviceAccount: reviews}}\n"
    )


async def _whoami(scope: MutableMapping[str, Any], _receive: Any, send: Any) -> None:
    body = scope["extensions"]["tls"]["spiffe_id"].encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def mtls(_stage: Stage) -> None:
    step(
        "mTLS: SPIFFE identities, and an AuthorizationPolicy that admits productpage only",
        "meshlib ca init / issue; meshlib.server with the policy; auto-mTLS on the client",
    )
    from meshlib.server import Server  # the server extra

    with tempfile.TemporaryDirectory() as workdir:
        root = Path(workdir)
        init_ca(root / "ca")
        for name in ("reviews", "productpage", "ratings"):
            issue(root / "ca", f"spiffe://cluster.local/ns/default/sa/{name}", root / name)
        with Server(_whoami, identity=root / "reviews", policies=POLICY) as server:
            for caller in ("productpage", "ratings"):
                mesh = Mesh.from_yaml(_entry(server.port), identity=root / caller)
                with httpx.Client(transport=mesh.transport()) as client:
                    response = client.get("http://secure:9080/")
                print(f"   {caller:11} -> {response.status_code} {response.text}")
