"""Telemetry: OpenTelemetry spans, Istio's standard metrics and Envoy's access log.

Through the OpenTelemetry API only: the application brings the SDK (and exporters), as
it does for any library. See ``docs/telemetry.md``.
"""

from meshlib._telemetry._facade import (
    Telemetry,
    answered,
    asend_attempt,
    send_attempt,
    unobserved,
)

__all__ = ["Telemetry", "answered", "asend_attempt", "send_attempt", "unobserved"]
