"""Run the same requests through the sync shell, and the async shell on asyncio and trio."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from meshlib import Mesh, MeshInfo, Upstream


@dataclass(frozen=True)
class Sent:
    """A request to send: method, URL, headers, body."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None


@dataclass(frozen=True)
class Got:
    """What came back: the response (fully read) or the exception raised."""

    status: int = 0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    info: MeshInfo | None = None
    error: BaseException | None = None

    @property
    def text(self) -> str:
        return self.body.decode()


def _got(response: httpx.Response) -> Got:
    return Got(
        response.status_code,
        response.content,
        dict(response.headers),
        response.extensions.get("meshlib"),
    )


InnerSync = Callable[[Upstream], httpx.BaseTransport]
InnerAsync = Callable[[Upstream], httpx.AsyncBaseTransport]


@dataclass(frozen=True)
class Shell:
    """One way of sending: ``sync``, ``asyncio`` or ``trio``."""

    name: str

    def send(
        self,
        mesh: Mesh,
        requests: Sequence[Sent],
        *,
        inner: Callable[[Upstream], Any] | None = None,
        timeout: httpx.Timeout | float = 5.0,
    ) -> list[Got]:
        """Send ``requests`` one after the other through one client of this shell."""
        if self.name == "sync":
            return self._send_sync(mesh, requests, inner, timeout)
        return anyio.run(self._send_async, mesh, requests, inner, timeout, backend=self.name)

    @staticmethod
    def _send_sync(mesh: Mesh, requests: Sequence[Sent], inner: Any, timeout: Any) -> list[Got]:
        results = []
        with httpx.Client(transport=mesh.transport(inner), timeout=timeout) as client:
            for sent in requests:
                try:
                    response = client.request(
                        sent.method, sent.url, headers=sent.headers, content=sent.content
                    )
                except httpx.HTTPError as error:
                    results.append(Got(error=error))
                else:
                    results.append(_got(response))
        return results

    @staticmethod
    async def _send_async(
        mesh: Mesh, requests: Sequence[Sent], inner: Any, limits: Any
    ) -> list[Got]:
        results = []
        async with httpx.AsyncClient(
            transport=mesh.async_transport(inner), timeout=limits
        ) as client:
            for sent in requests:
                try:
                    response = await client.request(
                        sent.method, sent.url, headers=sent.headers, content=sent.content
                    )
                except httpx.HTTPError as error:
                    results.append(Got(error=error))
                else:
                    results.append(_got(response))
        return results


SHELLS = [Shell("sync"), Shell("asyncio"), Shell("trio")]
