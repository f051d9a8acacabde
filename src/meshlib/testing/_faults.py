"""Faults from code: ``meshlib.testing.fault`` as a context manager or a decorator."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from meshlib._core._fault import GRPC_CODES, FaultPolicy
from meshlib._fault_scope import InjectedFault, in_context

if TYPE_CHECKING:
    from meshlib._mesh import Mesh

__all__ = ["FaultInjection", "fault"]

F = TypeVar("F", bound=Callable[..., Any])

_PER_MILLION = 1_000_000


class FaultInjection:
    """A fault to inject while a block or a test function runs.

    Use it as a context manager (``with fault(...):``) or a decorator (sync and async
    functions alike). Each entry registers the fault anew, so one object may decorate a
    function that runs in several threads or tasks at once.
    """

    def __init__(self, injected: InjectedFault, mesh: Mesh | None) -> None:
        self.injected = injected
        self._mesh = mesh
        self._entered: list[ExitStack] = []

    @contextmanager
    def _scope(self) -> Iterator[None]:
        if self._mesh is not None:
            with self._mesh.injected_faults.injected(self.injected):
                yield
        else:
            with in_context(self.injected):
                yield

    def __enter__(self) -> FaultInjection:
        stack = ExitStack()
        stack.enter_context(self._scope())
        self._entered.append(stack)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._entered.pop().close()

    def __call__(self, function: F) -> F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self._scope():
                    return await function(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._scope():
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]


def fault(
    host: str,
    *,
    delay: float | None = None,
    abort: int | None = None,
    grpc_status: int | str | None = None,
    percent: float = 100.0,
    subset: str | None = None,
    path: str | None = None,
    headers: Mapping[str, str] | None = None,
    mesh: Mesh | None = None,
) -> FaultInjection:
    """Inject a delay and/or an abort into the requests for ``host``.

    Args:
        host: the destination, as the caller writes it (``ratings``) or as an FQDN; an
            unknown external host (passthrough) works too.
        delay: seconds to wait before the request goes on (flag ``DI``).
        abort: the HTTP status to answer instead of calling the upstream (flag ``FI``).
        grpc_status: a gRPC status (number or name, ``UNAVAILABLE``) to answer instead;
            a gRPC request gets HTTP 200 with ``grpc-status``, as from Envoy.
        percent: the share of matching requests hit (each of delay and abort is its own
            draw, as in Istio); draws come from the mesh's seeded generator.
        subset: only requests routed to this subset.
        path: only requests whose path starts with this.
        headers: only requests with these exact header values (lower-case names).
        mesh: inject on this mesh for every thread, instead of in the current context.

    The fault replaces the route's own ``fault`` for the requests it matches. Without
    ``mesh`` it is seen only by code running in the current context (``contextvars``):
    parallel tests and concurrent tasks never see each other's faults.
    """
    if delay is None and abort is None and grpc_status is None:
        raise ValueError("a fault needs a delay, an abort or a gRPC status")
    if not 0.0 <= percent <= 100.0:
        raise ValueError(f"percent must be within 0..100, got {percent}")
    share = round(percent * _PER_MILLION / 100)
    policy = FaultPolicy(
        delay=delay,
        delay_numerator=share if delay is not None else 0,
        abort_status=abort,
        abort_grpc_status=_grpc_code(grpc_status),
        abort_numerator=share if abort is not None or grpc_status is not None else 0,
    )
    injected = InjectedFault(host, policy, subset, path, dict(headers or {}))
    return FaultInjection(injected, mesh)


def _grpc_code(status: int | str | None) -> int | None:
    if status is None or isinstance(status, int):
        return status
    try:
        return GRPC_CODES[status.upper()]
    except KeyError:
        raise ValueError(f"unknown gRPC status {status!r}") from None
