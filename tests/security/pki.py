"""Helpers for the identity tests: a TLS handshake on loopback, file replacement as
istio-agent does it, and a clock the test moves by hand."""

from __future__ import annotations

import os
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshlib import Identity

#: How long any one socket operation of a handshake may take before the test fails.
TIMEOUT = 5.0


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def replace(path: Path, data: bytes) -> None:
    """Write ``data`` beside ``path`` and rename it over ``path``, as istio-agent does."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def key_matches(identity: Identity) -> bool:
    """Whether the identity's key belongs to its leaf certificate, checked independently."""
    leaf = x509.load_pem_x509_certificates(identity.cert_chain_pem)[0]
    key = serialization.load_pem_private_key(identity.key_pem, password=None)
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(
        key.public_key().public_bytes(der, spki) == leaf.public_key().public_bytes(der, spki)
    )


def context(identity: Identity, directory: Path, *, server: bool) -> ssl.SSLContext:
    """A context as ``ssl.create_default_context`` makes it, presenting ``identity`` (whose
    files are in ``directory``) and requiring and verifying the peer's certificate against
    the identity's roots, with OpenSSL's strict X.509 checks, without hostname checks
    (mesh peers are checked by SPIFFE ID, not host name)."""
    purpose = ssl.Purpose.CLIENT_AUTH if server else ssl.Purpose.SERVER_AUTH
    ctx = ssl.create_default_context(purpose, cadata=identity.roots_pem.decode())
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    if hasattr(ssl, "VERIFY_X509_STRICT"):
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_cert_chain(directory / "cert-chain.pem", directory / "key.pem")
    return ctx


@dataclass
class Handshake:
    """What each side of a loopback handshake saw."""

    client_saw: dict[str, Any] = field(default_factory=dict)
    server_saw: dict[str, Any] = field(default_factory=dict)
    server_error: BaseException | None = None


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> Handshake:
    """A TLS handshake over 127.0.0.1, then one byte from the server (so that a client
    certificate the server rejects fails the client too, under TLS 1.3)."""
    result = Handshake()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)

        def serve() -> None:
            try:
                connection, _ = listener.accept()
                connection.settimeout(TIMEOUT)
                with server.wrap_socket(connection, server_side=True) as tls:
                    result.server_saw = tls.getpeercert() or {}
                    tls.sendall(b"!")
            except (OSError, ssl.SSLError) as error:
                result.server_error = error

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with (
                socket.create_connection(listener.getsockname(), timeout=TIMEOUT) as raw,
                client.wrap_socket(raw) as tls,
            ):
                result.client_saw = tls.getpeercert() or {}
                assert tls.recv(1) == b"!"
        finally:
            thread.join(TIMEOUT)
    return result


def uri_sans(seen: dict[str, Any]) -> list[str]:
    """The URI SANs of a certificate as ``SSLSocket.getpeercert`` reports it."""
    return [value for kind, value in seen.get("subjectAltName", ()) if kind == "URI"]
