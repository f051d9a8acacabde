"""``AuthorizationMiddleware``: Istio's inbound authorization as ASGI middleware.

It does what an Istio sidecar does to a request before the application sees it:

1. normalizes the path (Istio's default ``BASE``: see :func:`._matchers.normalize_path`)
   and answers 400 to a path it refuses or to a method not in upper case; the
   application then sees the normalized path, as behind Envoy (the query is untouched);
2. evaluates the workload's AuthorizationPolicies (:class:`._policy.WorkloadPolicy`);
3. answers a denial with ``403`` and the body ``RBAC: access denied``
   (``text/plain``), Envoy's RBAC reply, and writes an audit record (:mod:`._audit`).

The peer's identity comes from ``scope["extensions"]["tls"]``: ``spiffe_id`` as
meshlib's listener sets it, else the ``spiffe://`` URI SAN of ``client_cert_chain[0]``
for servers that implement the ASGI TLS extension. Without either the request has no
principal: ``principals``, ``namespaces`` and ``serviceAccounts`` do not match it, and
their ``not`` forms do.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from meshlib.server._asgi import ASGIApp, Receive, Scope, Send, reply
from meshlib.server._audit import AUDIT_LOGGER, RequestAttributes, log_decision
from meshlib.server._matchers import normalize_path
from meshlib.server._policy import ROOT_NAMESPACE, Policies, WorkloadPolicy
from meshlib.server._ssl import spiffe_id_of_pem

__all__ = ["DENIED_BODY", "AuthorizationMiddleware", "request_attributes"]

#: Envoy's RBAC filter answers a denial with 403 and this body.
DENIED_BODY = b"RBAC: access denied"

_ABSOLUTE = re.compile(r"https?://", re.IGNORECASE)


class AuthorizationMiddleware:
    """ASGI middleware enforcing Istio AuthorizationPolicy for one workload.

    Usable on its own under any ASGI server, and used by :class:`~meshlib.server.Server`
    around the application it serves::

        app = AuthorizationMiddleware(app, policies, namespace="shop", labels={"app": "cart"})

    Args:
        app: the ASGI application.
        policies: a :class:`WorkloadPolicy`, YAML text, a
            :class:`~meshlib.config.ConfigSet` or resources; ``None`` for none (every
            request is allowed, as in Istio without policies).
        namespace: the workload's namespace.
        labels: the workload's labels.
        audit_logger: where audit records go (the ``meshlib.audit`` logger by default).
        root_namespace: Istio's root namespace.
    """

    def __init__(
        self,
        app: ASGIApp,
        policies: WorkloadPolicy | Policies | None = None,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        *,
        audit_logger: logging.Logger | None = None,
        root_namespace: str = ROOT_NAMESPACE,
    ) -> None:
        self.app = app
        self.namespace = namespace
        self.labels: Mapping[str, str] = dict(labels or {})
        self.root_namespace = root_namespace
        self.audit_logger = audit_logger or logging.getLogger(AUDIT_LOGGER)
        self.policy = self._policy_of(policies)

    def _policy_of(self, policies: WorkloadPolicy | Policies | None) -> WorkloadPolicy:
        if isinstance(policies, WorkloadPolicy):
            return policies
        return WorkloadPolicy(
            policies if policies is not None else (),
            namespace=self.namespace,
            labels=self.labels,
            root_namespace=self.root_namespace,
        )

    def apply(self, policies: WorkloadPolicy | Policies | None) -> None:
        """Replace the policies; requests already being served keep the old decision.

        Raises :class:`~meshlib.ConfigError` (and changes nothing) for a configuration
        with errors or with a CUSTOM policy.
        """
        self.policy = self._policy_of(policies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        prepared = request_attributes(scope)
        if prepared is None:
            if kind == "http":
                await reply(send, 400, b"Bad Request")
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        request, inner = prepared
        decision = self.policy.authorize(request)
        log_decision(self.audit_logger, decision, request)
        if decision.allowed:
            await self.app(inner, receive, send)
        elif kind == "http":
            await reply(send, 403, DENIED_BODY)
        else:  # closing before accepting: the server answers the upgrade with 403
            await send({"type": "websocket.close", "code": 1008})


def request_attributes(scope: Scope) -> tuple[RequestAttributes, Scope] | None:
    """The request's attributes and the scope to pass on (path normalized), or ``None``
    when Envoy would answer 400: ``%00`` in the path, a path that does not start with
    ``/``, a method not in upper case."""
    method = str(scope.get("method", "GET"))
    if method != method.upper():
        return None
    raw = scope.get("raw_path")
    raw_path = (
        raw.decode("latin-1")
        if isinstance(raw, bytes)
        else quote(scope.get("path", "/"), safe="/:@!$&'()*+,;=~")
    )
    target = _target(raw_path.partition("?")[0], method)
    if target is None:
        return None
    authority, path = target
    inner = scope
    if path != raw_path:
        inner = dict(scope)
        inner["raw_path"] = path.encode("latin-1")
        inner["path"] = unquote(path)
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    host = authority or headers.get("host")
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    # Envoy's header matchers see the request's pseudo-headers too.
    headers[":method"] = method
    headers[":path"] = f"{path}?{query}" if query else path
    headers[":scheme"] = str(scope.get("scheme", "http"))
    if host is not None:
        headers[":authority"] = host
    client, server = scope.get("client"), scope.get("server")
    request = RequestAttributes(
        principal=_principal(scope),
        source_ip=str(client[0]) if client else None,
        destination_ip=str(server[0]) if server else None,
        destination_port=int(server[1]) if server and server[1] is not None else None,
        method=method,
        path=path,
        host=host,
        headers=headers,
    )
    return request, inner


def _target(target: str, method: str) -> tuple[str | None, str] | None:
    """The authority of an absolute-form target (``http://host/path``), if it is one, and
    the normalized path; ``None`` for a target Envoy refuses."""
    authority = None
    if _ABSOLUTE.match(target):
        authority, slash, rest = target.split("://", 1)[1].partition("/")
        target = slash + rest or "/"
    if target == "*" and method == "OPTIONS":
        return authority, target
    if not target.startswith("/"):
        return None
    path = normalize_path(target)
    return None if path is None else (authority, path)


def _principal(scope: Scope) -> str | None:
    tls: Mapping[str, Any] | None = (scope.get("extensions") or {}).get("tls")
    if not tls:
        return None
    spiffe_id = tls.get("spiffe_id")
    if isinstance(spiffe_id, str):
        return spiffe_id
    chain = list(tls.get("client_cert_chain") or ())
    return spiffe_id_of_pem(chain[0]) if chain else None
