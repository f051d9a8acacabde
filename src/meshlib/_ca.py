"""A development certificate authority that issues workload certificates as Istio's does.

For tests, demos and local meshes: :func:`init_ca` makes a self-signed root, and
:func:`issue` signs workload certificates with it and writes them in Istio's layout (see
:mod:`meshlib._identity`). Not for production: the root key sits in a plain file.

The certificates follow the profile of Istio's CA (``security/pkg/pki/util``):

* root: subject ``O=<trust domain>``, ``CA:TRUE`` (critical), key usage
  ``keyCertSign, cRLSign`` (critical), a subject key identifier;
* workload: an **empty subject** and the SPIFFE ID as the only, **critical**, URI SAN
  (RFC 5280 requires the SAN to be critical when the subject is empty), key usage
  ``digitalSignature, keyEncipherment`` (critical), extended key usage
  ``serverAuth, clientAuth``, ``CA:FALSE`` (critical), subject and authority key
  identifiers, and a NotBefore set back 2 minutes for clock skew (Istio's
  ``ClockSkewGracePeriod``).

Keys are ECDSA P-256 unless ``rsa=True`` asks for RSA-2048 (Istio's default,
``WORKLOAD_RSA_KEY_SIZE``), and are written as PKCS#8. The certificates pass OpenSSL's
strict X.509 checks (``ssl.VERIFY_X509_STRICT``, on by default from Python 3.13).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshlib._identity import (
    CERT_CHAIN_FILE,
    KEY_FILE,
    ROOT_CERT_FILE,
    Identity,
    parse_spiffe_id,
)

__all__ = ["ROOT_CERT_FILE", "ROOT_KEY_FILE", "init_ca", "issue"]

#: The root's private key, beside its certificate ``root-cert.pem``.
ROOT_KEY_FILE = "root-key.pem"

#: Istio's ``ClockSkewGracePeriod``: certificates are valid from 2 minutes before issue.
_CLOCK_SKEW = timedelta(minutes=2)

#: A root valid for 100 years is plenty, and keeps NotAfter inside what X.509 can write.
_MAX_DAYS = 36500

_CAKey = rsa_keys.RSAPrivateKey | ec.EllipticCurvePrivateKey


def init_ca(
    directory: str | os.PathLike[str],
    *,
    trust_domain: str = "cluster.local",
    rsa: bool = False,
    days: int = 3650,
) -> None:
    """Create a self-signed root in ``directory``: ``root-cert.pem`` and ``root-key.pem``
    (PKCS#8, mode 0600).

    Like Istio's self-signed root its subject is ``O=<trust_domain>``. Refuses to replace
    an existing ``root-key.pem`` (:class:`FileExistsError`): every certificate it signed
    would stop verifying.
    """
    if not trust_domain or any(c == "/" or c.isspace() for c in trust_domain):
        raise ValueError(f"not a trust domain: {trust_domain!r}")
    if not 0 < days <= _MAX_DAYS:
        raise ValueError(f"days must be between 1 and {_MAX_DAYS}, got {days}")
    folder = Path(directory)
    if (folder / ROOT_KEY_FILE).exists():
        raise FileExistsError(f"{folder / ROOT_KEY_FILE}: a CA already exists here")
    folder.mkdir(parents=True, exist_ok=True)
    key = _new_key(rsa=rsa)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain)])
    now = datetime.now(timezone.utc)
    usage = _key_usage(key_cert_sign=True, crl_sign=True)
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    root = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(key_id, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(folder / ROOT_KEY_FILE, _pkcs8(key), 0o600)
    _write(folder / ROOT_CERT_FILE, root.public_bytes(serialization.Encoding.PEM), 0o644)


def issue(
    ca_directory: str | os.PathLike[str],
    spiffe_id: str,
    out_directory: str | os.PathLike[str],
    *,
    hours: float = 24.0,
    rsa: bool = False,
    not_before_offset: timedelta = _CLOCK_SKEW,
    not_after: datetime | None = None,
) -> Identity:
    """Issue a workload certificate for ``spiffe_id`` and write it to ``out_directory``.

    The files are Istio's: ``key.pem`` (PKCS#8, mode 0600), ``cert-chain.pem`` (the leaf)
    and ``root-cert.pem`` (the CA's root), each written to a temporary file and renamed
    into place in that order, as istio-agent rotates them, so a directory an
    :class:`~meshlib._identity.IdentitySource` follows can be re-issued in place.

    NotBefore is ``now - not_before_offset``; NotAfter is ``now + hours``, or
    ``not_after`` when given (naive datetimes are taken as UTC). A ``not_after`` in the
    past makes an expired certificate, valid for ``hours`` up to then.

    Raises :class:`~meshlib._identity.IdentityError` for a SPIFFE ID not in Istio's form
    ``spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>``, and
    :class:`ValueError` or :class:`OSError` for an unusable CA directory.
    """
    parse_spiffe_id(spiffe_id)
    if not hours > 0:
        raise ValueError(f"hours must be positive, got {hours}")
    root_pem, root, ca_key = _load_ca(Path(ca_directory))
    now = datetime.now(timezone.utc)
    try:
        start = now - not_before_offset
        end = now + timedelta(hours=hours) if not_after is None else _utc(not_after)
        if end <= start:
            start = end - timedelta(hours=hours)
    except OverflowError:
        raise ValueError(f"a lifetime of {hours} hours is out of range") from None
    key = _new_key(rsa=rsa)
    usage = _key_usage(digital_signature=True, key_encipherment=True)
    purposes = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]),
            critical=True,
        )
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_id, critical=False)
        .add_extension(_authority_key_id(root), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    chain_pem = leaf.public_bytes(serialization.Encoding.PEM)
    key_pem = _pkcs8(key)
    out = Path(out_directory)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / KEY_FILE, key_pem, 0o600)
    _write(out / CERT_CHAIN_FILE, chain_pem, 0o644)
    _write(out / ROOT_CERT_FILE, root_pem, 0o644)
    return Identity.from_pem(chain_pem, key_pem, root_pem)


def _new_key(*, rsa: bool) -> _CAKey:
    if rsa:
        return rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(root: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(_ca_public_key(root))
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _ca_public_key(
    root: x509.Certificate,
) -> rsa_keys.RSAPublicKey | ec.EllipticCurvePublicKey:
    public = root.public_key()
    if not isinstance(public, rsa_keys.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ValueError("the CA's key must be RSA or ECDSA")
    return public


def _load_ca(directory: Path) -> tuple[bytes, x509.Certificate, _CAKey]:
    """The root certificate's PEM, the certificate, and its key; checked to belong together."""
    try:
        root_pem = (directory / ROOT_CERT_FILE).read_bytes()
        key_pem = (directory / ROOT_KEY_FILE).read_bytes()
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{error.filename}: no such file (is {directory} a CA made by init_ca?)"
        ) from None
    try:
        root = x509.load_pem_x509_certificate(root_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{directory}: unreadable CA: {error}") from None
    if not isinstance(key, rsa_keys.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / ROOT_KEY_FILE}: the CA's key must be RSA or ECDSA")
    if _spki(key.public_key()) != _spki(_ca_public_key(root)):
        raise ValueError(f"{directory}: {ROOT_KEY_FILE} is not the key of {ROOT_CERT_FILE}")
    return root_pem, root, key


def _spki(key: rsa_keys.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pkcs8(key: _CAKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
