"""Local replies: what Envoy answers itself, with its status, body, headers and flags.

These are the replies an application receives from an Istio sidecar when the mesh, not
the upstream, decides the outcome (``ARCHITECTURE.md``, outcomes table; Envoy
``source/common/stream_info/utility.h`` for the flags, ``router.cc`` for the bodies).
For a gRPC request every local reply takes gRPC's shape: HTTP 200, trailers-only, with
``grpc-status`` mapped from the HTTP status (Envoy ``Grpc::Utility::httpToGrpcStatus``)
and ``grpc-message`` carrying the body text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["LocalReply", "grpc_status_for_http", "http_status_for_grpc"]

# Envoy's httpToGrpcStatus (source/common/grpc/status.cc).
_HTTP_TO_GRPC = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}
_GRPC_UNKNOWN = 2


# Envoy's grpcToHttpStatus (source/common/grpc/status.cc): how outlier detection reads a
# gRPC status found in response headers.
_HTTP_FOR_GRPC = {
    0: 200,  # OK
    1: 499,  # CANCELLED
    2: 500,  # UNKNOWN
    3: 400,  # INVALID_ARGUMENT
    4: 504,  # DEADLINE_EXCEEDED
    5: 404,  # NOT_FOUND
    6: 409,  # ALREADY_EXISTS
    7: 403,  # PERMISSION_DENIED
    8: 429,  # RESOURCE_EXHAUSTED
    9: 400,  # FAILED_PRECONDITION
    10: 409,  # ABORTED
    11: 400,  # OUT_OF_RANGE
    12: 501,  # UNIMPLEMENTED
    13: 500,  # INTERNAL
    14: 503,  # UNAVAILABLE
    15: 500,  # DATA_LOSS
    16: 401,  # UNAUTHENTICATED
}


def http_status_for_grpc(grpc_status: int) -> int:
    """The HTTP status a gRPC status stands for (500 for an unknown one)."""
    return _HTTP_FOR_GRPC.get(grpc_status, 500)


def grpc_status_for_http(status: int) -> int:
    """The gRPC status Envoy reports for a local reply with HTTP ``status``."""
    return _HTTP_TO_GRPC.get(status, _GRPC_UNKNOWN)


@dataclass(frozen=True, slots=True)
class LocalReply:
    """An answer made by the mesh: status, body, extra headers, flags and details.

    ``details`` is Envoy's ``%RESPONSE_CODE_DETAILS%`` (``route_not_found``,
    ``no_healthy_upstream``, ...).
    """

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    flags: tuple[str, ...] = ()
    details: str = ""
    grpc_status: int | None = None

    def for_grpc(self) -> LocalReply:
        """The same reply as a gRPC client receives it from Envoy: trailers-only 200."""
        status = (
            self.grpc_status if self.grpc_status is not None else grpc_status_for_http(self.status)
        )
        headers = (
            ("content-type", "application/grpc"),
            ("grpc-status", str(status)),
            *((("grpc-message", self.body.decode("utf-8", "replace")),) if self.body else ()),
            *((k, v) for k, v in self.headers if k != "content-type"),
        )
        return LocalReply(200, b"", headers, self.flags, self.details, status)


def _text(
    status: int, body: str, flags: tuple[str, ...], details: str, *extra: tuple[str, str]
) -> LocalReply:
    headers = (("content-type", "text/plain"), *extra) if body else extra
    return LocalReply(status, body.encode(), headers, flags, details)


@functools.cache
def route_not_found() -> LocalReply:
    """A VirtualService covers the host but no rule matches: 404, ``NR``."""
    return LocalReply(404, flags=("NR",), details="route_not_found")


@functools.cache
def cluster_not_found() -> LocalReply:
    """The route names a subset (or host) no DestinationRule or registry defines: 503, ``NC``."""
    return LocalReply(503, flags=("NC",), details="cluster_not_found")


@functools.cache
def no_healthy_upstream() -> LocalReply:
    """No endpoint to send to (none selected, or all ejected): 503, ``UH``."""
    return _text(503, "no healthy upstream", ("UH",), "no_healthy_upstream")


@functools.cache  # replies are values: the constant ones are built once
def overflow() -> LocalReply:
    """A connection-pool limit is full: immediate 503, ``UO``, ``x-envoy-overloaded``."""
    return _text(
        503,
        "upstream connect error or disconnect/reset before headers. reset reason: overflow",
        ("UO",),
        "upstream_reset_before_response_started{overflow}",
        ("x-envoy-overloaded", "true"),
    )


def upstream_reset(
    reason: str, flag: str, *, retried: bool, transport_failure: str = ""
) -> LocalReply:
    """Connect failure or reset before response headers: 503 with Envoy's body.

    ``reason`` is Envoy's reset reason (``remote connection failure``, ``connection
    timeout``, ``connection termination``, ``remote reset``) and ``transport_failure``
    what the socket said (``delayed connect error: Connection refused``); ``retried``
    adds ``URX`` and the "retried and the latest" wording Envoy uses when retries ran
    out.
    """
    latest = "retried and the latest " if retried else ""
    body = (
        "upstream connect error or disconnect/reset before headers. "
        f"{latest}reset reason: {reason}"
    )
    if transport_failure:
        body += f", transport failure reason: {transport_failure}"
    flags = (flag, "URX") if retried else (flag,)
    details = f"upstream_reset_before_response_started{{{reason.replace(' ', '_')}}}"
    return _text(503, body, flags, details)


def upstream_timeout(*, per_try: bool, retried: bool = False) -> LocalReply:
    """A per-try or route timeout that ends the request: 504, ``UT``."""
    details = "upstream_per_try_timeout" if per_try else "response_timeout"
    flags = ("UT", "URX") if retried else ("UT",)
    return _text(504, "upstream request timeout", flags, details)


@functools.cache
def registry_only() -> LocalReply:
    """``REGISTRY_ONLY`` and an unknown host: Istio's BlackHoleCluster, 502, no flag."""
    return LocalReply(502, details="direct_response")


def fault_abort(status: int, grpc_status: int | None, *, delayed: bool) -> LocalReply:
    """A fault abort: the configured status, body ``fault filter abort``, ``FI``."""
    flags = ("DI", "FI") if delayed else ("FI",)
    reply = _text(status, "fault filter abort", flags, "fault_filter_abort")
    if grpc_status is None:
        return reply
    return LocalReply(reply.status, reply.body, reply.headers, flags, reply.details, grpc_status)
