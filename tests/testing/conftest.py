"""Test-kit scenarios run through the sync shell and the async shell (asyncio, trio)."""

from __future__ import annotations

import pytest

from tests.transports.shells import SHELLS, Shell


@pytest.fixture(params=SHELLS, ids=lambda shell: shell.name)
def shell(request: pytest.FixtureRequest) -> Shell:
    """The shell a scenario runs through."""
    shell: Shell = request.param
    return shell
