"""The core's view of a request: what routing needs, nothing about sockets or httpx."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

__all__ = ["RequestHead"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(slots=True)  # built per request: frozen would triple its cost (see _actions)
class RequestHead:
    """Method, URL parts and headers of one request.

    ``headers`` has lower-case names; a header sent several times appears once, its
    values joined with ``,`` as Envoy joins them for matching. ``host`` is the
    authority's host without port, ``authority`` the ``Host`` header as sent.
    ``replayable`` says whether the body can be sent again (retries and mirrors).
    """

    method: str
    scheme: str
    host: str
    port: int
    authority: str
    path: str
    query: str
    headers: Mapping[str, str]
    replayable: bool = True
    #: The separate values of headers sent on several lines (Envoy hashes them apart).
    repeated: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_grpc(self) -> bool:
        """A gRPC request (``content-type: application/grpc*``): replies take gRPC's shape."""
        return self.headers.get("content-type", "").startswith("application/grpc")

    @property
    def query_params(self) -> dict[str, str]:
        """Query parameters, the first value of each, decoded (Envoy matches on these)."""
        params: dict[str, str] = {}
        for name, value in parse_qsl(self.query, keep_blank_values=True):
            params.setdefault(name, value)
        return params

    @property
    def default_port(self) -> bool:
        """Is the port the scheme's default (80 for http, 443 for https)?"""
        return _DEFAULT_PORTS.get(self.scheme) == self.port

    @staticmethod
    def port_for(scheme: str, port: int | None) -> int:
        """The port a URL means: the explicit one, else the scheme's default."""
        return port if port is not None else _DEFAULT_PORTS.get(scheme, 80)
