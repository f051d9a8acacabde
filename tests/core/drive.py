"""Drive the engine without sockets: scripted outcomes in, actions out."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import httpx

from meshlib import Mesh, MeshInfo
from meshlib._core._actions import (
    Action,
    Attempt,
    Deliver,
    Outcome,
    Raise,
    Reply,
    Resolve,
    Responded,
    Send,
    Sleep,
    WaitForConnection,
)
from meshlib._transports._common import request_head

#: Answers each attempt; the default answers 200.
Upstream = Callable[[Attempt], Outcome]


class FakeClock:
    """The mesh's clock in core tests: time moves only when a test or a Sleep moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.time = start

    def now(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds

    def sleep(self, seconds: float) -> None:
        self.time += seconds

    async def asleep(self, seconds: float) -> None:
        self.time += seconds


@dataclass
class Trace:
    """Everything the engine asked for while handling one request."""

    actions: list[Action] = field(default_factory=list)
    info: MeshInfo = field(default_factory=MeshInfo)

    @property
    def sends(self) -> list[Attempt]:
        """The attempts sent upstream."""
        return [a.attempt for a in self.actions if isinstance(a, Send)]

    @property
    def final(self) -> Action:
        """How the request ended (Reply, Deliver or Raise)."""
        return self.actions[-1]

    @property
    def reply(self) -> Reply:
        """The local reply (fails if the request did not end with one)."""
        assert isinstance(self.final, Reply), self.final
        return self.final

    @property
    def sleeps(self) -> list[Sleep]:
        """The waits the engine asked for."""
        return [a for a in self.actions if isinstance(a, Sleep)]


def ok(_: Attempt) -> Outcome:
    """An upstream that always answers 200."""
    return Responded(200)


def drive(
    mesh: Mesh,
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    upstream: Upstream = ok,
    dns: Mapping[str, tuple[str, ...]] | None = None,
    content: bytes | Iterator[bytes] | None = None,
) -> Trace:
    """Run one request through ``mesh``'s engine; ``upstream`` answers every attempt."""
    request = httpx.Request(method, url, headers=headers, content=content)
    call = mesh.start_call(request_head(request))
    trace = Trace()
    action = call.start()
    while True:
        trace.actions.append(action)
        if isinstance(action, (Reply, Deliver, Raise)):
            break
        result: object = None
        if isinstance(action, Send):
            result = upstream(action.attempt)
        elif isinstance(action, Resolve):
            result = {name: (dns or {}).get(name, ()) for name in action.names}
        elif isinstance(action, Sleep) and isinstance(mesh.clock, FakeClock):
            mesh.clock.advance(action.seconds)
        elif isinstance(action, WaitForConnection):
            raise AssertionError("drive() runs one request at a time: nothing to wait for")
        action = call.send(result)
    trace.info = call.info
    call.finish()
    return trace
