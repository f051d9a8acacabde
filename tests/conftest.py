"""Shared test fixtures: where the Istio sample configurations live."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Istio's own sample configurations, copied unchanged (see istio-samples/README.md).
SAMPLES = Path(__file__).parent / "istio-samples"


@pytest.fixture
def samples() -> Path:
    """The folder of Istio sample configurations."""
    return SAMPLES
