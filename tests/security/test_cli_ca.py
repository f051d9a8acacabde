"""``meshlib ca init`` and ``meshlib ca issue``: files written, output, exit statuses."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from meshlib import Identity
from meshlib._cli import main

REVIEWS = "spiffe://cluster.local/ns/default/sa/reviews"


def test_init_then_issue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ca init`` then ``ca issue`` exit 0, say what they wrote, and leave an identity in
    Istio's layout with the requested lifetime."""
    ca, out = tmp_path / "ca", tmp_path / "reviews"
    assert main(["ca", "init", str(ca), "--trust-domain", "example.org"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"wrote {ca / 'root-cert.pem'}",
        f"wrote {ca / 'root-key.pem'} (the CA's private key)",
    ]
    spiffe = "spiffe://example.org/ns/shop/sa/cart"
    argv = ["ca", "issue", str(ca), "--spiffe", spiffe, "--out", str(out), "--hours", "1.5"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    identity = Identity.from_directory(out)
    assert lines[0] == f"issued {spiffe}, valid until {identity.not_after:%Y-%m-%dT%H:%M:%SZ}"
    assert lines[1:] == [
        f"wrote {out / name}" for name in ("key.pem", "cert-chain.pem", "root-cert.pem")
    ]
    assert identity.spiffe_id == spiffe
    expected = datetime.now(timezone.utc) + timedelta(hours=1.5)
    assert abs(identity.not_after - expected) < timedelta(seconds=30)


def test_rsa_flags(tmp_path: Path) -> None:
    """``--rsa`` makes RSA-2048 keys for the root and for the workload."""
    ca, out = tmp_path / "ca", tmp_path / "out"
    assert main(["ca", "init", str(ca), "--rsa"]) == 0
    assert main(["ca", "issue", str(ca), "--spiffe", REVIEWS, "--out", str(out), "--rsa"]) == 0
    for path in (ca / "root-cert.pem", out / "cert-chain.pem"):
        public = x509.load_pem_x509_certificate(path.read_bytes()).public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        assert public.key_size == 2048


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--spiffe", "spiffe://cluster.local/reviews"], "not an Istio SPIFFE ID"),
        (["--spiffe", REVIEWS, "--hours", "0"], "hours must be positive"),
    ],
    ids=["bad-spiffe-id", "zero-hours"],
)
def test_issue_bad_input_exits_2_with_one_line(
    ca: Path, tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SPIFFE ID not in Istio's form or a non-positive lifetime: exit 2, one line on
    stderr, nothing written."""
    out = tmp_path / "out"
    assert main(["ca", "issue", str(ca), "--out", str(out), *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("meshlib ca issue: error: ")
    assert message in line
    assert not out.exists()


def test_issue_without_a_ca_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issuing from a directory with no CA: exit 2, one line naming the missing file."""
    argv = ["ca", "issue", str(tmp_path), "--spiffe", REVIEWS, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert str(tmp_path / "root-cert.pem") in line


def test_init_over_a_ca_exits_2(ca: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ca init`` on an existing CA refuses: exit 2, one line."""
    assert main(["ca", "init", str(ca)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("meshlib ca init: error: ")
    assert "already exists" in line


def test_ca_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    """``meshlib ca`` alone is a usage error (argparse's exit 2)."""
    with pytest.raises(SystemExit) as exited:
        main(["ca"])
    assert exited.value.code == 2
    assert "init" in capsys.readouterr().err


def test_runs_as_a_module(tmp_path: Path) -> None:
    """``python -m meshlib ca init`` works from a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-m", "meshlib", "ca", "init", str(tmp_path / "ca")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ca" / "root-key.pem").exists()
