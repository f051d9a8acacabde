"""The access log: one line per call in Istio's default TEXT format, to ``meshlib.access``.

Istio's format (``pilot/pkg/model/telemetry_logging.go``, ``envoy-semantics.md`` §9.3)::

    [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
    %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
    "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
    %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
    "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW%
    %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
    %REQUESTED_SERVER_NAME% %ROUTE_NAME%

on one line. Values a library does not have (the downstream connection: there is none,
the application calls in-process) print ``-``, as Envoy prints an absent value.
"""

from __future__ import annotations

import datetime
import logging

from meshlib._telemetry._record import Finished

__all__ = ["access_log_line", "logger"]

#: Where the lines go (INFO). Off unless ``Mesh(..., access_log=True)``.
logger = logging.getLogger("meshlib.access")


def _value(text: str | int | None) -> str:
    """A field as Envoy prints it: ``-`` when absent or empty."""
    if text is None or text == "":
        return "-"
    return str(text)


def _start_time(finished: Finished, now: datetime.datetime) -> str:
    """``%START_TIME%``: when the call started, UTC, Envoy's default millisecond form."""
    start = now - datetime.timedelta(milliseconds=finished.duration_ms)
    return start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{start.microsecond // 1000:03d}Z"


def access_log_line(finished: Finished, now: datetime.datetime | None = None) -> str:
    """The line for ``finished``; ``now`` (UTC) is when it finished (the wall clock's
    now by default: the start time is that less the call's duration)."""
    head, info = finished.head, finished.info
    headers = head.headers
    path = headers.get("x-envoy-original-path") or (
        f"{head.path}?{head.query}" if head.query else head.path
    )
    failure = finished.transport_failure.replace(" ", "_")
    upstream_time = finished.upstream_service_ms
    fields = (
        f"[{_start_time(finished, now or datetime.datetime.now(datetime.timezone.utc))}]",
        f'"{head.method} {path} {finished.protocol}"',
        str(finished.status),
        finished.flags,
        _value(finished.details.replace(" ", "_")),
        "-",  # %CONNECTION_TERMINATION_DETAILS%
        f'"{_value(failure)}"',
        str(finished.request_bytes),
        str(finished.response_bytes),
        str(int(finished.duration_ms)),
        _value(upstream_time),
        f'"{_value(headers.get("x-forwarded-for"))}"',
        f'"{_value(headers.get("user-agent"))}"',
        f'"{_value(finished.request_id)}"',
        f'"{_value(head.authority)}"',
        f'"{_value(info.endpoint)}"',
        _value(info.cluster),
        _value(finished.upstream_local_address),
        "-",  # %DOWNSTREAM_LOCAL_ADDRESS%: no downstream connection
        "-",  # %DOWNSTREAM_REMOTE_ADDRESS%
        "-",  # %REQUESTED_SERVER_NAME%: no downstream TLS
        _value(info.route),
    )
    return " ".join(fields)
