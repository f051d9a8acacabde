"""Has something replaced httpx's own send path? Then meshlib sends through it.

Mocking libraries intercept httpx below the client: pytest-httpx replaces
``httpx.HTTPTransport.handle_request`` (and the async twin), respx replaces httpcore's
``ConnectionPool.handle_request`` and ``HTTPConnection.handle_request`` (and theirs).
meshlib's own HTTP/1.1 pools (:mod:`._http11`, :mod:`._async_http11`) use none of
them, so while one is replaced a pool sends through a real httpx transport instead, and
the mock sees meshlib's attempts just as it would see plain httpx's requests.

A wrapper that keeps the original (``__wrapped__``, as OpenTelemetry's httpx
instrumentation and ``functools.wraps`` leave it) is not a replacement: meshlib already
keeps such instrumentation out of its attempts (one span per attempt, meshlib's).
"""

from __future__ import annotations

from typing import Any

import httpcore
import httpx

__all__ = ["async_send_path_replaced", "send_path_replaced"]


class _SendPath:
    """Methods that mocks replace, and whether they are replaced now (worked out again
    only when one of them changes)."""

    def __init__(self, *targets: tuple[type, str]) -> None:
        self._targets = targets
        self._originals = self._current()
        self._seen, self._replaced = self._originals, False

    def _current(self) -> tuple[Any, ...]:
        return tuple(getattr(owner, name) for owner, name in self._targets)

    def replaced(self) -> bool:
        current = self._current()
        if current != self._seen:
            self._replaced = any(
                _innermost(now) is not original
                for now, original in zip(current, self._originals, strict=True)
            )
            self._seen = current
        return self._replaced


def _innermost(function: Any) -> Any:
    """``function`` with every ``__wrapped__`` layer taken off."""
    for _ in range(100):
        inner = getattr(function, "__wrapped__", None)
        if inner is None:
            break
        function = inner
    return function


_SYNC = _SendPath(
    (httpx.HTTPTransport, "handle_request"),
    (httpcore.ConnectionPool, "handle_request"),
    (httpcore.HTTPConnection, "handle_request"),
)
_ASYNC = _SendPath(
    (httpx.AsyncHTTPTransport, "handle_async_request"),
    (httpcore.AsyncConnectionPool, "handle_async_request"),
    (httpcore.AsyncHTTPConnection, "handle_async_request"),
)


def send_path_replaced() -> bool:
    """True while httpx's or httpcore's sync send path is replaced (a mock is active)."""
    return _SYNC.replaced()


def async_send_path_replaced() -> bool:
    """True while httpx's or httpcore's async send path is replaced."""
    return _ASYNC.replaced()
