"""Fixtures for the identity tests: development CAs made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlib._ca import init_ca


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A development CA with an ECDSA P-256 root for ``cluster.local``."""
    directory = tmp_path_factory.mktemp("ca")
    init_ca(directory)
    return directory


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, unrelated CA (an RSA root), for root bundles and foreign peers."""
    directory = tmp_path_factory.mktemp("other-ca")
    init_ca(directory, rsa=True)
    return directory
