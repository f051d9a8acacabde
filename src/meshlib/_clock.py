"""Time, as the mesh sees it: a monotonic clock and the ways to wait.

The engine only reads ``now()``; the transport shells wait with ``sleep`` (sync) or
``asleep`` (async, on asyncio and trio alike). :class:`meshlib.testing.VirtualClock`
implements the same protocol so that a 7 s fault delay takes no real time in a test.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """What the mesh needs of a clock."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (sync shell)."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` (async shell)."""
        ...


class SystemClock:
    """Real time: ``time.monotonic``, ``time.sleep`` and ``anyio.sleep``."""

    def now(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """Let the event loop run other tasks for ``seconds``."""
        if seconds > 0:
            await anyio.sleep(seconds)
