"""Workload identity: the SPIFFE certificate, key and roots a mesh client presents and trusts.

Istio gives every workload an X.509 certificate whose only identity is one URI SAN,
``spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`` (Istio's
``pkg/spiffe``), signed by the mesh CA, with a 24 h lifetime by default. When the
credentials are written to files rather than served over SDS, Istio uses one layout in
every place it writes them:

* ``cert-chain.pem``: the leaf certificate, then any intermediates;
* ``key.pem``: the leaf's private key;
* ``root-cert.pem``: the mesh's root certificate(s), the trust anchors for peers.

:class:`Identity` is one immutable snapshot of those three files, checked once when it
is made. :class:`IdentitySource` hands a mesh its current identity and follows
istio-agent's rotations of a directory without ever handing out a half-written one.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)

__all__ = [
    "CERT_CHAIN_FILE",
    "FILES",
    "KEY_FILE",
    "ROOT_CERT_FILE",
    "Identity",
    "IdentityError",
    "IdentitySource",
    "parse_spiffe_id",
]

CERT_CHAIN_FILE = "cert-chain.pem"
KEY_FILE = "key.pem"
ROOT_CERT_FILE = "root-cert.pem"
#: The three files, in the order istio-agent replaces them on a rotation.
FILES = (KEY_FILE, CERT_CHAIN_FILE, ROOT_CERT_FILE)

_SPIFFE_SCHEME = "spiffe://"


class IdentityError(ValueError):
    """Credentials that cannot serve as a workload identity: a key that does not belong to
    the certificate, a certificate without exactly one SPIFFE ID, a missing file."""


def parse_spiffe_id(spiffe_id: str) -> tuple[str, str, str]:
    """``(trust_domain, namespace, service_account)`` of an Istio SPIFFE ID.

    Istio (``pkg/spiffe`` ``ParseIdentity``) accepts exactly
    ``spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>``: five segments after
    the scheme with the literal ``ns`` and ``sa`` markers. Empty segments are refused too.
    """
    if not spiffe_id.startswith(_SPIFFE_SCHEME):
        raise IdentityError(f"{spiffe_id!r} is not a SPIFFE ID: it must start with spiffe://")
    segments = spiffe_id[len(_SPIFFE_SCHEME) :].split("/")
    if (
        len(segments) != 5
        or segments[1] != "ns"
        or segments[3] != "sa"
        or not all(segments)
        or any(c.isspace() for c in spiffe_id)
    ):
        raise IdentityError(
            f"{spiffe_id!r} is not an Istio SPIFFE ID: expected "
            "spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>"
        )
    return segments[0], segments[2], segments[4]


@dataclass(frozen=True)
class Identity:
    """One workload identity, as Istio lays it out in ``cert-chain.pem``, ``key.pem`` and
    ``root-cert.pem``.

    Make it with :meth:`from_pem` or :meth:`from_directory`, which check that the key
    belongs to the leaf certificate and that the leaf carries exactly one SPIFFE ID. It
    never changes; a rotation is a new ``Identity``. The PEM fields are left out of the
    ``repr`` so that a log line never carries the private key.
    """

    #: The leaf certificate first, then intermediates (Istio's ``cert-chain.pem``).
    cert_chain_pem: bytes = field(repr=False)
    #: The leaf's private key: PKCS#8, or PKCS#1 (RSA) / SEC1 (EC).
    key_pem: bytes = field(repr=False)
    #: One or more root certificates: the trust anchors for peers (a bundle while a
    #: mesh's root is being rotated).
    roots_pem: bytes = field(repr=False)
    #: The leaf's URI SAN, ``spiffe://cluster.local/ns/default/sa/reviews``.
    spiffe_id: str
    #: When the leaf expires (timezone-aware, UTC).
    not_after: datetime

    def __post_init__(self) -> None:
        parse_spiffe_id(self.spiffe_id)

    @property
    def trust_domain(self) -> str:
        """The SPIFFE ID's trust domain: ``cluster.local`` by default in Istio."""
        return parse_spiffe_id(self.spiffe_id)[0]

    @property
    def namespace(self) -> str:
        """The workload's Kubernetes namespace, from the SPIFFE ID."""
        return parse_spiffe_id(self.spiffe_id)[1]

    @property
    def service_account(self) -> str:
        """The workload's service account, from the SPIFFE ID."""
        return parse_spiffe_id(self.spiffe_id)[2]

    @classmethod
    def from_pem(cls, cert_chain: bytes, key: bytes, roots: bytes) -> Identity:
        """An identity from PEM bytes, checked.

        Raises :class:`IdentityError` when the chain or roots hold no certificate, the key
        cannot be read (encrypted keys are not supported; Istio writes them in the clear),
        the key does not match the leaf's public key, or the leaf does not carry exactly
        one ``spiffe://`` URI SAN in Istio's form.
        """
        chain = _certificates(cert_chain, "certificate chain")
        _certificates(roots, "roots")
        leaf = chain[0]
        if _public_der(_private_key(key).public_key()) != _public_der(leaf.public_key()):
            raise IdentityError(
                "the private key does not match the leaf certificate's public key "
                "(a rotation half written, or files from two identities)"
            )
        return cls(
            cert_chain_pem=cert_chain,
            key_pem=key,
            roots_pem=roots,
            spiffe_id=_spiffe_id_of(leaf),
            not_after=leaf.not_valid_after_utc,
        )

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str]) -> Identity:
        """An identity from a directory in Istio's layout: ``cert-chain.pem``, ``key.pem``
        and ``root-cert.pem``.

        Istio uses that layout wherever certificates live in files: ``/etc/certs/`` (the
        older mounted secrets, Istio's ``DefaultCertChainFilePath`` and friends),
        ``/var/run/secrets/workload-spiffe-credentials/`` (the well-known directory for
        file-mounted workload certificates, which istio-agent serves when present) and
        ``/var/lib/istio/data`` (where the proxyless gRPC injection template points
        istio-agent's ``OUTPUT_CERTS``). The error names a missing or unreadable file.
        """
        directory = Path(path)
        cert_chain, key, roots = (_read(directory / name) for name in _LOAD_ORDER)
        try:
            return cls.from_pem(cert_chain, key, roots)
        except IdentityError as error:
            raise IdentityError(f"{directory}: {error}") from None

    def material_key(self) -> bytes:
        """A SHA-256 digest of the chain, key and roots: equal material, equal key.

        Stable across processes, so it can key a cache of TLS contexts built from it.
        Worked out once: TLS connections ask for it on every request.
        """
        known: bytes | None = self.__dict__.get("_material_key")
        if known is not None:
            return known
        digest = hashlib.sha256()
        for part in (self.cert_chain_pem, self.key_pem, self.roots_pem):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        key = digest.digest()
        object.__setattr__(self, "_material_key", key)  # frozen: a cache, not a change
        return key


#: The order :meth:`Identity.from_directory` reads in; matches its arguments.
_LOAD_ORDER = (CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise IdentityError(
            f"{path}: no such file (Istio's layout is {CERT_CHAIN_FILE}, {KEY_FILE} "
            f"and {ROOT_CERT_FILE})"
        ) from None
    except OSError as error:
        raise IdentityError(f"{path}: cannot read: {error.strerror or error}") from None


def _certificates(pem: bytes, what: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise IdentityError(f"{what}: no readable PEM certificate ({error})") from None


def _private_key(pem: bytes) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise IdentityError(
            f"private key: not an unencrypted PEM key (PKCS#8, PKCS#1 or SEC1): {error}"
        ) from None


def _public_der(key: PublicKeyTypes | CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _spiffe_id_of(leaf: x509.Certificate) -> str:
    """The leaf's one SPIFFE ID: Istio's certificates carry it as their only URI SAN."""
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        raise IdentityError(
            "the leaf certificate has no subject alternative names, so no spiffe:// URI SAN"
        ) from None
    uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    spiffe = [uri for uri in uris if uri.startswith(_SPIFFE_SCHEME)]
    if len(spiffe) != 1:
        raise IdentityError(
            f"the leaf certificate has {len(spiffe)} spiffe:// URI SANs; "
            "a workload certificate carries exactly one"
        )
    return spiffe[0]


#: Per file of :data:`FILES`: ``(inode, size, mtime_ns)``, or ``None`` when it is missing.
_Signature = tuple[tuple[int, int, int] | None, ...]


def _signature(directory: Path) -> _Signature:
    """What changes when a file is replaced: istio-agent writes a temporary file and renames
    it over the old one (a new inode), and Kubernetes swaps a secret volume's ``..data``
    symlink (followed here)."""
    return tuple(_stat(directory / name) for name in FILES)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class IdentitySource:
    """Where a mesh gets its current identity: a fixed :class:`Identity`, or a directory in
    Istio's layout that is followed through rotations.

    istio-agent renews a workload certificate when half its lifetime is left (12 h of the
    default 24 h) and writes the files one at a time, each as an atomic rename and only if
    its bytes changed, in this order: ``key.pem``, ``cert-chain.pem``, ``root-cert.pem``
    (``OutputKeyCertToDir``). Between the first and the second rename the directory holds
    a new key and an old certificate. So:

    * :meth:`current` is cheap: it looks at the files' inodes, sizes and modification
      times at most every ``poll`` seconds, and reads nothing otherwise;
    * after a change it waits until the files have stayed the same for ``debounce``
      seconds, then reads all three;
    * while the key does not match the certificate (or a file is missing or unreadable)
      the old identity stays current, and the read is tried again at the next poll;
    * a read whose files changed under it is not used: the wait starts again.

    :attr:`generation` counts the identities handed out after the first: it increments
    when a reload brings different material (see :meth:`Identity.material_key`). A reload
    that finds the same bytes (files touched, or rewritten unchanged) keeps the current
    object. Safe to share between threads; a thread that finds another one checking the
    files gets the current identity without waiting.
    """

    def __init__(
        self,
        identity_or_path: Identity | str | os.PathLike[str],
        *,
        poll: float = 1.0,
        debounce: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not poll > 0 or not debounce >= 0:
            raise ValueError(f"need poll > 0 and debounce >= 0, got {poll} and {debounce}")
        self._poll, self._debounce, self._clock = poll, debounce, clock
        self._lock = threading.Lock()
        self._generation = 0
        self._last_error: IdentityError | None = None
        self._pending: _Signature | None = None
        self._pending_since = 0.0
        if isinstance(identity_or_path, Identity):
            self._directory: Path | None = None
            self._loaded: _Signature = ()
            self._identity = identity_or_path
            self._next_check = float("inf")
        else:
            self._directory = Path(identity_or_path)
            # Looked at before reading, so a change during the read shows at the next poll.
            self._loaded = _signature(self._directory)
            self._identity = Identity.from_directory(self._directory)
            self._next_check = clock() + poll

    @property
    def generation(self) -> int:
        """How many times a reload has replaced the identity (0 until the first rotation)."""
        return self._generation

    @property
    def directory(self) -> Path | None:
        """The directory followed, or ``None`` for a fixed identity."""
        return self._directory

    @property
    def last_error(self) -> IdentityError | None:
        """Why the last reload was not used (a rotation half written, say), until one is."""
        return self._last_error

    def current(self) -> Identity:
        """The current identity; at most every ``poll`` seconds, first a look at the files."""
        now = self._clock()
        if now < self._next_check or not self._lock.acquire(blocking=False):
            return self._identity
        try:
            if now >= self._next_check:  # not done by another thread meanwhile
                self._check(now)
        finally:
            self._lock.release()
        return self._identity

    def _check(self, now: float) -> None:
        assert self._directory is not None  # a fixed identity is never checked
        signature = _signature(self._directory)
        if signature == self._loaded:
            self._pending = None
            self._next_check = now + self._poll
            return
        if signature != self._pending:
            self._pending, self._pending_since = signature, now
        if now - self._pending_since < self._debounce:
            self._next_check = self._pending_since + self._debounce
            return
        self._reload(self._directory, signature, now)

    def _reload(self, directory: Path, signature: _Signature, now: float) -> None:
        try:
            identity = Identity.from_directory(directory)
        except IdentityError as error:
            # Most often a new key beside the old certificate: keep the old identity.
            self._last_error = error
            self._next_check = now + self._poll
            return
        after = _signature(directory)
        if after != signature:  # replaced while being read: wait for it to settle
            self._pending, self._pending_since = after, now
            self._next_check = now + self._debounce
            return
        self._loaded, self._pending, self._last_error = signature, None, None
        self._next_check = now + self._poll
        if identity.material_key() != self._identity.material_key():
            self._identity = identity  # before the count, so a new count never sees the old
            self._generation += 1

    def __repr__(self) -> str:
        where = str(self._directory) if self._directory else "fixed"
        return (
            f"IdentitySource({where}, {self._identity.spiffe_id}, generation={self._generation})"
        )
