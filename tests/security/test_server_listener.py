"""``meshlib.server.Server`` on loopback: real mTLS with identities from a development CA.

Every server listens on 127.0.0.1 (a free port) and every client sets a 5 s timeout, so
a broken handshake fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from meshlib._ca import init_ca, issue
from meshlib._identity import Identity, IdentitySource
from meshlib.server import Server, server_ssl_context
from meshlib.server._asgi import Receive, Scope, Send
from tests.security.pki import handshake, uri_sans

TIMEOUT = 5.0
CLIENT = "spiffe://cluster.local/ns/shop/sa/client"
FRONTEND = "spiffe://cluster.local/ns/web/sa/frontend"


@dataclass(frozen=True)
class Pki:
    """Identity directories issued for the tests."""

    server: Path
    client: Path
    frontend: Path
    foreign: Path  # signed by an unrelated CA
    other_domain: Path  # the right CA, another trust domain


@pytest.fixture(scope="module")
def pki(ca: Path, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A server, two clients of the mesh, one from another CA and one from another domain."""
    base = tmp_path_factory.mktemp("server-pki")
    foreign_ca = base / "foreign-ca"
    init_ca(foreign_ca)
    issued = {
        "server": (ca, "spiffe://cluster.local/ns/shop/sa/cart"),
        "client": (ca, CLIENT),
        "frontend": (ca, FRONTEND),
        "foreign": (foreign_ca, CLIENT),
        "other_domain": (ca, "spiffe://other.domain/ns/shop/sa/client"),
    }
    for name, (authority, spiffe_id) in issued.items():
        issue(authority, spiffe_id, base / name)
    return Pki(*(base / name for name in issued))


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with what it was given: the TLS extension, the path and the body."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    tls = scope.get("extensions", {}).get("tls")
    facts = {
        "scheme": scope["scheme"],
        "path": scope["path"],
        "client_port": scope["client"][1],
        "body": body.decode(),
        "tls": None
        if tls is None
        else {**tls, "client_cert_chain": len(tls["client_cert_chain"])},
    }
    payload = json.dumps(facts).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def tls_context(identity: Path | None, roots: Path) -> ssl.SSLContext:
    """A client context trusting ``roots`` and presenting ``identity`` (if any)."""
    context = ssl.create_default_context(cafile=str(roots / "root-cert.pem"))
    context.check_hostname = False  # mesh peers are checked by SPIFFE ID, not host name
    if identity is not None:
        context.load_cert_chain(identity / "cert-chain.pem", identity / "key.pem")
    return context


def mtls(pki: Pki, identity: Path | None = None) -> httpx.Client:
    """An httpx client presenting ``identity`` (the mesh client by default)."""
    return httpx.Client(verify=tls_context(identity or pki.client, pki.server), timeout=TIMEOUT)


def plain() -> httpx.Client:
    """A plaintext httpx client."""
    return httpx.Client(timeout=TIMEOUT)


@pytest.fixture
def serve(pki: Pki) -> Iterator[Callable[..., Server]]:
    """Starts servers for the test (the echo app, the server identity) and stops them."""
    servers: list[Server] = []

    def start(policies: str | None = None, **options: object) -> Server:
        options.setdefault("identity", pki.server)
        server = Server(echo, policies=policies, namespace="shop", **options)  # type: ignore[arg-type]
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


def strict(mode: str = "STRICT") -> str:
    """A mesh-wide PeerAuthentication with ``mode``."""
    return (
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        f"metadata: {{name: default, namespace: istio-system}}\nspec: {{mtls: {{mode: {mode}}}}}\n"
    )


def eventually(check: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Whether ``check`` becomes true within ``timeout`` seconds (for another thread's log)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_mtls_client_reaches_the_app_with_its_spiffe_id(
    pki: Pki, serve: Callable[..., Server]
) -> None:
    """An ssl client with a mesh identity gets 200; the app sees its SPIFFE ID and TLS facts."""
    server = serve()
    with mtls(pki) as client:
        response = client.get(f"https://127.0.0.1:{server.port}/hello")
    assert response.status_code == 200
    tls = response.json()["tls"]
    assert tls["spiffe_id"] == CLIENT
    assert tls["client_cert_chain"] == 1
    assert tls["client_cert_name"] == ""  # Istio workload certificates have an empty subject
    assert tls["client_cert_error"] is None
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert isinstance(tls["cipher_suite"], int)
    assert tls["server_cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert response.json()["scheme"] == "https"


def test_istio_alpn_is_offered(pki: Pki, serve: Callable[..., Server]) -> None:
    """A client offering Istio's HTTP/1.1 ALPN list gets ``istio-http/1.1``."""
    server = serve()
    context = tls_context(pki.client, pki.server)
    context.set_alpn_protocols(["istio-http/1.1", "istio", "http/1.1"])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    with context.wrap_socket(raw) as tls:
        assert tls.selected_alpn_protocol() == "istio-http/1.1"


def test_strict_refuses_plaintext(pki: Pki, serve: Callable[..., Server]) -> None:
    """Under STRICT a plaintext connection is closed unanswered; mTLS still works."""
    server = serve(strict())
    with plain() as client, pytest.raises(httpx.TransportError):
        client.get(f"http://127.0.0.1:{server.port}/")
    with mtls(pki) as client:
        assert client.get(f"https://127.0.0.1:{server.port}/").status_code == 200


def test_permissive_serves_plaintext_and_mtls_on_one_port(
    pki: Pki, serve: Callable[..., Server]
) -> None:
    """With no policy (PERMISSIVE) one port serves plaintext without a peer, and mTLS with."""
    server = serve()
    with plain() as client:
        seen = client.get(f"http://127.0.0.1:{server.port}/").json()
    assert (seen["scheme"], seen["tls"]) == ("http", None)
    with mtls(pki) as client:
        assert client.get(f"https://127.0.0.1:{server.port}/").json()["tls"]["spiffe_id"] == CLIENT


def test_disable_refuses_tls(pki: Pki, serve: Callable[..., Server]) -> None:
    """Under DISABLE plaintext is served and a TLS connection is closed."""
    server = serve(strict("DISABLE"))
    with plain() as client:
        assert client.get(f"http://127.0.0.1:{server.port}/").status_code == 200
    with mtls(pki) as client, pytest.raises(httpx.TransportError):
        client.get(f"https://127.0.0.1:{server.port}/")


def test_port_level_mode_applies_to_the_listening_port(
    pki: Pki, serve: Callable[..., Server]
) -> None:
    """A workload policy's port-level STRICT for the server's port refuses plaintext there."""
    server = serve()
    server.apply(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        "metadata: {name: cart, namespace: shop}\n"
        "spec: {selector: {matchLabels: {app: cart}}, mtls: {mode: PERMISSIVE},"
        f" portLevelMtls: {{'{server.port}': {{mode: STRICT}}}}}}\n"
    )
    with plain() as client:
        assert client.get(f"http://127.0.0.1:{server.port}/").status_code == 200  # not selected
    labelled = serve(labels={"app": "cart"}, port=0)
    labelled.apply(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        "metadata: {name: cart, namespace: shop}\n"
        "spec: {selector: {matchLabels: {app: cart}}, mtls: {mode: PERMISSIVE},"
        f" portLevelMtls: {{'{labelled.port}': {{mode: STRICT}}}}}}\n"
    )
    with plain() as client, pytest.raises(httpx.TransportError):
        client.get(f"http://127.0.0.1:{labelled.port}/")


def test_client_from_another_ca_is_refused_at_the_handshake(
    pki: Pki, serve: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    """A client certificate the mesh roots do not verify fails the handshake."""
    server = serve()
    with caplog.at_level(logging.INFO, logger="meshlib.server"):
        with mtls(pki, pki.foreign) as client, pytest.raises(httpx.TransportError):
            client.get(f"https://127.0.0.1:{server.port}/")
        assert eventually(lambda: "certificate verify failed" in caplog.text)


def test_client_without_a_certificate_is_refused(pki: Pki, serve: Callable[..., Server]) -> None:
    """mTLS means a client certificate: a TLS client without one is refused."""
    server = serve()
    context = tls_context(None, pki.server)
    with (
        httpx.Client(verify=context, timeout=TIMEOUT) as client,
        pytest.raises(httpx.TransportError),
    ):
        client.get(f"https://127.0.0.1:{server.port}/")


def test_peer_from_another_trust_domain_is_refused(
    pki: Pki, serve: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    """A certificate the roots verify, for another trust domain, is refused after the handshake."""
    server = serve()
    with caplog.at_level(logging.INFO, logger="meshlib.server"):
        with mtls(pki, pki.other_domain) as client, pytest.raises(httpx.TransportError):
            client.get(f"https://127.0.0.1:{server.port}/")
        assert eventually(lambda: "is not in trust domain cluster.local" in caplog.text)


def test_deny_policy_answers_403_and_audits(
    pki: Pki, serve: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    """A DENY policy answers ``403 RBAC: access denied`` and writes an audit record."""
    server = serve(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: no-admin, namespace: shop}\n"
        "spec: {action: DENY, rules: [{to: [{operation: {paths: [/admin*]}}]}]}\n"
    )
    with caplog.at_level(logging.INFO, logger="meshlib.audit"), mtls(pki) as client:
        response = client.get(f"https://127.0.0.1:{server.port}/admin/users")
        assert client.get(f"https://127.0.0.1:{server.port}/shop").status_code == 200
    assert (response.status_code, response.text) == (403, "RBAC: access denied")
    assert response.headers["content-type"] == "text/plain"
    [record] = [r for r in caplog.records if r.name == "meshlib.audit"]
    assert record.audit["decision"] == "DENY"  # type: ignore[attr-defined]
    assert record.audit["policy"] == "shop/no-admin"  # type: ignore[attr-defined]
    assert record.audit["principal"] == CLIENT  # type: ignore[attr-defined]
    assert record.audit["path"] == "/admin/users"  # type: ignore[attr-defined]


def test_principals_are_checked_against_the_peer_certificate(
    pki: Pki, serve: Callable[..., Server]
) -> None:
    """An ALLOW rule on principals lets the named peer in and keeps other peers out."""
    server = serve(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: only-client, namespace: shop}\n"
        "spec: {rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/client]}}]}]}\n"
    )
    url = f"https://127.0.0.1:{server.port}/"
    with mtls(pki) as client:
        assert client.get(url).status_code == 200
    with mtls(pki, pki.frontend) as client:
        assert client.get(url).status_code == 403
    with plain() as client:
        assert client.get(f"http://127.0.0.1:{server.port}/").status_code == 403


def test_keep_alive_and_request_bodies(pki: Pki, serve: Callable[..., Server]) -> None:
    """Several requests with bodies share one connection, each body reaching the app."""
    server = serve()
    url = f"https://127.0.0.1:{server.port}/echo"
    with mtls(pki) as client:
        first = client.post(url, content=b"one").json()
        second = client.post(url, content=iter([b"tw", b"o"])).json()  # chunked
    assert (first["body"], second["body"]) == ("one", "two")
    assert first["client_port"] == second["client_port"]


def test_a_failing_app_answers_500(pki: Pki) -> None:
    """An application that raises before responding gets the client a 500, not a hang."""

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    with Server(broken, identity=pki.server) as server, plain() as client:
        assert client.get(f"http://127.0.0.1:{server.port}/").status_code == 500


def test_rotation_applies_to_new_connections(
    pki: Pki, ca: Path, tmp_path: Path, serve: Callable[..., Server]
) -> None:
    """A rotated identity serves new connections; open ones keep the old certificate."""
    directory = tmp_path / "rotating"
    issue(ca, "spiffe://cluster.local/ns/shop/sa/cart", directory)
    source = IdentitySource(directory, poll=0.02, debounce=0.0)
    server = serve(identity=source)
    url = f"https://127.0.0.1:{server.port}/"
    with mtls(pki) as old:
        before = old.get(url).json()["tls"]["server_cert"]
        issue(ca, "spiffe://cluster.local/ns/shop/sa/cart", directory)
        assert eventually(lambda: source.current() is not None and source.generation == 1)
        with mtls(pki) as new:
            after = new.get(url).json()["tls"]["server_cert"]
        assert old.get(url).json()["tls"]["server_cert"] == before  # same connection
    assert before != after
    assert server.contexts.built == 2


def test_trio_backend(pki: Pki, serve: Callable[..., Server]) -> None:
    """The listener runs on trio as well as asyncio."""
    server = serve(backend="trio")
    with mtls(pki) as client:
        assert client.get(f"https://127.0.0.1:{server.port}/").json()["tls"]["spiffe_id"] == CLIENT


def test_serve_forever_in_a_running_loop(pki: Pki) -> None:
    """``serve_forever`` serves inside an event loop the caller runs, until cancelled."""

    async def main() -> int:
        server = Server(echo, identity=pki.server)
        async with anyio.create_task_group() as group:
            port = await group.start(server.serve_forever)
            context = tls_context(pki.client, pki.server)
            async with httpx.AsyncClient(verify=context, timeout=TIMEOUT) as client:
                response = await client.get(f"https://127.0.0.1:{port}/")
            group.cancel_scope.cancel()
        return response.status_code

    assert anyio.run(main) == 200


def test_server_ssl_context_is_istio_strict(pki: Pki) -> None:
    """``server_ssl_context`` (for other servers) requires a client certificate from the roots."""
    context = server_ssl_context(Identity.from_directory(pki.server))
    assert uri_sans(handshake(context, tls_context(pki.client, pki.server)).server_saw) == [CLIENT]
    with pytest.raises((ssl.SSLError, OSError)):
        handshake(context, tls_context(None, pki.server))
