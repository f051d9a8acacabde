"""TLS for the inner transports: SSL contexts per TLS material, and the peer check.

Contexts are built lazily, once per TLS material (mode, roots, client certificate or
workload identity, ALPN), never per request; an identity rotation is new material, hence
a new context (and new connections), while the old one stays untouched for the
connections that use it. SNI and the acceptable peer SANs are per connection: SNI goes
in the request's ``sni_hostname`` extension; the SANs are checked right after the
handshake by the network backend meshlib gives its inner transports (see
:mod:`._deadline`), through :func:`expecting`.

httpcore sets ALPN on the context it is given for every connection it opens; Istio's
ALPN (``istio-http/1.1, istio, http/1.1``) must stay, so ``ISTIO_MUTUAL`` contexts ignore
that call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from meshlib._core._tls_policy import TlsTarget

if TYPE_CHECKING:
    from meshlib._identity import Identity

__all__ = ["PeerRejected", "TlsContexts", "expecting", "verify_peer"]

logger = logging.getLogger("meshlib.tls")


class PeerRejected(ssl.SSLError):
    """The peer's certificate is valid but names none of the acceptable identities."""


class _PinnedAlpnContext(ssl.SSLContext):
    """An SSL context whose ALPN list is fixed at construction."""

    def set_alpn_protocols(self, alpn_protocols: Any) -> None:
        """Ignored: Istio's ALPN list was set when the context was built."""

    def pin_alpn(self, protocols: Sequence[str]) -> None:
        super().set_alpn_protocols(list(protocols))


class TlsContexts:
    """The SSL contexts of one mesh, keyed by TLS material. Thread-safe."""

    def __init__(self) -> None:
        self._contexts: dict[tuple[object, ...], ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self.built = 0  # contexts built so far: once per material, never per request

    def context_for(self, target: TlsTarget, identity: Identity | None) -> ssl.SSLContext:
        """The context for ``target`` (with ``identity`` for ``ISTIO_MUTUAL``).

        Raises:
            ssl.SSLError: ``ISTIO_MUTUAL`` without a workload identity.
        """
        if target.uses_identity and identity is None:
            raise ssl.SSLError("no workload identity for ISTIO_MUTUAL (Mesh(identity=...))")
        material = identity.material_key() if target.uses_identity and identity else b""
        key = (
            target.mode,
            target.ca_file,
            target.cert_file,
            target.key_file,
            target.insecure,
            target.check_hostname,
            target.alpn,
            material,
        )
        context = self._contexts.get(key)
        if context is None:
            with self._lock:
                context = self._contexts.get(key)
                if context is None:
                    context = self._contexts[key] = self._build(target, identity)
                    self.built += 1
        return context

    def _build(self, target: TlsTarget, identity: Identity | None) -> ssl.SSLContext:
        if target.uses_identity:
            assert identity is not None  # checked by context_for
            return _istio_context(identity, target.alpn)
        context = ssl.create_default_context(cafile=target.ca_file or None)
        if target.insecure:
            logger.warning(
                "insecureSkipVerify: the server's certificate is not verified (SNI %s)",
                target.sni,
            )
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context.check_hostname = target.check_hostname
        if target.cert_file:
            context.load_cert_chain(target.cert_file, target.key_file or None)
        return context


def _istio_context(identity: Identity, alpn: Sequence[str]) -> ssl.SSLContext:
    """Istio mutual TLS: the identity's certificate, its roots, no host-name check (the
    peer is checked by SPIFFE ID), TLS 1.2 or later, Istio's ALPN pinned."""
    context = _PinnedAlpnContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=identity.roots_pem.decode("ascii"))
    with _pem_files(identity.cert_chain_pem, identity.key_pem) as (chain, key):
        context.load_cert_chain(chain, key)
    context.pin_alpn(alpn)
    return context


@contextlib.contextmanager
def _pem_files(chain: bytes, key: bytes) -> Iterator[tuple[str, str]]:
    """The identity as files for ``load_cert_chain`` (which reads only files), private to
    this process and removed at once."""
    with tempfile.TemporaryDirectory(prefix="meshlib-") as directory:
        paths = (os.path.join(directory, "chain.pem"), os.path.join(directory, "key.pem"))
        for path, data in zip(paths, (chain, key), strict=True):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
        yield paths


_EXPECTED: ContextVar[TlsTarget | None] = ContextVar("meshlib_tls_peer", default=None)


class expecting:  # noqa: N801 - used as a context manager, like contextlib's
    """Connections opened in this context must meet ``target``'s peer check (None: no
    check; cheap, since most attempts are plaintext)."""

    __slots__ = ("_target", "_token")

    def __init__(self, target: TlsTarget | None) -> None:
        self._target = target
        self._token: Token[TlsTarget | None] | None = None

    def __enter__(self) -> None:
        if self._target is not None or _EXPECTED.get() is not None:
            self._token = _EXPECTED.set(self._target)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _EXPECTED.reset(self._token)


def verify_peer(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> None:
    """Check the peer of a connection just opened against the acceptable SANs.

    Raises:
        PeerRejected: the certificate names none of them.
    """
    target = _EXPECTED.get()
    if target is None or target.insecure or not target.verify_sans or ssl_object is None:
        return
    certificate: dict[str, Any] = dict(ssl_object.getpeercert() or {})
    names: list[tuple[str, str]] = list(certificate.get("subjectAltName", ()))
    if target.uses_identity:
        presented = [value for kind, value in names if kind == "URI"]
        if any(uri in target.verify_sans for uri in presented):
            return
    elif any(_san_matches(kind, value, target.verify_sans) for kind, value in names):
        return
    shown = ", ".join(f"{kind}:{value}" for kind, value in names) or "none"
    raise PeerRejected(
        f"CERTIFICATE_VERIFY_FAILED: peer SANs ({shown}) match none of "
        f"{', '.join(target.verify_sans)}"
    )


def _san_matches(kind: str, value: str, acceptable: Sequence[str]) -> bool:
    """Envoy's SAN matching: exact, and a certificate's ``*.`` DNS name covers one label."""
    if kind in ("URI", "IP Address"):
        return value in acceptable
    if kind != "DNS":
        return False
    name = value.lower()
    for wanted in acceptable:
        wanted = wanted.lower()
        if name == wanted:
            return True
        if name.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == name[2:]:
            return True
    return False
