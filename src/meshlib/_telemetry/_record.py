"""What one finished call looked like: the facts spans, metrics and the access log share."""

from __future__ import annotations

from dataclasses import dataclass

from meshlib._core._request import RequestHead
from meshlib._endpoints import Endpoint
from meshlib._info import MeshInfo

__all__ = ["Finished"]


@dataclass(frozen=True, slots=True)
class Finished:
    """One call, once its response body is closed (or its local reply built, or its
    exception raised).

    ``status`` is 0 when the caller got no response; ``flags`` and ``details`` are
    Envoy's (``-`` for no flag), with ``DC`` added when the caller gave up or failed
    on its own (its httpx timeout, a cancellation). Byte counts are bodies: the request's
    ``content-length`` and the response bytes read (compressed, as they came). Times are
    on the mesh's clock, in milliseconds.
    """

    head: RequestHead
    info: MeshInfo
    request_id: str
    status: int
    grpc_status: str
    flags: str
    details: str
    request_bytes: int
    response_bytes: int
    duration_ms: float
    endpoint: Endpoint | None = None
    peer_principal: str | None = None
    upstream_service_ms: int | None = None
    upstream_local_address: str | None = None
    transport_failure: str = ""
    protocol: str = "HTTP/1.1"
    error: BaseException | None = None
