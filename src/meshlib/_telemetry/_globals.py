"""The OpenTelemetry API's global providers, looked up cheaply on every request.

``trace.get_tracer_provider()`` and ``metrics.get_meter_provider()`` read the environment
on every call until a provider is set (about a microsecond each, twice per request).
The API keeps the provider it was given in a module variable; reading that variable is
free. When the environment names a provider (``OTEL_PYTHON_TRACER_PROVIDER``, read when
meshlib is imported) or the variable is not where this API version keeps it, the API's
own getter is used instead, with the same result.
"""

from __future__ import annotations

import os

from opentelemetry import metrics, trace
from opentelemetry.environment_variables import (
    OTEL_PYTHON_METER_PROVIDER,
    OTEL_PYTHON_TRACER_PROVIDER,
)
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

try:  # where the API keeps the meter provider: private, hence the guard
    from opentelemetry.metrics import _internal as _metrics_state
except ImportError:  # pragma: no cover - a later API may move it
    _metrics_state = None  # type: ignore[assignment]

__all__ = ["meter_provider", "tracer_provider"]

_UNKNOWN = object()
_TRACER_FROM_ENVIRONMENT = OTEL_PYTHON_TRACER_PROVIDER in os.environ
_METER_FROM_ENVIRONMENT = OTEL_PYTHON_METER_PROVIDER in os.environ


def tracer_provider() -> TracerProvider | None:
    """The global tracer provider, or None while none is set (no SDK)."""
    provider = getattr(trace, "_TRACER_PROVIDER", _UNKNOWN)
    if provider is None and not _TRACER_FROM_ENVIRONMENT:
        return None
    if isinstance(provider, TracerProvider):
        return provider
    return trace.get_tracer_provider()


def meter_provider() -> MeterProvider | None:
    """The global meter provider, or None while none is set (no SDK)."""
    provider = getattr(_metrics_state, "_METER_PROVIDER", _UNKNOWN)
    if provider is None and not _METER_FROM_ENVIRONMENT:
        return None
    if isinstance(provider, MeterProvider):
        return provider
    return metrics.get_meter_provider()
