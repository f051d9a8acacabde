"""Faults injected from code: which apply to a request, and where they are kept.

:func:`meshlib.testing.fault` registers an :class:`InjectedFault` in one of two scopes:

* the *context* (a ``contextvars`` variable): seen by the code running in that context
  only, on any mesh. Threads start with a fresh context and tasks with a copy of their
  creator's, so parallel tests and concurrent tasks never see each other's faults;
* a *mesh* (:class:`MeshFaults`): seen by every request through that mesh, whatever
  thread makes it. For code under test that starts its own threads.

For a request, context faults are asked first, the latest registered first; the first
that matches replaces the route's own ``fault`` (from YAML) for that request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from meshlib._core._fault import FaultPolicy
from meshlib._core._request import RequestHead

__all__ = ["InjectedFault", "MeshFaults", "in_context", "matching"]


@dataclass(frozen=True, slots=True, eq=False)
class InjectedFault:
    """A fault for the requests to ``host`` (an FQDN, or a host as the caller writes it)
    that match ``subset``, a ``path`` prefix and exact ``headers``, when set."""

    host: str
    policy: FaultPolicy
    subset: str | None = None
    path: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def applies(self, head: RequestHead, destination: str, subset: str, fqdn: str) -> bool:
        """Does this fault apply to a request for ``destination`` (subset ``subset``)?

        ``fqdn`` is :attr:`host` expanded in the client's namespace.
        """
        if destination not in (self.host, fqdn) and head.host != self.host:
            return False
        if self.subset is not None and subset != self.subset:
            return False
        if self.path is not None and not head.path.startswith(self.path):
            return False
        return all(head.headers.get(name) == value for name, value in self.headers.items())


_CONTEXT: ContextVar[tuple[InjectedFault, ...]] = ContextVar("meshlib_faults", default=())


@contextmanager
def in_context(fault: InjectedFault) -> Iterator[None]:
    """Inject ``fault`` for the code running in the current context, until exit."""
    token = _CONTEXT.set((*_CONTEXT.get(), fault))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class MeshFaults:
    """The faults injected on one mesh, for every thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: tuple[InjectedFault, ...] = ()

    @contextmanager
    def injected(self, fault: InjectedFault) -> Iterator[None]:
        """Inject ``fault`` on this mesh until exit."""
        with self._lock:
            self._faults = (*self._faults, fault)
        try:
            yield
        finally:
            with self._lock:
                self._faults = tuple(f for f in self._faults if f is not fault)

    def __iter__(self) -> Iterator[InjectedFault]:
        return iter(self._faults)

    def __bool__(self) -> bool:
        return bool(self._faults)


def matching(
    mesh_faults: MeshFaults,
    head: RequestHead,
    destination: str,
    subset: str,
    fqdn_of: Callable[[str], str],
) -> FaultPolicy | None:
    """The fault to inject into this request, if any (context first, latest first).

    ``fqdn_of`` expands a fault's host in the client's namespace.
    """
    context = _CONTEXT.get()
    if not context and not mesh_faults:
        return None
    for fault in (*reversed(context), *reversed(tuple(mesh_faults))):
        if fault.applies(head, destination, subset, fqdn_of(fault.host)):
            return fault.policy
    return None
