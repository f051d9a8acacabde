"""``meshlib demo`` runs the Bookinfo story on loopback and exits 0."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_runs_the_bookinfo_story() -> None:
    """The demo routes all to v1, splits 80/20, sends jason to v2, delays and aborts
    jason's ratings calls, rescues a flaky endpoint with retries, times out a slow one,
    trips the circuit breaker, ejects a failing endpoint, keeps
    users on one version by hash, steers around a slow version, and serves mTLS with an
    AuthorizationPolicy denial; then exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "meshlib", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "30 requests: v1   30 (100.0%)" in out
    assert "500 requests:" in out
    assert "jason      -> {'v2': 10}" in out
    assert "jason  -> 200, waited 7.0 s, flags DI" in out
    assert "alice  -> 200, waited 0.0 s, flags -" in out
    assert "jason  -> 500 'fault filter abort', flags FI" in out
    assert "ratings served 1 of the 2 requests" in out
    assert "Istio's default policy: {200: 5, 503: 5} in 10 attempts" in out
    assert "with retries          : {200: 10}" in out
    assert "504 'upstream request timeout' (UT)" in out
    assert "2 x 200 -" in out
    assert "1 x 503 UO" in out
    assert "'broken': 3}" in out
    affinity = out.split("Session affinity")[1].split("==")[0]
    assert all(line.count(": 10}") == 1 for line in affinity.splitlines() if "->" in line)
    assert "productpage -> 200 spiffe://cluster.local/ns/default/sa/productpage" in out
    assert "ratings     -> 403 RBAC: access denied" in out
    least = out.split("Least request")[1].split("==")[0]
    shares = dict(re.findall(r"(v\d)\s+(\d+) \(", least))
    assert int(shares["v2"]) < min(int(shares["v1"]), int(shares["v3"]))
