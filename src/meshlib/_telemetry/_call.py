"""Following one call: its spans, its last attempt, and the moment it is over.

A call is over when two things have happened, in either order: the caller has its
answer (the response, or the exception), and the mesh has released the call
(:meth:`meshlib.Mesh.finish_call`: the response body closed, the local reply built, the
exception on its way). Only then are the duration and the body sizes known, so only then
are the INTERNAL span ended, the metrics recorded and the access-log line written.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import httpx

from meshlib._core._actions import Attempt
from meshlib._info import envoy_order
from meshlib._telemetry import _tracing
from meshlib._telemetry._record import Finished

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

    from meshlib._core._engine import Call
    from meshlib._telemetry._facade import Telemetry

__all__ = ["CallObserver"]

_TRANSPORT_FAILURE = "transport failure reason: "


class CallObserver:
    """What telemetry keeps of one call until it is over."""

    def __init__(self, telemetry: Telemetry, call: Call, tracer: Tracer | None) -> None:
        self._telemetry = telemetry
        self._call = call
        self._tracer = tracer
        self._span: tuple[Span, Context] | None = None
        if tracer is not None:
            self._span = _tracing.start_call(tracer, call.head)
        self._lock = threading.Lock()
        self._released = False
        self._over = False
        self._response: httpx.Response | None = None
        self._error: BaseException | None = None
        # The last attempt: where it went, when, and what its connection said.
        self._endpoint: Any = None
        self._sent_at = 0.0
        self._upstream_ms: int | None = None
        self._peer: str | None = None
        self._local_address: str | None = None

    # ------------------------------------------------------------------- attempts

    def attempt_started(self, attempt: Attempt, request: httpx.Request) -> object:
        """An attempt is about to go: remember it, start its span (with its own
        ``traceparent`` in ``request``); returns what :meth:`attempt_ended` takes."""
        self._endpoint = attempt.host.endpoint if attempt.host is not None else None
        self._sent_at = self._telemetry.clock.now()
        self._upstream_ms = self._peer = self._local_address = None
        span = self._span
        if span is None or self._tracer is None:
            return None
        return _tracing.start_attempt(
            self._tracer, span[1], self._call.head, attempt, request.headers
        )

    def attempt_ended(
        self,
        started: object,
        attempt: Attempt,
        response: httpx.Response | None,
        error: BaseException | None,
    ) -> None:
        """The attempt has its response headers, or failed."""
        if response is not None:
            elapsed = self._telemetry.clock.now() - self._sent_at
            self._upstream_ms = int(elapsed * 1000)
            stream = response.extensions.get("network_stream")
            if stream is not None:
                if attempt.scheme == "https":
                    self._peer = _peer_principal(stream)
                if self._telemetry.access_log:
                    self._local_address = _local_address(stream)
        if isinstance(started, tuple):
            span, token = started
            status = response.status_code if response is not None else 0
            _tracing.end_attempt(span, token, status, error)

    # ---------------------------------------------------------------------- the end

    def answered(self, response: httpx.Response) -> None:
        """The caller gets ``response``."""
        with self._lock:
            if self._over:
                return
            self._response = response
            over = self._over = self._released
        if over:
            self._emit()

    def released(self, error: BaseException | None) -> None:
        """The mesh released the call; ``error`` is the exception the caller gets."""
        with self._lock:
            if self._over:
                return
            if error is not None and self._response is None:
                self._error = error
            self._released = True
            over = self._over = self._response is not None or self._error is not None
        if over:
            self._emit()

    def _emit(self) -> None:
        call, response, error = self._call, self._response, self._error
        head, info = call.head, call.info
        flags, details = info.flags, info.details
        status, grpc_status, body_bytes, protocol, failure = 0, "", 0, "HTTP/1.1", ""
        if response is not None:
            status = response.status_code
            body_bytes = response.num_bytes_downloaded  # as read through httpx, undecoded
            if not body_bytes:
                body_bytes = _content_length(response)
            if head.is_grpc:
                grpc_status = response.headers.get("grpc-status", "")
            version = response.extensions.get("http_version")
            if version == b"HTTP/2":
                protocol = "HTTP/2"
            if "UF" in flags:  # a local reply, read above: its body names the reason
                failure = response.text.partition(_TRANSPORT_FAILURE)[2]
        elif error is not None and getattr(error, "mesh_info", None) is None:
            # Not the mesh's upstream error: the caller gave up (its own timeout, a
            # cancellation), which a sidecar sees as the downstream going away.
            flags = envoy_order((*flags, "DC"))
            details = details or "downstream_remote_disconnect"
        length = head.headers.get("content-length", "")
        finished = Finished(
            head=head,
            info=info,
            request_id=call.request_id,
            status=status,
            grpc_status=grpc_status,
            flags=",".join(flags) or "-",
            details=details,
            request_bytes=int(length) if length.isdigit() else 0,
            response_bytes=body_bytes,
            duration_ms=(self._telemetry.clock.now() - call.started) * 1000,
            endpoint=self._endpoint if info.attempts else None,
            peer_principal=self._peer,
            upstream_service_ms=self._upstream_ms if response is not None else None,
            upstream_local_address=self._local_address,
            transport_failure=failure,
            protocol=protocol,
            error=error,
        )
        self._telemetry.emit(finished, self._span[0] if self._span is not None else None)


def _content_length(response: httpx.Response) -> int:
    """The size of a body given whole (a local reply, a mock's), else 0 (none read)."""
    try:
        return len(response.content)
    except httpx.ResponseNotRead:
        if isinstance(response.stream, httpx.ByteStream):  # in memory: a local reply
            return len(response.read())
        return 0


def _peer_principal(stream: Any) -> str | None:
    """The SPIFFE ID in the verified peer certificate of a TLS connection, if any."""
    try:
        ssl_object = stream.get_extra_info("ssl_object")
        certificate = ssl_object.getpeercert() if ssl_object is not None else None
    except Exception:  # a stream of another kind: no principal
        return None
    for kind, value in (certificate or {}).get("subjectAltName", ()):
        if kind == "URI" and value.startswith("spiffe://"):
            return str(value)
    return None


def _local_address(stream: Any) -> str | None:
    """``ip:port`` of the connection's own end (``%UPSTREAM_LOCAL_ADDRESS%``)."""
    try:
        address = stream.get_extra_info("client_addr")
    except Exception:  # a stream of another kind: unknown
        return None
    if not isinstance(address, tuple) or len(address) < 2:
        return None
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
