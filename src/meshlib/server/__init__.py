"""The server side of the mesh: Istio mTLS and authorization for an ASGI application.

What an Istio sidecar does for inbound traffic, done in process:

* :class:`Server` / :func:`serve` listen on one port, tell mTLS from plaintext by the
  first byte, accept plaintext only where PeerAuthentication allows it (PERMISSIVE, or
  DISABLE), terminate mTLS with the workload identity, check that the peer's SPIFFE ID
  is in the mesh's trust domain, and hand the peer to the application in
  ``scope["extensions"]["tls"]`` (the ASGI TLS extension, plus ``spiffe_id``). HTTP/1.1
  only (``h11``).
* :class:`AuthorizationMiddleware` enforces AuthorizationPolicy in Istio's order and
  answers a denial with ``403 RBAC: access denied``; the server puts it around the
  application, and it also works alone under any ASGI server.
* :class:`WorkloadPolicy` is the PeerAuthentication and AuthorizationPolicy that apply to
  one workload (namespace and labels), compiled once.
* :func:`server_ssl_context` builds Istio's STRICT server context from an identity, for
  servers that take an :class:`ssl.SSLContext`.

Every authorization decision writes an audit record to the logger ``meshlib.audit``
(meshlib's own feature: see :class:`Decision` and :func:`audit_fields`).

::

    from meshlib._ca import init_ca, issue
    from meshlib.server import Server

    with Server(app, identity="certs/", policies=policy_yaml, namespace="shop") as server:
        ...  # https://127.0.0.1:{server.port}, for clients with a mesh certificate
"""

import anyio.abc as _anyio_abc

if not hasattr(_anyio_abc.SocketStream, "from_socket"):  # pragma: no cover
    raise ImportError(
        "meshlib.server needs anyio>=4.10 (SocketStream.from_socket): "
        "pip install 'meshlib-http[server]'"
    )

from meshlib.server._audit import (
    AUDIT_LOGGER,
    Decision,
    RequestAttributes,
    audit_fields,
)
from meshlib.server._authn import MtlsSettings
from meshlib.server._http import ClientDisconnectedError
from meshlib.server._listener import Server, serve
from meshlib.server._middleware import DENIED_BODY, AuthorizationMiddleware
from meshlib.server._policy import ROOT_NAMESPACE, WorkloadPolicy
from meshlib.server._ssl import ALPN_PROTOCOLS, server_ssl_context

__all__ = [
    "ALPN_PROTOCOLS",
    "AUDIT_LOGGER",
    "DENIED_BODY",
    "ROOT_NAMESPACE",
    "AuthorizationMiddleware",
    "ClientDisconnectedError",
    "Decision",
    "MtlsSettings",
    "RequestAttributes",
    "Server",
    "WorkloadPolicy",
    "audit_fields",
    "serve",
    "server_ssl_context",
]
