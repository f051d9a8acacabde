"""TLS origination on the wire: what an Istio sidecar's server side would see, and refusals.

A plain Python ``ssl`` server on loopback records the SNI it was asked for, the ALPN it
negotiated (from a preference list starting with ``istio-peer-exchange``, so choosing
``istio-http/1.1`` proves the client never offered it) and the client's certificate.
Every scenario runs through the sync shell and the async shell on asyncio and trio.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from meshlib import Identity, Mesh
from meshlib._ca import issue
from tests.security.pki import uri_sans
from tests.transports.shells import SHELLS, Sent, Shell

CLIENT = "spiffe://cluster.local/ns/default/sa/productpage"
REVIEWS = "spiffe://cluster.local/ns/default/sa/reviews"
URL = "http://reviews:9080/reviews/0"
SERVER_ALPN = ["istio-peer-exchange", "istio-http/1.1", "http/1.1"]


@pytest.fixture(params=SHELLS, ids=lambda shell: shell.name)
def shell(request: pytest.FixtureRequest) -> Shell:
    """The shell a scenario runs through."""
    chosen: Shell = request.param
    return chosen


@dataclass
class Seen:
    """What the TLS server saw of each connection."""

    sni: list[str | None] = field(default_factory=list)
    alpn: list[str | None] = field(default_factory=list)
    client_sans: list[list[str]] = field(default_factory=list)
    serials: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, seen: Seen) -> None:
        self.context, self.seen = context, seen

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: object) -> None:
                """Quiet."""

        super().__init__(("127.0.0.1", 0), Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        raw, address = super().get_request()
        raw.settimeout(5)
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError) as error:
            self.seen.errors.append(error)
            raw.close()
            raise
        self.seen.alpn.append(tls.selected_alpn_protocol())
        peer = tls.getpeercert() or {}
        self.seen.client_sans.append(uri_sans(peer))
        self.seen.serials.append(str(peer.get("serialNumber")))
        return tls, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Handshake failures are recorded, not printed."""


@contextlib.contextmanager
def tls_server(
    identity: Identity, directory: Path, *, trust: bytes | None = None
) -> Iterator[tuple[int, Seen]]:
    """A TLS server on 127.0.0.1 with ``identity``, requiring a client certificate from
    ``trust`` (default: the identity's own roots)."""
    seen = Seen()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "chain.pem").write_bytes(identity.cert_chain_pem)
    (directory / "key.pem").write_bytes(identity.key_pem)
    context.load_cert_chain(directory / "chain.pem", directory / "key.pem")
    context.load_verify_locations(cadata=(trust or identity.roots_pem).decode())
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(SERVER_ALPN)
    context.sni_callback = lambda _sock, name, _ctx: seen.sni.append(name)
    server = _TLSServer(context, seen)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def mesh_for(
    port: int,
    client: Path | None,
    *,
    tls: str = "",
    service_account: str = "reviews",
    extra: str = "",
) -> Mesh:
    """reviews (subset v1) at ``port`` on 127.0.0.1, MESH_INTERNAL, with a service
    account; ``tls`` is the DestinationRule's tls block (flow YAML), if any."""
    dr_tls = f"\n  trafficPolicy: {{tls: {tls}}}" if tls else ""
    account = f", serviceAccount: {service_account}" if service_account else ""
    yaml = f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews}}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}, labels: {{version: v1}}{account}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http: [{{route: [{{destination: {{host: reviews, subset: v1}}}}]}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec:
  host: reviews{dr_tls}
  subsets: [{{name: v1, labels: {{version: v1}}}}]
{extra}"""
    return Mesh.from_yaml(yaml, identity=client, seed=1)


@pytest.fixture(scope="module")
def identities(
    tmp_path_factory: pytest.TempPathFactory, ca: Path, other_ca: Path
) -> dict[str, Path]:
    """Folders in Istio's layout: the client, the right server, a server with another
    SPIFFE ID, an expired server, and a server from another CA."""
    made = {}
    for name, spiffe, authority, extra in (
        ("client", CLIENT, ca, {}),
        ("reviews", REVIEWS, ca, {}),
        ("ratings", "spiffe://cluster.local/ns/default/sa/ratings", ca, {}),
        ("expired", REVIEWS, ca, {"not_after": datetime.now(timezone.utc) - timedelta(days=1)}),
        ("foreign", REVIEWS, other_ca, {}),
    ):
        folder = tmp_path_factory.mktemp(name)
        issue(authority, spiffe, folder, **extra)  # type: ignore[arg-type]
        made[name] = folder
    return made


def test_istio_mutual_on_the_wire(
    shell: Shell, identities: dict[str, Path], tmp_path: Path
) -> None:
    """ISTIO_MUTUAL: SNI outbound_.9080_.v1_.<fqdn>, ALPN istio-http/1.1 (never
    istio-peer-exchange), the client's SPIFFE ID, and a 200."""
    server = Identity.from_directory(identities["reviews"])
    with tls_server(server, tmp_path) as (port, seen):
        mesh = mesh_for(port, identities["client"], tls="{mode: ISTIO_MUTUAL}")
        (got,) = shell.send(mesh, [Sent(URL)])
    assert got.status == 200, got
    assert seen.sni == ["outbound_.9080_.v1_.reviews.default.svc.cluster.local"]
    assert seen.alpn == ["istio-http/1.1"]
    assert seen.client_sans == [[CLIENT]]


def test_kept_alive_mtls_connections_are_reused(
    shell: Shell, identities: dict[str, Path], tmp_path: Path
) -> None:
    """Five requests in a row over ISTIO_MUTUAL make one handshake: the connection is
    kept alive and found fit for reuse (TLS 1.3's session tickets notwithstanding)."""
    server = Identity.from_directory(identities["reviews"])
    with tls_server(server, tmp_path) as (port, seen):
        mesh = mesh_for(port, identities["client"], tls="{mode: ISTIO_MUTUAL}")
        results = shell.send(mesh, [Sent(URL)] * 5)
    assert [r.status for r in results] == [200] * 5
    assert len(seen.alpn) == 1


def test_auto_mtls_for_endpoints_with_an_identity(
    shell: Shell, identities: dict[str, Path], tmp_path: Path
) -> None:
    """No tls anywhere, MESH_INTERNAL, an endpoint with a service account: auto-mTLS
    (Istio's SNI and ALPN); the peer is checked against the endpoint's SPIFFE ID."""
    server = Identity.from_directory(identities["reviews"])
    with tls_server(server, tmp_path) as (port, seen):
        (got,) = shell.send(mesh_for(port, identities["client"]), [Sent(URL)])
    assert got.status == 200
    assert seen.alpn == ["istio-http/1.1"]
    assert got.info is not None


def test_no_auto_mtls_without_an_identity_or_when_disabled(identities: dict[str, Path]) -> None:
    """Auto-mTLS needs a workload identity, an endpoint that takes mTLS, and no
    PeerAuthentication DISABLE for the namespace: otherwise the attempt is plaintext."""
    from tests.core.drive import drive

    def scheme(mesh: Mesh) -> str:
        return drive(mesh, URL).sends[0].scheme

    assert scheme(mesh_for(9999, identities["client"])) == "https"
    assert scheme(mesh_for(9999, None)) == "http"
    assert scheme(mesh_for(9999, identities["client"], service_account="")) == "http"
    disabled = (
        "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        "metadata: {name: plaintext, namespace: default}\nspec: {mtls: {mode: DISABLE}}\n"
    )
    assert scheme(mesh_for(9999, identities["client"], extra=disabled)) == "http"


@pytest.mark.parametrize("server_name", ["ratings", "expired", "foreign"])
def test_a_server_the_client_rejects_is_a_connect_failure(
    shell: Shell, identities: dict[str, Path], tmp_path: Path, server_name: str
) -> None:
    """The wrong SPIFFE ID, an expired certificate or another CA: 503 UF (retried under
    connect-failure), with the TLS error as the transport failure reason."""
    server = Identity.from_directory(identities[server_name])
    trust = Identity.from_directory(identities["client"]).roots_pem
    with tls_server(server, tmp_path, trust=trust) as (port, _):
        mesh = mesh_for(port, identities["client"], tls="{mode: ISTIO_MUTUAL}")
        (got,) = shell.send(mesh, [Sent(URL)])
    assert got.status == 503
    assert got.info is not None
    assert got.info.flags == ("UF", "URX")
    assert "transport failure reason: TLS_error:|" in got.text
    assert "CERTIFICATE_VERIFY_FAILED" in got.text


def test_a_server_that_rejects_the_client_is_a_connect_failure(
    shell: Shell, identities: dict[str, Path], tmp_path: Path
) -> None:
    """Under TLS 1.3 the server refuses the client's certificate after the client's
    handshake is over: as with Envoy, the request ends in a connection termination (UC,
    not retried by Istio's default policy)."""
    server = Identity.from_directory(identities["reviews"])
    stranger = Identity.from_directory(identities["foreign"]).roots_pem  # trusts another CA
    with tls_server(server, tmp_path, trust=stranger) as (port, seen):
        mesh = mesh_for(port, identities["client"], tls="{mode: ISTIO_MUTUAL}")
        (got,) = shell.send(mesh, [Sent(URL)])
    assert got.status == 503
    assert got.info is not None
    assert (got.info.flags, got.info.attempts) == (("UC",), 1)
    assert "reset reason: connection termination" in got.text
    assert seen.errors  # the server refused the handshake


def test_simple_tls_checks_the_configured_san(
    shell: Shell, identities: dict[str, Path], tmp_path: Path
) -> None:
    """SIMPLE with caCertificates and subjectAltNames: the server's URI SAN must be one
    of them; without subjectAltNames the SNI (the host called) must match, which a
    SPIFFE-only certificate does not."""
    server = Identity.from_directory(identities["reviews"])
    root = identities["reviews"] / "root-cert.pem"
    with tls_server(server, tmp_path, trust=server.roots_pem) as (port, seen):
        client = identities["client"]
        ok = mesh_for(
            port,
            client,
            tls=f"{{mode: MUTUAL, caCertificates: {root}, clientCertificate: "
            f"{client / 'cert-chain.pem'}, privateKey: {client / 'key.pem'},"
            f" subjectAltNames: ['{REVIEWS}']}}",
        )
        (good,) = shell.send(ok, [Sent(URL)])
        hostname = mesh_for(port, None, tls=f"{{mode: SIMPLE, caCertificates: {root}}}")
        (bad,) = shell.send(hostname, [Sent(URL)])
    assert good.status == 200
    assert seen.sni[0] == "reviews"
    assert bad.status == 503
    assert "TLS_error:|" in bad.text


def test_istio_mutual_without_an_identity_fails_to_connect(shell: Shell) -> None:
    """ISTIO_MUTUAL with no workload identity: 503 UF, saying why."""
    mesh = mesh_for(9, None, tls="{mode: ISTIO_MUTUAL}")
    (got,) = shell.send(mesh, [Sent(URL)])
    assert got.status == 503
    assert "no workload identity" in got.text


def test_contexts_are_built_once_not_per_request(
    identities: dict[str, Path], tmp_path: Path
) -> None:
    """Twenty requests over ISTIO_MUTUAL build one SSL context."""
    server = Identity.from_directory(identities["reviews"])
    with tls_server(server, tmp_path) as (port, _):
        mesh = mesh_for(port, identities["client"], tls="{mode: ISTIO_MUTUAL}")
        results = SHELLS[0].send(mesh, [Sent(URL)] * 20)
    assert [r.status for r in results] == [200] * 20
    assert mesh.tls_contexts.built == 1


def test_rotation_while_requests_run(
    ca: Path, tmp_path: Path, identities: dict[str, Path]
) -> None:
    """The client's certificate is rotated as istio-agent does it (key, then chain, then
    root, each renamed into place, with pauses) while requests keep going: none fails,
    and new connections present the new certificate."""
    from meshlib import IdentitySource
    from tests.security.pki import replace

    live = tmp_path / "live"
    issue(ca, CLIENT, live)
    source = IdentitySource(live, poll=0.02, debounce=0.05)
    server = Identity.from_directory(identities["reviews"])
    failures: list[int] = []
    with tls_server(server, tmp_path / "server") as (port, seen):
        mesh = mesh_for(port, None, tls="{mode: ISTIO_MUTUAL}")
        mesh = Mesh(mesh.resources, identity=source, seed=1)
        stop = threading.Event()

        def keep_calling() -> None:
            import httpx

            with httpx.Client(transport=mesh.transport()) as client:
                while not stop.is_set():
                    status = client.get(URL).status_code
                    if status != 200:
                        failures.append(status)

        caller = threading.Thread(target=keep_calling)
        caller.start()
        try:
            time.sleep(0.1)
            fresh = tmp_path / "fresh"
            issue(ca, CLIENT, fresh)
            for name in ("key.pem", "cert-chain.pem", "root-cert.pem"):
                replace(live / name, (fresh / name).read_bytes())
                time.sleep(0.03)
            time.sleep(0.25)
        finally:
            stop.set()
            caller.join(5)
    assert failures == []
    assert source.generation == 1
    first, last = seen.serials[0], seen.serials[-1]
    assert first != last  # a new connection, with the new certificate
    assert set(seen.serials) == {first, last}
