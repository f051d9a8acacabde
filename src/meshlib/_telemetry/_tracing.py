"""Spans: one INTERNAL span per call, one CLIENT span per attempt sent over the wire.

The INTERNAL span (``{method} {service}``) is the application's call through the mesh:
routing, faults, every attempt and backoff, and the response body; its attributes are
meshlib's, all under ``meshlib.*``. It ends when the call is over: the response body
closed, the local reply built, or the exception raised.

Each attempt is a CLIENT span named by its method, a child of the INTERNAL span, with
the stable HTTP client attributes (``url.full``, ``server.*`` of the URL the application
called, ``network.peer.*`` of the endpoint, ``http.request.resend_count`` from the second
attempt on). Its context goes into that attempt's own request headers through the global
propagator, so each attempt carries its own ``traceparent``. A CLIENT span ends when the
response headers arrive (or the attempt fails): an attempt that is retried is never read
further, and the HTTP semantic conventions ask client spans not to end in a cleanup the
application may never trigger; the body's time is in the INTERNAL span.

While an attempt is under way its context also carries OpenTelemetry's "suppress HTTP
instrumentation" key, so opentelemetry-instrumentation-httpx, which wraps
``httpx.HTTPTransport`` (the transport beneath meshlib), does not add a second CLIENT
span for the same attempt.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    TracerProvider,
)

from meshlib._core._actions import Attempt
from meshlib._core._request import RequestHead
from meshlib._telemetry._globals import tracer_provider
from meshlib._telemetry._record import Finished
from meshlib._version import __version__

try:  # the keys instrumentations check; private names of the API, hence the guard
    from opentelemetry.context import (
        _SUPPRESS_HTTP_INSTRUMENTATION_KEY as _SUPPRESS_HTTP,
    )
    from opentelemetry.context import (
        _SUPPRESS_INSTRUMENTATION_KEY as _SUPPRESS_ALL,
    )
except ImportError:  # pragma: no cover - a later API may move them
    _SUPPRESS_HTTP = _SUPPRESS_ALL = ""

__all__ = [
    "Tracers",
    "detach",
    "end_attempt",
    "end_call",
    "error_type",
    "start_attempt",
    "start_call",
    "suppressed",
]

_INACTIVE = (ProxyTracerProvider, NoOpTracerProvider)
_KNOWN_METHODS = frozenset(
    ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE")
)


class Tracers:
    """The tracer to use now: the explicit provider's, else the global provider's.

    Looked up on every call and never remembered as "off": an SDK installed later takes
    effect from the next request. Without an SDK (the API's proxy or no-op provider)
    there is no tracer, and meshlib makes no spans at all.
    """

    def __init__(self, provider: TracerProvider | None) -> None:
        self._provider = provider
        self._cached: tuple[TracerProvider, Tracer] | None = None

    def current(self) -> Tracer | None:
        """The tracer, or None when no SDK is installed."""
        provider = self._provider or tracer_provider()
        if provider is None:
            return None
        cached = self._cached
        if cached is not None and cached[0] is provider:
            return cached[1]
        if isinstance(provider, _INACTIVE):
            return None
        tracer = provider.get_tracer("meshlib", __version__)
        self._cached = (provider, tracer)
        return tracer


def start_call(tracer: Tracer, head: RequestHead) -> tuple[Span, Context] | None:
    """The INTERNAL span of a call, and the context its attempts start from (None when
    the caller's context suppresses instrumentation)."""
    parent = otel_context.get_current()
    if _SUPPRESS_ALL and parent.get(_SUPPRESS_ALL):
        return None
    span = tracer.start_span(f"{head.method} {head.host}", context=parent)
    return span, trace.set_span_in_context(span, parent)


def _method(method: str) -> str:
    return method if method in _KNOWN_METHODS else "_OTHER"


def start_attempt(
    tracer: Tracer, parent: Context, head: RequestHead, attempt: Attempt, headers: Any
) -> tuple[Span, object]:
    """Start the CLIENT span of ``attempt``, write its context into ``headers`` (the
    attempt's request headers) and make it current; returns the span and the token to
    :func:`end_attempt` with."""
    method = _method(head.method)
    query = f"?{head.query}" if head.query else ""
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "url.full": f"{head.scheme}://{head.authority}{head.path}{query}",
        "server.address": head.host,
        "server.port": head.port,
        "network.peer.address": attempt.address,
        "network.peer.port": attempt.port,
    }
    if method == "_OTHER":
        attributes["http.request.method_original"] = head.method
    if attempt.number > 1:
        attributes["http.request.resend_count"] = attempt.number - 1
    span = tracer.start_span(method, context=parent, kind=SpanKind.CLIENT, attributes=attributes)
    context = trace.set_span_in_context(span, parent)
    propagate.inject(headers, context=context)
    if _SUPPRESS_HTTP:
        context = otel_context.set_value(_SUPPRESS_HTTP, value=True, context=context)
    return span, otel_context.attach(context)


def end_attempt(span: Span, token: object, status: int, error: BaseException | None) -> None:
    """End an attempt's CLIENT span: at its response headers (``status``) or its error."""
    otel_context.detach(token)  # type: ignore[arg-type]
    if error is not None:
        kind = error_type(error)
        span.set_attribute("error.type", kind)
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, str(error) or kind))
    else:
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_attribute("error.type", str(status))
            span.set_status(Status(StatusCode.ERROR))
    span.end()


def end_call(span: Span, finished: Finished) -> None:
    """End a call's INTERNAL span with what the mesh did (``meshlib.*``)."""
    info = finished.info
    if info.destination:
        span.update_name(f"{finished.head.method} {info.destination}")
    optional = (
        ("meshlib.route", info.route),
        ("meshlib.virtual_service", info.virtual_service),
        ("meshlib.destination_service", info.destination),
        ("meshlib.subset", info.subset),
        ("meshlib.upstream_cluster", info.cluster),
        ("meshlib.upstream_host", info.endpoint),
        ("meshlib.response_code_details", finished.details),
    )
    attributes: dict[str, str | int] = {
        "meshlib.response_code": finished.status,
        "meshlib.response_flags": finished.flags,
        "meshlib.attempts": info.attempts,
        "meshlib.request_id": finished.request_id,
        **{name: value for name, value in optional if value},
    }
    span.set_attributes(attributes)
    error = finished.error
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, str(error) or error_type(error)))
    elif finished.status >= 400:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


def error_type(error: BaseException) -> str:
    """``error.type``: the exception's class, named from its top-level package
    (``httpx.ConnectError``, ``trio.Cancelled``; builtins bare)."""
    cls = type(error)
    package = cls.__module__.partition(".")[0]
    return cls.__qualname__ if package == "builtins" else f"{package}.{cls.__qualname__}"


def suppressed() -> object | None:
    """Make the current context suppress HTTP instrumentation (for a mirror, which has
    no span of its own); returns the token to detach, or None."""
    if not _SUPPRESS_HTTP:
        return None
    return otel_context.attach(otel_context.set_value(_SUPPRESS_HTTP, value=True))


def detach(token: object) -> None:
    """Restore the context a token from :func:`suppressed` replaced."""
    otel_context.detach(token)  # type: ignore[arg-type]
