"""``meshlib demo`` runs the Bookinfo story on loopback and exits 0."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_the_bookinfo_story() -> None:
    """The demo routes all to v1, splits 80/20, and sends jason to v2, then exits 0."""
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
