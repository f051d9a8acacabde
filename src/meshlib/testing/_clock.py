"""Virtual time for tests: waits finish at once, and the clock says how long they were."""

from __future__ import annotations

import threading

import anyio
import anyio.lowlevel

__all__ = ["VirtualClock"]


class VirtualClock:
    """A clock the test controls, for ``Mesh(clock=...)``.

    Every wait the mesh makes (a fault delay, a retry backoff) returns at once and moves
    the clock to where the wait would have ended: a 7 s delay takes no real time, and
    the clock, ``MeshInfo.elapsed`` and the route deadlines all see 7 s. Waits that
    overlap (concurrent requests) end together: each moves the clock to at least its own
    end, never back. :meth:`advance` moves time on by hand, to let ejections expire or
    DNS answers age.

    httpx's own ``response.elapsed`` is measured by httpx in real time and does not see
    virtual time. Socket timeouts are real too: with real servers, keep timeouts real.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        """The virtual time, in seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``."""
        if seconds < 0:
            raise ValueError(f"time cannot go back ({seconds} s)")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time: no real wait."""
        self._wait_from(self._now, seconds)

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time, letting other tasks run once."""
        start = self._now
        await anyio.lowlevel.checkpoint()
        self._wait_from(start, seconds)

    def _wait_from(self, start: float, seconds: float) -> None:
        with self._lock:
            self._now = max(self._now, start + max(seconds, 0.0))
