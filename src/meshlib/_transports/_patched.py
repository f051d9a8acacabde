"""Has something replaced httpx's own send path? Then meshlib sends through it.

Mocking libraries intercept httpx below the client: pytest-httpx replaces
``httpx.HTTPTransport.handle_request``, respx replaces httpcore's
``ConnectionPool.handle_request`` and ``HTTPConnection.handle_request``. meshlib's own
HTTP/1.1 pool (:mod:`._http11`) uses neither, so while one of them is replaced the pool
sends through a real ``httpx.HTTPTransport`` instead, and the mock sees meshlib's
attempts just as it would see plain httpx's requests.

A wrapper that keeps the original (``__wrapped__``, as OpenTelemetry's httpx
instrumentation and ``functools.wraps`` leave it) is not a replacement: meshlib already
keeps such instrumentation out of its attempts (one span per attempt, meshlib's).
"""

from __future__ import annotations

from typing import Any

import httpcore
import httpx

__all__ = ["send_path_replaced"]

_ORIGINALS = (
    httpx.HTTPTransport.handle_request,
    httpcore.ConnectionPool.handle_request,
    httpcore.HTTPConnection.handle_request,
)
_verdict: tuple[tuple[Any, ...], bool] = (_ORIGINALS, False)


def send_path_replaced() -> bool:
    """True while httpx's or httpcore's sync send path is replaced (a mock is active)."""
    global _verdict
    current = (
        httpx.HTTPTransport.handle_request,
        httpcore.ConnectionPool.handle_request,
        httpcore.HTTPConnection.handle_request,
    )
    seen, replaced = _verdict
    if current != seen:
        replaced = any(
            _innermost(now) is not original
            for now, original in zip(current, _ORIGINALS, strict=True)
        )
        _verdict = (current, replaced)
    return replaced


def _innermost(function: Any) -> Any:
    """``function`` with every ``__wrapped__`` layer taken off."""
    seen = 0
    while (inner := getattr(function, "__wrapped__", None)) is not None and seen < 100:
        function, seen = inner, seen + 1
    return function
