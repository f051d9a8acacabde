"""``AuthorizationMiddleware`` on its own, as under any ASGI server: no sockets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import pytest

from meshlib._ca import issue
from meshlib.server import AuthorizationMiddleware, WorkloadPolicy
from meshlib.server._asgi import Message, Receive, Scope, Send

CLIENT = "spiffe://cluster.local/ns/shop/sa/client"
DENY_ADMIN = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: shop}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: [/admin*]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-pay, namespace: shop}
spec:
  action: AUDIT
  rules: [{to: [{operation: {paths: [/pay]}}]}]
"""
ONLY_CLIENT = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-client, namespace: shop}
spec:
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/client]}}]}]
"""


class Recorder:
    """An ASGI app that answers 200 and keeps the scope it was called with."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})


def http_scope(path: str = "/", method: str = "GET", **extra: Any) -> Scope:
    """An HTTP scope as a server would make it for ``path`` (raw, with its query)."""
    raw, _, query = path.partition("?")
    scope: Scope = {
        "type": "http",
        "method": method,
        "path": raw,
        "raw_path": raw.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"cart.shop")],
        "client": ("10.0.0.1", 50000),
        "server": ("10.0.0.9", 8080),
    }
    scope.update(extra)
    return scope


def call(app: AuthorizationMiddleware, scope: Scope) -> tuple[int, dict[bytes, bytes], bytes]:
    """Run one request through ``app``: status, headers, body."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    start, body = sent[0], sent[1]
    return start["status"], dict(start.get("headers", [])), body.get("body", b"")


def middleware(policies: str, app: Recorder | None = None) -> AuthorizationMiddleware:
    """The middleware for workload ``shop``/``app: cart`` around ``app``."""
    return AuthorizationMiddleware(app or Recorder(), policies, "shop", {"app": "cart"})


def test_denial_is_envoys_rbac_reply() -> None:
    """A denial answers 403, text/plain, ``RBAC: access denied``; the app is not called."""
    app = Recorder()
    status, headers, body = call(middleware(DENY_ADMIN, app), http_scope("/admin/users"))
    assert (status, headers[b"content-type"], body) == (403, b"text/plain", b"RBAC: access denied")
    assert app.scopes == []


def test_every_decision_is_audited(caplog: pytest.LogCaptureFixture) -> None:
    """Denials and audited requests are INFO records, other allowed requests DEBUG."""
    app = middleware(DENY_ADMIN)
    with caplog.at_level(logging.DEBUG, logger="meshlib.audit"):
        for path in ("/admin", "/pay", "/cart"):
            call(app, http_scope(path))
    denied, audited, plain = [r for r in caplog.records if r.name == "meshlib.audit"]
    assert denied.levelno == audited.levelno == logging.INFO
    assert plain.levelno == logging.DEBUG
    assert denied.audit == {  # type: ignore[attr-defined]
        "decision": "DENY",
        "reason": "denied by policy",
        "policy": "shop/deny-admin",
        "rule": 0,
        "principal": None,
        "source_ip": "10.0.0.1",
        "method": "GET",
        "host": "cart.shop",
        "path": "/admin",
        "audit": False,
        "audit_policy": None,
    }
    assert "DENY (denied by policy) policy=shop/deny-admin rule=0" in denied.getMessage()
    assert audited.audit["audit_policy"] == "shop/audit-pay"  # type: ignore[attr-defined]
    assert "audit=true" in audited.getMessage()


@pytest.mark.parametrize(
    "path",
    ["/public/../admin", "/%61dmin", "/./admin", "/public\\..\\admin", "http://cart.shop/admin"],
)
def test_normalized_paths_cannot_dodge_a_deny(path: str) -> None:
    """Paths are matched after Istio's BASE normalization, so encodings do not dodge rules."""
    assert call(middleware(DENY_ADMIN), http_scope(path))[0] == 403


def test_the_app_sees_the_normalized_path() -> None:
    """As behind Envoy, the app gets the normalized path; the query string is untouched."""
    app = Recorder()
    call(middleware("", app), http_scope("/a/./b/../c%7E%2F?q=%2E"))
    scope = app.scopes[0]
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == (
        "/a/c~/",
        b"/a/c~%2F",
        b"q=%2E",
    )


@pytest.mark.parametrize(
    "scope",
    [http_scope("/a%00b"), http_scope("/", method="get"), http_scope("admin")],
    ids=["nul", "lowercase", "relative"],
)
def test_requests_envoy_rejects_get_400(scope: Scope) -> None:
    """``%00`` in the path, a lowercase method or a relative path is answered 400, as by Envoy."""
    assert call(middleware(""), scope)[0] == 400


def test_principal_from_the_asgi_tls_extension(ca: Path, tmp_path: Path) -> None:
    """Under servers with the ASGI TLS extension the principal is read from the client cert."""
    identity = issue(ca, CLIENT, tmp_path)
    leaf = identity.cert_chain_pem.decode()
    with_chain = http_scope(extensions={"tls": {"client_cert_chain": [leaf]}})
    assert call(middleware(ONLY_CLIENT), with_chain)[0] == 200
    assert call(middleware(ONLY_CLIENT), http_scope())[0] == 403
    with_id = http_scope(extensions={"tls": {"spiffe_id": CLIENT}})
    assert call(middleware(ONLY_CLIENT), with_id)[0] == 200


def test_websocket_denial_closes_before_accept() -> None:
    """A denied WebSocket is closed before it is accepted (the server answers 403)."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = http_scope("/admin", type="websocket")
    anyio.run(middleware(DENY_ADMIN), scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_lifespan_passes_through() -> None:
    """Scopes other than HTTP and WebSocket go to the app untouched."""
    app = Recorder()

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    anyio.run(middleware(ONLY_CLIENT, app), {"type": "lifespan"}, receive, send)
    assert app.scopes == [{"type": "lifespan"}]


def test_apply_replaces_the_policies() -> None:
    """``apply`` swaps the policies for the next requests."""
    app = middleware(ONLY_CLIENT)
    assert call(app, http_scope())[0] == 403
    app.apply(WorkloadPolicy(namespace="shop"))
    assert call(app, http_scope())[0] == 200


def test_pseudo_headers_can_be_matched() -> None:
    """``request.headers[:authority]`` and friends see the request's pseudo-headers."""
    policy = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: by-authority, namespace: shop}
spec:
  rules:
  - when:
    - {key: 'request.headers[:authority]', values: [cart.shop]}
    - {key: 'request.headers[:path]', values: ['/cart?*']}
"""
    assert call(middleware(policy), http_scope("/cart?id=1"))[0] == 200
    assert call(middleware(policy), http_scope("/cart"))[0] == 403
