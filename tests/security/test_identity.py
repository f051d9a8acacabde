"""Workload identities: reading Istio's files, the checks ``from_pem`` makes, and following
istio-agent's rotations without handing out a half-written identity."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import meshlib
from meshlib import Identity, IdentityError, IdentitySource
from meshlib import _identity as identity_module
from meshlib._ca import issue
from tests.security.pki import FakeClock, context, handshake, key_matches, replace, uri_sans

REVIEWS = "spiffe://cluster.local/ns/default/sa/reviews"
RATINGS = "spiffe://cluster.local/ns/default/sa/ratings"
FILES = ("cert-chain.pem", "key.pem", "root-cert.pem")
#: istio-agent's order when it rotates the files.
ROTATION_ORDER = ("key.pem", "cert-chain.pem", "root-cert.pem")


def _leaf(ca: Path, names: list[x509.GeneralName] | None) -> tuple[bytes, bytes, bytes]:
    """Chain, key and roots for a certificate from ``ca`` with these SANs (None: no SAN)."""
    ca_key = serialization.load_pem_private_key((ca / "root-key.pem").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    roots = (ca / "root-cert.pem").read_bytes()
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .issuer_name(x509.load_pem_x509_certificate(roots).subject)
        .subject_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(hours=1))
    )
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=True)
    chain = builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return chain, key_pem, roots


# --- Identity ----------------------------------------------------------------------------


def test_from_directory_reads_istios_layout(ca: Path, tmp_path: Path) -> None:
    """The three files become an identity whose SPIFFE ID, parts and expiry are the leaf's."""
    issued = issue(ca, REVIEWS, tmp_path)
    identity = Identity.from_directory(str(tmp_path))
    assert identity == issued
    assert identity.spiffe_id == REVIEWS
    assert (identity.trust_domain, identity.namespace, identity.service_account) == (
        "cluster.local",
        "default",
        "reviews",
    )
    leaf = x509.load_pem_x509_certificate(identity.cert_chain_pem)
    assert identity.not_after == leaf.not_valid_after_utc
    assert identity.not_after.tzinfo is not None
    assert identity.key_pem == (tmp_path / "key.pem").read_bytes()
    assert identity.roots_pem == (ca / "root-cert.pem").read_bytes()
    assert meshlib.Identity is Identity


@pytest.mark.parametrize("name", FILES)
def test_from_directory_names_the_missing_file(ca: Path, tmp_path: Path, name: str) -> None:
    """A directory missing one of Istio's three files is refused with that file's name."""
    issue(ca, REVIEWS, tmp_path)
    (tmp_path / name).unlink()
    with pytest.raises(IdentityError, match=name.replace(".", r"\.")) as caught:
        Identity.from_directory(tmp_path)
    assert str(tmp_path / name) in str(caught.value)


def test_from_pem_rejects_a_key_of_another_certificate(ca: Path, tmp_path: Path) -> None:
    """A key that does not match the leaf (a rotation half written) is an IdentityError,
    which is also a ValueError."""
    reviews = issue(ca, REVIEWS, tmp_path / "reviews")
    ratings = issue(ca, RATINGS, tmp_path / "ratings")
    with pytest.raises(IdentityError, match="does not match"):
        Identity.from_pem(reviews.cert_chain_pem, ratings.key_pem, reviews.roots_pem)
    assert issubclass(IdentityError, ValueError)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (None, "no subject alternative names"),
        ([x509.DNSName("reviews.default.svc")], "0 spiffe:// URI SANs"),
        ([x509.UniformResourceIdentifier("https://reviews/")], "0 spiffe:// URI SANs"),
        (
            [
                x509.UniformResourceIdentifier(REVIEWS),
                x509.UniformResourceIdentifier(RATINGS),
            ],
            "2 spiffe:// URI SANs",
        ),
        ([x509.UniformResourceIdentifier("spiffe://example.org/workload")], "not an Istio"),
    ],
    ids=["no-san", "dns-only", "other-uri", "two-spiffe", "not-istio-form"],
)
def test_from_pem_requires_exactly_one_istio_spiffe_id(
    ca: Path, names: list[x509.GeneralName] | None, message: str
) -> None:
    """The leaf must carry exactly one spiffe:// URI SAN, in Istio's ns/sa form."""
    with pytest.raises(IdentityError, match=message):
        Identity.from_pem(*_leaf(ca, names))


def test_from_pem_keeps_other_sans_beside_the_spiffe_id(ca: Path) -> None:
    """DNS names and other URIs beside the one SPIFFE ID do not get in the way."""
    names: list[x509.GeneralName] = [
        x509.DNSName("reviews.default.svc"),
        x509.UniformResourceIdentifier(REVIEWS),
    ]
    assert Identity.from_pem(*_leaf(ca, names)).spiffe_id == REVIEWS


@pytest.mark.parametrize(
    ("part", "data", "message"),
    [
        (0, b"not a certificate", "certificate chain"),
        (1, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "private key"),
        (2, b"", "roots"),
    ],
    ids=["chain", "key", "roots"],
)
def test_from_pem_rejects_unreadable_pem(
    ca: Path, tmp_path: Path, part: int, data: bytes, message: str
) -> None:
    """Garbage in any of the three parts is an IdentityError naming the part."""
    issued = issue(ca, REVIEWS, tmp_path)
    parts = [issued.cert_chain_pem, issued.key_pem, issued.roots_pem]
    parts[part] = data
    with pytest.raises(IdentityError, match=message):
        Identity.from_pem(*parts)


def test_from_pem_refuses_encrypted_keys(ca: Path, tmp_path: Path) -> None:
    """An encrypted key is refused (Istio writes key.pem in the clear)."""
    issued = issue(ca, REVIEWS, tmp_path)
    key = serialization.load_pem_private_key(issued.key_pem, None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(IdentityError, match="unencrypted"):
        Identity.from_pem(issued.cert_chain_pem, encrypted, issued.roots_pem)


@pytest.mark.parametrize(("use_rsa", "header"), [(False, b"EC"), (True, b"RSA")])
def test_from_pem_accepts_pkcs1_and_sec1_keys(
    ca: Path, tmp_path: Path, use_rsa: bool, header: bytes
) -> None:
    """Besides PKCS#8, RSA keys in PKCS#1 and EC keys in SEC1 form are accepted."""
    issued = issue(ca, REVIEWS, tmp_path, rsa=use_rsa)
    key = serialization.load_pem_private_key(issued.key_pem, None)
    traditional = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert traditional.startswith(b"-----BEGIN " + header + b" PRIVATE KEY-----")
    identity = Identity.from_pem(issued.cert_chain_pem, traditional, issued.roots_pem)
    assert identity.spiffe_id == REVIEWS


def test_root_bundle_trusts_peers_of_every_root(ca: Path, other_ca: Path, tmp_path: Path) -> None:
    """Roots may be a bundle (as during a root rotation): each root in it is trusted."""
    bundle = (other_ca / "root-cert.pem").read_bytes() + (ca / "root-cert.pem").read_bytes()
    client = issue(ca, RATINGS, tmp_path / "client")
    replace(tmp_path / "client" / "root-cert.pem", bundle)
    client = Identity.from_directory(tmp_path / "client")
    assert client.roots_pem == bundle
    server = issue(other_ca, REVIEWS, tmp_path / "server")
    replace(tmp_path / "server" / "root-cert.pem", bundle)
    server = Identity.from_directory(tmp_path / "server")
    seen = handshake(
        context(server, tmp_path / "server", server=True),
        context(client, tmp_path / "client", server=False),
    )
    assert uri_sans(seen.client_saw) == [REVIEWS]
    assert uri_sans(seen.server_saw) == [RATINGS]


def test_identity_is_immutable_and_keeps_its_key_out_of_repr(ca: Path, tmp_path: Path) -> None:
    """An identity cannot be changed, and its repr shows the SPIFFE ID but no PEM."""
    identity = issue(ca, REVIEWS, tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        identity.spiffe_id = RATINGS  # type: ignore[misc]
    assert REVIEWS in repr(identity)
    assert "PRIVATE" not in repr(identity)
    assert "CERTIFICATE" not in repr(identity)


def test_identity_refuses_a_spiffe_id_not_in_istios_form(ca: Path, tmp_path: Path) -> None:
    """Made directly, an identity still checks its SPIFFE ID."""
    issued = issue(ca, REVIEWS, tmp_path)
    with pytest.raises(IdentityError, match="not an Istio SPIFFE ID"):
        dataclasses.replace(issued, spiffe_id="spiffe://cluster.local/reviews")


def test_material_key_follows_the_bytes(ca: Path, tmp_path: Path) -> None:
    """Equal chain, key and roots give equal material keys; any change gives another."""
    issued = issue(ca, REVIEWS, tmp_path)
    again = Identity.from_directory(tmp_path)
    assert again is not issued
    assert again.material_key() == issued.material_key()
    assert len(issued.material_key()) == 32
    bundle = dataclasses.replace(issued, roots_pem=issued.roots_pem * 2)
    assert bundle.material_key() != issued.material_key()
    other = issue(ca, REVIEWS, tmp_path / "other")
    assert other.material_key() != issued.material_key()


# --- IdentitySource ------------------------------------------------------------------------


def test_fixed_identity_source_never_touches_files(
    ca: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source made from an Identity hands it out unchanged, at generation 0."""
    identity = issue(ca, REVIEWS, tmp_path)
    monkeypatch.setattr(identity_module, "_signature", _forbidden)
    source = IdentitySource(identity)
    assert source.current() is identity
    assert source.generation == 0
    assert source.directory is None


def _forbidden(directory: Path) -> object:
    raise AssertionError(f"looked at {directory}")


def test_current_looks_at_the_files_at_most_once_per_poll(
    ca: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between polls ``current`` does no file I/O at all; at a poll it stats the files."""
    issue(ca, REVIEWS, tmp_path)
    clock = FakeClock()
    source = IdentitySource(tmp_path, poll=1.0, clock=clock)
    looks: list[Path] = []
    real = identity_module._signature

    def counted(path: Path) -> tuple[object, ...]:
        looks.append(path)
        return real(path)

    monkeypatch.setattr(identity_module, "_signature", counted)
    for _ in range(100):
        source.current()
        clock.advance(0.009)
    assert looks == []
    clock.advance(0.2)
    source.current()
    source.current()
    assert looks == [tmp_path]


class Reader(threading.Thread):
    """Calls ``current()`` in a loop, as request threads would, and records every
    identity it is handed."""

    def __init__(self, source: IdentitySource) -> None:
        super().__init__(daemon=True)
        self.source = source
        self.calls = 0
        self.seen: list[Identity] = []
        self.mismatched: list[Identity] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            identity = self.source.current()
            if not self.seen or self.seen[-1] is not identity:
                self.seen.append(identity)
                if not key_matches(identity):
                    self.mismatched.append(identity)
            self.calls += 1

    def settle(self) -> None:
        """Wait until a whole ``current()`` call has run since now."""
        target = self.calls + 2
        deadline = time.monotonic() + 2.0
        while self.calls < target:
            assert time.monotonic() < deadline, "the reader thread stopped"
            time.sleep(0.0001)


@pytest.fixture
def rotation(ca: Path, tmp_path: Path) -> tuple[Path, Identity, Identity]:
    """A watched directory holding an old identity, and a new one staged elsewhere."""
    watched, staged = tmp_path / "watched", tmp_path / "staged"
    old = issue(ca, REVIEWS, watched)
    new = issue(ca, REVIEWS, staged)
    return watched, old, new


def _step(clock: FakeClock, reader: Reader, seconds: float) -> None:
    clock.advance(seconds)
    reader.settle()


def test_rotation_in_quick_succession_is_picked_up_once(
    rotation: tuple[Path, Identity, Identity],
) -> None:
    """istio-agent's three renames a little apart: a reader looping on ``current()`` gets
    the old identity until the last file has been still for ``debounce``, then the new one;
    never a mismatched pair; ``generation`` goes up once."""
    watched, old, new = rotation
    staged = {"key.pem": new.key_pem, "cert-chain.pem": new.cert_chain_pem}
    staged["root-cert.pem"] = new.roots_pem
    clock = FakeClock()
    source = IdentitySource(watched, poll=1.0, debounce=0.2, clock=clock)
    reader = Reader(source)
    reader.start()
    try:
        for name in ROTATION_ORDER:
            replace(watched / name, staged[name])
            _step(clock, reader, 1.0 if name == "key.pem" else 0.2)
            assert reader.seen == [old], f"switched before the rotation settled ({name})"
        _step(clock, reader, 0.2)
        assert reader.seen == [old, new]
        assert source.generation == 1
        for _ in range(5):
            _step(clock, reader, 1.0)
    finally:
        reader.done.set()
        reader.join(2.0)
    assert reader.seen == [old, new]
    assert reader.mismatched == []
    assert source.generation == 1
    assert source.current().material_key() == new.material_key()


def test_half_written_rotation_keeps_the_old_identity(
    rotation: tuple[Path, Identity, Identity],
) -> None:
    """With a new key.pem beside the old certificate for longer than ``debounce``, the read
    fails, the old identity stays and the read is retried each poll; once cert-chain.pem
    arrives the new identity is used, and the unchanged root-cert.pem after it is no new
    generation."""
    watched, old, new = rotation
    clock = FakeClock()
    source = IdentitySource(watched, poll=1.0, debounce=0.2, clock=clock)
    reader = Reader(source)
    reader.start()
    try:
        replace(watched / "key.pem", new.key_pem)
        _step(clock, reader, 1.0)  # the change is seen
        _step(clock, reader, 0.2)  # still for debounce: read, mismatched
        error = source.last_error
        assert "does not match" in str(error)
        for _ in range(3):  # retried at each poll, still mismatched
            _step(clock, reader, 1.0)
        assert reader.seen == [old]
        replace(watched / "cert-chain.pem", new.cert_chain_pem)
        _step(clock, reader, 1.0)
        assert reader.seen == [old]
        _step(clock, reader, 0.2)
        assert reader.seen == [old, new]
        assert source.last_error is None
        replace(watched / "root-cert.pem", new.roots_pem)
        _step(clock, reader, 1.0)
        _step(clock, reader, 0.2)
    finally:
        reader.done.set()
        reader.join(2.0)
    assert reader.seen == [old, new]
    assert reader.mismatched == []
    assert source.generation == 1


def test_new_root_bundle_is_a_new_generation(
    ca: Path, other_ca: Path, rotation: tuple[Path, Identity, Identity]
) -> None:
    """A root-cert.pem with different roots (a root rotation's bundle) is picked up."""
    watched, old, _ = rotation
    clock = FakeClock()
    source = IdentitySource(watched, poll=1.0, debounce=0.2, clock=clock)
    bundle = (ca / "root-cert.pem").read_bytes() + (other_ca / "root-cert.pem").read_bytes()
    replace(watched / "root-cert.pem", bundle)
    for seconds in (1.0, 0.2):
        clock.advance(seconds)
        source.current()
    current = source.current()
    assert current.roots_pem == bundle
    assert current.cert_chain_pem == old.cert_chain_pem
    assert source.generation == 1


def test_files_replaced_during_a_read_wait_for_another_debounce(
    rotation: tuple[Path, Identity, Identity], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read during which a file is replaced is not used; the read after the files have
    been still again for ``debounce`` is."""
    watched, old, new = rotation
    clock = FakeClock()
    source = IdentitySource(watched, poll=1.0, debounce=0.2, clock=clock)
    replace(watched / "key.pem", new.key_pem)
    replace(watched / "cert-chain.pem", new.cert_chain_pem)
    real_read = identity_module._read

    def racing(path: Path) -> bytes:
        data = real_read(path)
        if path.name == "root-cert.pem":  # istio-agent's third rename, mid-read
            replace(path, new.roots_pem)
        return data

    monkeypatch.setattr(identity_module, "_read", racing)
    clock.advance(1.0)  # the change is seen
    assert source.current().material_key() == old.material_key()
    clock.advance(0.2)  # still for debounce: read, but root-cert.pem moved meanwhile
    assert source.current().material_key() == old.material_key()
    assert source.generation == 0
    monkeypatch.undo()
    clock.advance(0.2)
    assert source.current().material_key() == new.material_key()
    assert source.generation == 1


def test_rotation_with_the_real_clock(rotation: tuple[Path, Identity, Identity]) -> None:
    """With the default clock and small poll and debounce, ``issue`` into the watched
    directory is picked up within a fraction of a second."""
    watched, old, new = rotation
    source = IdentitySource(watched, poll=0.01, debounce=0.02)
    assert source.current().material_key() == old.material_key()
    for name in ROTATION_ORDER:
        replace(watched / name, (watched.parent / "staged" / name).read_bytes())
    deadline = time.monotonic() + 1.0
    while source.generation == 0 and time.monotonic() < deadline:
        source.current()
        time.sleep(0.005)
    assert source.current().material_key() == new.material_key()
    assert source.generation == 1


def test_source_needs_a_usable_directory_and_sane_timings(ca: Path, tmp_path: Path) -> None:
    """A directory without an identity fails at once; so do a poll ≤ 0 and a negative
    debounce."""
    with pytest.raises(IdentityError, match=r"cert-chain\.pem"):
        IdentitySource(tmp_path)
    issue(ca, REVIEWS, tmp_path)
    with pytest.raises(ValueError, match="poll"):
        IdentitySource(tmp_path, poll=0)
    with pytest.raises(ValueError, match="debounce"):
        IdentitySource(tmp_path, debounce=-1)
    assert IdentitySource(tmp_path).directory == tmp_path
