"""The server side of Istio mTLS: SSL contexts from a workload identity, and the peer.

A server context presents the identity's chain and key, asks every client for a
certificate and verifies it against the identity's roots (Istio's inbound mTLS filter
chain: ``require_client_certificate``), speaks TLS 1.2 and 1.3, and offers the ALPN
protocols Istio's clients send for HTTP/1.1 (``istio-http/1.1``, ``istio``,
``http/1.1``). A verified peer must still carry a ``spiffe://`` URI SAN in an accepted
trust domain: the identity's own, or one its roots name (a ``spiffe://`` URI SAN, or the
``O=`` of the subject, where Istio's CA writes the trust domain).

Python's ``ssl`` loads a certificate and key only from files, so building a context
writes them to a private temporary directory (mode 0700, files 0600) and removes it at
once. Contexts are cached per identity (:class:`ContextCache`): one per rotation, never
one per connection.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from meshlib._identity import Identity, IdentitySource
from meshlib.server._matchers import SPIFFE_PREFIX, trust_domain_of

__all__ = [
    "ALPN_PROTOCOLS",
    "ContextCache",
    "TlsMaterial",
    "peer_spiffe_id",
    "server_ssl_context",
    "spiffe_id_of_pem",
]

#: What the server offers in ALPN: Istio's HTTP/1.1 protocols (no HTTP/2).
ALPN_PROTOCOLS = ("istio-http/1.1", "istio", "http/1.1")

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def server_ssl_context(identity: Identity) -> ssl.SSLContext:
    """A server-side :class:`ssl.SSLContext` for ``identity``: Istio's STRICT mTLS.

    It presents ``identity``'s certificate chain, requires a client certificate signed by
    its roots (``CERT_REQUIRED``), allows TLS 1.2 and 1.3 and offers Istio's HTTP/1.1
    ALPN. Give it to any server that takes an ``ssl.SSLContext``; note that such a
    server does not check the peer's trust domain and, unless it implements the ASGI TLS
    extension, does not tell the application who the peer is.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=identity.roots_pem.decode("ascii"))
    _load_chain(context, identity)
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))
    return context


def _load_chain(context: ssl.SSLContext, identity: Identity) -> None:
    with tempfile.TemporaryDirectory(prefix="meshlib-identity-") as folder:
        chain, key = Path(folder) / "cert-chain.pem", Path(folder) / "key.pem"
        for path, data in ((chain, identity.cert_chain_pem), (key, identity.key_pem)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
        context.load_cert_chain(chain, key)


def _trust_domains(identity: Identity) -> frozenset[str]:
    """The identity's trust domain and those its roots name."""
    domains = {identity.trust_domain}
    for root in x509.load_pem_x509_certificates(identity.roots_pem):
        for attribute in root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME):
            if isinstance(attribute.value, str) and attribute.value:
                domains.add(attribute.value)
        for uri in _uri_sans(root):
            domain = trust_domain_of(uri)
            if domain:
                domains.add(domain)
    return frozenset(domains)


def _uri_sans(certificate: x509.Certificate) -> list[str]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return names.value.get_values_for_type(x509.UniformResourceIdentifier)


def spiffe_id_of_pem(pem: str) -> str | None:
    """The first ``spiffe://`` URI SAN of a PEM certificate, or ``None``."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        return None
    return next((uri for uri in _uri_sans(certificate) if uri.startswith(SPIFFE_PREFIX)), None)


def peer_spiffe_id(peer: Mapping[str, Any]) -> str | None:
    """The first ``spiffe://`` URI SAN of a verified peer (``SSLObject.getpeercert()``)."""
    for kind, value in peer.get("subjectAltName", ()):
        if kind == "URI" and isinstance(value, str) and value.startswith(SPIFFE_PREFIX):
            return value
    return None


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """One identity made ready to serve: its context and what the TLS extension reports."""

    identity: Identity
    context: ssl.SSLContext
    server_cert_pem: str
    trust_domains: frozenset[str]
    cipher_ids: Mapping[str, int]

    @classmethod
    def build(cls, identity: Identity) -> TlsMaterial:
        """Build the context and the facts derived from ``identity``."""
        context = server_ssl_context(identity)
        leaf = x509.load_pem_x509_certificates(identity.cert_chain_pem)[0]
        pem = leaf.public_bytes(serialization.Encoding.PEM).decode("ascii")
        ciphers = {cipher["name"]: cipher["id"] & 0xFFFF for cipher in context.get_ciphers()}
        return cls(identity, context, pem, _trust_domains(identity), ciphers)

    def tls_extension(self, ssl_object: ssl.SSLObject) -> dict[str, Any]:
        """``scope["extensions"]["tls"]`` for a connection (ASGI TLS extension), plus
        ``spiffe_id``: the peer's SPIFFE ID."""
        peer_der = ssl_object.getpeercert(binary_form=True)
        chain_of = getattr(ssl_object, "get_unverified_chain", None)  # Python 3.13+
        sent = list(chain_of() or ()) if chain_of else []
        ders = [item for item in sent if isinstance(item, bytes)]
        if peer_der and (not ders or ders[0] != peer_der):
            ders.insert(0, peer_der)  # OpenSSL leaves the leaf out on the server side
        cipher = ssl_object.cipher()
        return {
            "server_cert": self.server_cert_pem,
            "client_cert_chain": tuple(ssl.DER_cert_to_PEM_cert(der) for der in ders),
            "client_cert_name": _subject(peer_der) if peer_der else None,
            "client_cert_error": None,
            "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
            "cipher_suite": self.cipher_ids.get(cipher[0]) if cipher else None,
            "spiffe_id": peer_spiffe_id(ssl_object.getpeercert() or {}),
        }


def _subject(der: bytes) -> str:
    """The peer's subject as an RFC 4514 string (empty for Istio workload certificates)."""
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


class ContextCache:
    """The material of an identity source's current identity, rebuilt on each rotation."""

    def __init__(self, source: IdentitySource) -> None:
        self.source = source
        self._material: TlsMaterial | None = None
        self.built = 0  # how many contexts were built: one per identity

    def current(self) -> TlsMaterial:
        """The material for new connections (the source's current identity)."""
        identity = self.source.current()
        material = self._material
        if material is None or material.identity is not identity:
            material = self._material = TlsMaterial.build(identity)
            self.built += 1
        return material
