"""Fault, redirect, direct response, retries and rewrite of an HTTP rule (``validation.go``)."""

from __future__ import annotations

from meshlib.config._problems import Path, Report
from meshlib.config._rules._common import (
    go_quote,
    validate_duration,
    validate_percentage,
    validate_port,
    validate_regex,
)
from meshlib.config._virtual_service import (
    HTTPDirectResponse,
    HTTPFaultInjection,
    HTTPRetry,
    HTTPRewrite,
    HTTPRoute,
)

__all__ = [
    "GRPC_STATUS_NAMES",
    "RETRY_ON_POLICIES",
    "validate_direct_response",
    "validate_fault",
    "validate_redirect",
    "validate_retries",
    "validate_rewrite",
]

#: ``supportedRetryOnPolicies``: Envoy's ``x-envoy-retry-on`` and ``x-envoy-retry-grpc-on``.
RETRY_ON_POLICIES = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "envoy-ratelimited",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)
#: Status codes that Go's ``http.StatusText`` names: the numeric ``retryOn`` tokens Istio accepts.
HTTP_STATUS_TEXT_CODES = frozenset(
    {100, 101, 102, 103}
    | {200, 201, 202, 203, 204, 205, 206, 207, 208, 226}
    | {300, 301, 302, 303, 304, 305, 307, 308}
    | set(range(400, 419))
    | {421, 422, 423, 424, 425, 426, 428, 429, 431, 451}
    | {500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511}
)
#: ``pkg/util/grpc`` status names accepted in ``fault.abort.grpcStatus``.
GRPC_STATUS_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
_LARGE_BODY = 100 * 1024
_MAX_BODY = 1024 * 1024


def _validate_http_status(status: int, report: Report, path: Path) -> None:
    """``validateHTTPStatus``: 200..600 (Istio's message says 200-599; 600 passes)."""
    if status < 200 or status > 600:
        report.error(path, f"HTTP status {status} is not in range 200-599")


def validate_fault(fault: HTTPFaultInjection | None, report: Report, path: Path) -> None:
    """``validateHTTPFaultInjection`` with its abort and delay checks."""
    if fault is None:
        return
    if fault.abort is None and fault.delay is None:
        report.error(path, "HTTP fault injection must have an abort and/or a delay")
    if fault.abort is not None:
        abort, where = fault.abort, (*path, "abort")
        validate_percentage(abort.percentage, report, (*where, "percentage"))
        if abort.grpc_status is not None and abort.grpc_status not in GRPC_STATUS_NAMES:
            report.error(
                (*where, "grpcStatus"),
                f"gRPC status {go_quote(abort.grpc_status)} is not supported. See "
                "https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of "
                "supported codes, for example 'NOT_FOUND'",
            )
        elif abort.http2_error is not None:
            report.error((*where, "http2Error"), "HTTP/2 abort fault injection not supported yet")
        elif abort.http_status is not None:
            _validate_http_status(abort.http_status, report, (*where, "httpStatus"))
    if fault.delay is not None:
        delay, where = fault.delay, (*path, "delay")
        validate_percentage(delay.percentage, report, (*where, "percentage"))
        validate_duration(delay.fixed_delay, report, (*where, "fixedDelay"))
        if delay.exponential_delay is not None:
            validate_duration(delay.exponential_delay, report, (*where, "exponentialDelay"))
            report.error((*where, "exponentialDelay"), "exponentialDelay not supported yet")


def validate_redirect(route: HTTPRoute, report: Report, path: Path) -> None:
    """``validateHTTPRedirect``: Istio reports only the first problem of a redirect."""
    redirect, where = route.redirect, (*path, "redirect")
    if redirect is None:
        return
    if redirect.uri is not None and redirect.prefix_rewrite is not None:
        report.error(where, "redirect may only specify one of uri or prefix_rewrite")
    elif not (
        redirect.uri
        or redirect.prefix_rewrite
        or redirect.authority
        or redirect.scheme
        or redirect.port is not None
        or redirect.derive_port is not None
    ):
        report.error(where, "redirect must specify URI, authority, scheme, or port")
    elif redirect.prefix_rewrite is not None and any(
        m.uri is None or m.uri.prefix is None for m in route.match
    ):
        report.error((*where, "prefixRewrite"), "prefix_rewrite requires prefix URI matches")
    elif redirect.redirect_code and not 300 <= redirect.redirect_code <= 399:
        report.error(
            (*where, "redirectCode"),
            f"{redirect.redirect_code} is not a valid redirect code, must be 3xx",
        )
    elif redirect.scheme and redirect.scheme not in ("http", "https"):
        report.error((*where, "scheme"), 'invalid redirect scheme, must be "http" or "https"')
    elif redirect.port:
        validate_port(redirect.port, report, (*where, "port"))


def validate_direct_response(
    response: HTTPDirectResponse | None, report: Report, path: Path
) -> None:
    """``validateHTTPDirectResponse``: status 200..600, body under 1 MiB."""
    if response is None:
        return
    body = response.body
    if body is not None:
        size = len(body.string.encode()) if body.string is not None else len(body.bytes or b"")
        if size > _MAX_BODY:
            report.error(
                (*path, "body"),
                "large direct_responses may impact control plane performance, must be less "
                "than 1MB",
            )
        elif size > _LARGE_BODY:
            report.warn(
                (*path, "body"), "large direct_responses may impact control plane performance"
            )
    _validate_http_status(response.status, report, (*path, "status"))


def validate_retries(retries: HTTPRetry | None, report: Report, path: Path) -> None:
    """``validateHTTPRetry``."""
    if retries is None:
        return
    if retries.attempts < 0:
        report.error((*path, "attempts"), "attempts cannot be negative")
    if retries.attempts == 0 and (
        retries.per_try_timeout is not None
        or retries.retry_on
        or retries.retry_remote_localities is not None
    ):
        report.error(path, "http retry policy configured when attempts are set to 0 (disabled)")
    validate_duration(retries.per_try_timeout, report, (*path, "perTryTimeout"))
    if retries.retry_on:
        for token in retries.retry_on.split(","):  # Istio does not trim the tokens
            if (
                token not in RETRY_ON_POLICIES
                and _status_code(token) not in HTTP_STATUS_TEXT_CODES
            ):
                report.error(
                    (*path, "retryOn"), f"{go_quote(token)} is not a valid retryOn policy"
                )
    validate_duration(retries.backoff, report, (*path, "backoff"))


def _status_code(token: str) -> int:
    """Go's ``strconv.Atoi``, 0 when the token is not a decimal integer."""
    body = token[1:] if token[:1] in "+-" else token
    return int(token) if body.isascii() and body.isdigit() else 0


def validate_rewrite(rewrite: HTTPRewrite | None, report: Report, path: Path) -> None:
    """``validateHTTPRewrite``: Istio reports only the first problem of a rewrite."""
    if rewrite is None:
        return
    regex = rewrite.uri_regex_rewrite
    if rewrite.uri and regex is not None:
        report.error(path, "rewrite may only contain one of URI or UriRegexRewrite")
    elif not rewrite.uri and regex is None and not rewrite.authority:
        report.error(
            path,
            "rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only "
            "one of URI or UriRegexRewrite may be specified",
        )
    elif regex is not None:
        where = (*path, "uriRegexRewrite")
        if not regex.match or not regex.rewrite:
            report.error(
                where,
                "UriRegexRewrite has errors: UriRegexRewrite requires both Rewrite and Match "
                "fields to be specified",
            )
        else:
            validate_regex(
                regex.match, "HTTPRewrite.UriRegexRewrite.Match", report, (*where, "match")
            )
