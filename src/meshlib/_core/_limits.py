"""Connection-pool limits: Envoy's circuit breakers, per cluster (``envoy-semantics.md`` §3).

Istio's ``connectionPool`` (``istio-api.md`` §2.4) sets a cluster's thresholds; 0 or
unset means Istio's default, 2^32 - 1 (effectively no limit). Limits are per client and
per cluster (one subset of one service on one port), counted here exactly, under the
mesh's lock, for threads and tasks alike:

* ``http2MaxRequests`` bounds requests in flight: one more answers at once with 503 and
  ``x-envoy-overloaded`` (flag ``UO``), never retried, never counted by outlier detection;
* ``tcp.maxConnections`` bounds connections; over HTTP/1.1 a request in flight holds one.
  A request that finds none free waits as *pending* — except that a host with no
  connection of its own may always open one, as Envoy guarantees;
* ``http1MaxPendingRequests`` bounds the waiting requests; one more overflows (``UO``);
* ``maxRetries`` bounds retries outstanding; over it the retry is skipped and the last
  answer stands, flagged ``UO``. A ``retryBudget`` replaces it with
  ``max(minRetryConcurrency, percent × (active + pending))``.

A waiting request holds a :class:`Ticket`; a request that ends hands its connection to
the oldest ticket and wakes it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from meshlib._core._cluster import HostState
from meshlib.config import TrafficPolicy

__all__ = ["Admission", "Limits", "PoolSettings", "Ticket", "limits_for", "pool_settings"]

UNLIMITED = 2**32 - 1


@dataclass(eq=False, slots=True)
class Ticket:
    """A request waiting for a connection. ``wake`` is set by the shell that waits."""

    host: HostState
    granted: bool = False
    wake: Callable[[], None] = lambda: None


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to "may this attempt go?": yes, wait on ``ticket``, or overflow."""

    admitted: bool = False
    ticket: Ticket | None = None  # None and not admitted: an overflow (503 ``UO``)


_ADMITTED = Admission(admitted=True)
_OVERFLOW = Admission()


@dataclass(slots=True)
class Limits:
    """One cluster's thresholds and counters."""

    max_connections: int = UNLIMITED
    max_pending: int = UNLIMITED
    max_requests: int = UNLIMITED
    max_retries: int = UNLIMITED
    budget_percent: float | None = None
    budget_min_concurrency: int = 3
    active: int = 0
    connections: int = 0
    retries: int = 0
    queue: deque[Ticket] = field(default_factory=deque)

    @property
    def pending(self) -> int:
        """Requests waiting for a connection."""
        return len(self.queue)

    def configure(self, other: Limits) -> None:
        """Take the thresholds of ``other``, keeping the counts and the queue."""
        self.max_connections = other.max_connections
        self.max_pending = other.max_pending
        self.max_requests = other.max_requests
        self.max_retries = other.max_retries
        self.budget_percent = other.budget_percent
        self.budget_min_concurrency = other.budget_min_concurrency

    def admit(self, host: HostState) -> Admission:
        """May an attempt to ``host`` go now? Counts it if so, queues it if it must wait."""
        if self.active >= self.max_requests:
            return _OVERFLOW
        if self.connections < self.max_connections or host.connections == 0:
            self._open(host)
            return _ADMITTED
        if self.pending >= self.max_pending:
            return _OVERFLOW
        ticket = Ticket(host)
        self.queue.append(ticket)
        return Admission(ticket=ticket)

    def release(self, host: HostState) -> None:
        """An attempt to ``host`` ended: its connection goes to the oldest waiter, if any."""
        self.active -= 1
        self.connections -= 1
        host.connections -= 1
        if self.queue and self.active < self.max_requests:
            ticket = self.queue.popleft()
            self._open(ticket.host)
            ticket.granted = True
            ticket.wake()

    def withdraw(self, ticket: Ticket) -> None:
        """A waiting request gave up (deadline, cancellation)."""
        if ticket in self.queue:
            self.queue.remove(ticket)

    def _open(self, host: HostState) -> None:
        self.active += 1
        self.connections += 1
        host.connections += 1

    def take_retry(self) -> bool:
        """Take a retry slot, if ``maxRetries`` (or the retry budget) has one free.

        Envoy holds the slot from the moment the retry is scheduled (backoff included)
        until the next retry decision or the end of the request.
        """
        allowed = self.max_retries
        if self.budget_percent is not None:
            in_flight = self.active + self.pending
            budget = math.floor(self.budget_percent / 100 * in_flight)
            allowed = max(self.budget_min_concurrency, budget)
        if self.retries >= allowed:
            return False
        self.retries += 1
        return True

    def release_retry(self) -> None:
        """The retry decided on earlier is over."""
        self.retries -= 1


def _limit(value: int) -> int:
    """Istio: 0 (or unset) means the default, 2^32 - 1."""
    return value if value > 0 else UNLIMITED


def limits_for(policy: TrafficPolicy | None) -> Limits:
    """A cluster's limits from its effective ``connectionPool`` and ``retryBudget``."""
    pool = policy.connection_pool if policy is not None else None
    tcp = pool.tcp if pool is not None else None
    http = pool.http if pool is not None else None
    budget = policy.retry_budget if policy is not None else None
    percent = None
    if budget is not None:  # Istio's defaults: 20 % and 3
        percent = budget.percent if budget.percent is not None else 20.0
    return Limits(
        max_connections=_limit(tcp.max_connections) if tcp is not None else UNLIMITED,
        max_pending=_limit(http.http1_max_pending_requests) if http is not None else UNLIMITED,
        max_requests=_limit(http.http2_max_requests) if http is not None else UNLIMITED,
        max_retries=_limit(http.max_retries) if http is not None else UNLIMITED,
        budget_percent=percent,
        budget_min_concurrency=(budget.min_retry_concurrency or 3) if budget else 3,
    )


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """A cluster's ``connectionPool`` settings that shape each attempt: ``tcp.connectTimeout``
    (else the mesh's, 10 s), ``http.idleTimeout`` (else ``tcp.idleTimeout``; with neither,
    the inner transport's keep-alive expiry, not Istio's 1 h: an idle connection kept an
    hour invites the keep-alive race, which Istio's default policy does not retry), and
    ``http.maxRequestsPerConnection: 1``, which turns keep-alive off."""

    connect_timeout: float = 10.0
    idle_timeout: float | None = None
    close_connection: bool = False


def pool_settings(policy: TrafficPolicy | None, connect_timeout: float) -> PoolSettings:
    """The :class:`PoolSettings` of a cluster's effective policy."""
    pool = policy.connection_pool if policy is not None else None
    if pool is None:
        return PoolSettings(connect_timeout)
    tcp, http = pool.tcp, pool.http
    connect = tcp.connect_timeout if tcp is not None else None
    idle = http.idle_timeout if http is not None else None
    if idle is None and tcp is not None:
        idle = tcp.idle_timeout  # Istio: the TCP idle timeout stands in for HTTP's
    return PoolSettings(
        connect_timeout=connect.seconds if connect else connect_timeout,
        idle_timeout=idle.seconds if idle is not None and idle.seconds > 0 else None,
        close_connection=http is not None and http.max_requests_per_connection == 1,
    )
