"""The development CA: Istio's certificate profile, and certificates that OpenSSL's strict
X.509 checks accept in a real mutual-TLS handshake."""

from __future__ import annotations

import ssl
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshlib import Identity, IdentityError
from meshlib._ca import init_ca, issue
from tests.security.pki import context, handshake, uri_sans

REVIEWS = "spiffe://cluster.local/ns/default/sa/reviews"
RATINGS = "spiffe://cluster.local/ns/default/sa/ratings"
#: How far a timestamp may drift from the one computed in the test (issue takes a moment).
TOLERANCE = timedelta(seconds=30)


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_root_follows_istios_self_signed_profile(ca: Path) -> None:
    """The root: O=trust domain, critical CA:TRUE, critical keyCertSign+cRLSign, an SKI,
    and a PKCS#8 key readable by its owner only."""
    root = _certificate(ca / "root-cert.pem")
    assert root.subject == root.issuer
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "cluster.local"
    )
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    usage = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(root.public_key())
    assert (ca / "root-key.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert _mode(ca / "root-key.pem") == 0o600
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)


def test_init_ca_takes_the_trust_domain_and_rsa(tmp_path: Path) -> None:
    """``trust_domain`` becomes the root's O=, and ``rsa=True`` makes an RSA-2048 root."""
    init_ca(tmp_path, trust_domain="example.org", rsa=True)
    root = _certificate(tmp_path / "root-cert.pem")
    assert root.subject.rfc4514_string() == "O=example.org"
    public = root.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 2048


def test_init_ca_refuses_to_replace_a_ca(ca: Path) -> None:
    """A second ``init_ca`` on a CA's directory fails instead of orphaning its certificates."""
    before = (ca / "root-key.pem").read_bytes()
    with pytest.raises(FileExistsError, match=r"root-key\.pem"):
        init_ca(ca)
    assert (ca / "root-key.pem").read_bytes() == before


@pytest.mark.parametrize("use_rsa", [False, True], ids=["ecdsa", "rsa"])
def test_workload_certificate_follows_istios_profile(
    ca: Path, tmp_path: Path, use_rsa: bool
) -> None:
    """The leaf: empty subject, the SPIFFE ID as the only and critical SAN, critical
    digitalSignature+keyEncipherment, serverAuth+clientAuth, critical CA:FALSE, NotBefore 2
    minutes back, NotAfter after ``hours``, SKI and AKI, the requested key type, PKCS#8."""
    identity = issue(ca, REVIEWS, tmp_path, hours=6, rsa=use_rsa)
    now = datetime.now(timezone.utc)
    leaf = _certificate(tmp_path / "cert-chain.pem")
    root = _certificate(ca / "root-cert.pem")

    assert len(leaf.subject) == 0
    assert leaf.issuer == root.subject
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.critical
    assert list(names.value) == [x509.UniformResourceIdentifier(REVIEWS)]
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert (usage.value.digital_signature, usage.value.key_encipherment) == (True, True)
    assert not usage.value.key_cert_sign
    assert not usage.value.crl_sign
    purposes = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(purposes) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert not constraints.value.ca

    assert abs(leaf.not_valid_before_utc - (now - timedelta(minutes=2))) < TOLERANCE
    assert abs(leaf.not_valid_after_utc - (now + timedelta(hours=6))) < TOLERANCE
    assert identity.not_after == leaf.not_valid_after_utc

    ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(leaf.public_key())
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == root_ski.digest

    public = leaf.public_key()
    if use_rsa:
        assert isinstance(public, rsa.RSAPublicKey)
        assert public.key_size == 2048
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert isinstance(public.curve, ec.SECP256R1)
    assert identity.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    leaf.verify_directly_issued_by(root)


def test_issue_writes_istios_layout(ca: Path, tmp_path: Path) -> None:
    """``issue`` writes cert-chain.pem (the leaf alone), key.pem (0600) and root-cert.pem
    (the CA's root), and returns the identity those files hold."""
    out = tmp_path / "workload"
    identity = issue(ca, REVIEWS, out)
    assert sorted(path.name for path in out.iterdir()) == [
        "cert-chain.pem",
        "key.pem",
        "root-cert.pem",
    ]
    assert len(x509.load_pem_x509_certificates((out / "cert-chain.pem").read_bytes())) == 1
    assert _mode(out / "key.pem") == 0o600
    assert (out / "root-cert.pem").read_bytes() == (ca / "root-cert.pem").read_bytes()
    assert Identity.from_directory(out) == identity
    assert identity.spiffe_id == REVIEWS


@pytest.mark.parametrize(
    "spiffe_id",
    [
        "cluster.local/ns/default/sa/reviews",
        "https://cluster.local/ns/default/sa/reviews",
        "spiffe://cluster.local/ns/default",
        "spiffe://cluster.local/namespace/default/sa/reviews",
        "spiffe://cluster.local/ns/default/sa/reviews/extra",
        "spiffe:///ns/default/sa/reviews",
        "spiffe://cluster.local/ns//sa/reviews",
    ],
)
def test_issue_refuses_ids_istio_would_not_parse(ca: Path, tmp_path: Path, spiffe_id: str) -> None:
    """Only ``spiffe://<td>/ns/<ns>/sa/<sa>`` is issued; nothing is written otherwise."""
    with pytest.raises(IdentityError, match="SPIFFE ID"):
        issue(ca, spiffe_id, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_issue_without_a_ca_names_the_missing_file(tmp_path: Path) -> None:
    """Issuing from a directory that holds no CA says which file is missing."""
    with pytest.raises(FileNotFoundError, match=r"root-cert\.pem"):
        issue(tmp_path, REVIEWS, tmp_path / "out")


@pytest.mark.parametrize("use_rsa", [False, True], ids=["ecdsa", "rsa"])
def test_strict_mutual_tls_handshake_on_loopback(ca: Path, tmp_path: Path, use_rsa: bool) -> None:
    """Two issued identities complete a mutual-TLS handshake with VERIFY_X509_STRICT, each
    seeing the other's SPIFFE ID."""
    server = issue(ca, REVIEWS, tmp_path / "server", rsa=use_rsa)
    client = issue(ca, RATINGS, tmp_path / "client")
    seen = handshake(
        context(server, tmp_path / "server", server=True),
        context(client, tmp_path / "client", server=False),
    )
    assert seen.server_error is None
    assert uri_sans(seen.client_saw) == [REVIEWS]
    assert uri_sans(seen.server_saw) == [RATINGS]


def test_strict_checks_are_in_force(ca: Path, tmp_path: Path) -> None:
    """Control: the same handshake fails for an empty-subject certificate whose SAN is not
    critical, which only the strict X.509 checks reject."""
    if not hasattr(ssl, "VERIFY_X509_STRICT"):
        pytest.skip("this ssl module has no strict X.509 checks")
    server = issue(ca, REVIEWS, tmp_path / "server")
    client = issue(ca, RATINGS, tmp_path / "client")
    leaf = _certificate(tmp_path / "server" / "cert-chain.pem")
    ca_key = serialization.load_pem_private_key((ca / "root-key.pem").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    lax = (
        x509.CertificateBuilder()
        .issuer_name(leaf.issuer)
        .subject_name(leaf.subject)
        .public_key(leaf.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(leaf.not_valid_before_utc)
        .not_valid_after(leaf.not_valid_after_utc)
    )
    for extension in leaf.extensions:
        is_san = isinstance(extension.value, x509.SubjectAlternativeName)
        lax = lax.add_extension(extension.value, critical=extension.critical and not is_san)
    pem = lax.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    (tmp_path / "server" / "cert-chain.pem").write_bytes(pem)
    with pytest.raises(ssl.SSLCertVerificationError, match="not critical"):
        handshake(
            context(server, tmp_path / "server", server=True),
            context(client, tmp_path / "client", server=False),
        )


def test_expired_certificate_fails_verification(ca: Path, tmp_path: Path) -> None:
    """A certificate issued with ``not_after`` an hour ago is refused by its peer as
    expired, though valid for ``hours`` up to then."""
    expired_at = datetime.now(timezone.utc) - timedelta(hours=1)
    server = issue(ca, REVIEWS, tmp_path / "server", hours=2, not_after=expired_at)
    client = issue(ca, RATINGS, tmp_path / "client")
    leaf = _certificate(tmp_path / "server" / "cert-chain.pem")
    assert abs(leaf.not_valid_after_utc - expired_at) < TOLERANCE
    assert abs(leaf.not_valid_before_utc - (expired_at - timedelta(hours=2))) < TOLERANCE
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        handshake(
            context(server, tmp_path / "server", server=True),
            context(client, tmp_path / "client", server=False),
        )
