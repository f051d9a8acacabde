"""Circuit breaking, without sockets (``envoy-semantics.md`` §3, §1.6).

Several calls are driven side by side, one step at a time, so that each test controls
exactly which requests are in flight when the next one arrives.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshlib import Endpoint, Mesh
from meshlib._core._actions import (
    Action,
    Deliver,
    Failed,
    Reply,
    Responded,
    Send,
    Sleep,
    WaitForConnection,
)
from meshlib._core._cluster import HostState
from meshlib._core._engine import Call
from meshlib._core._limits import UNLIMITED, Limits, Ticket, limits_for
from meshlib._core._retry import Failure
from meshlib._transports._common import request_head
from meshlib.config import TrafficPolicy
from meshlib.config._destination_rule import ConnectionPoolSettings, HTTPSettings, TCPSettings
from tests.core.builders import HOST, URL, service_mesh
from tests.core.drive import drive


class Driven:
    """One call, advanced by hand: ``action`` is what it asks for now."""

    def __init__(self, mesh: Mesh) -> None:
        self.call: Call = mesh.start_call(request_head(httpx.Request("GET", URL)))
        self.action: Action = self.call.start()
        self._woken = False
        if isinstance(self.action, WaitForConnection):
            self.action.ticket.wake = self._wake

    def _wake(self) -> None:
        self._woken = True

    def woken(self) -> bool:
        """Has the mesh handed this call a connection (called its ticket's wake)?"""
        return self._woken

    def answer(self, result: object) -> Action:
        """Report ``result`` for the current action and move on."""
        self.action = self.call.send(result)
        if isinstance(self.action, WaitForConnection):
            self.action.ticket.wake = self._wake
        return self.action

    def finish(self) -> None:
        """The caller is done (response closed, or gave up)."""
        self.call.finish()

    @property
    def status(self) -> int:
        assert isinstance(self.action, Reply), self.action
        return self.action.reply.status


def limits_of(mesh: Mesh) -> Limits:
    """The circuit breakers of the ``svc`` cluster."""
    (key,) = [k for k in mesh.runtime.clusters if k.host == HOST]
    return mesh.runtime.clusters[key].limits


def test_istio_default_is_no_limit() -> None:
    """No connectionPool: every threshold is 2^32 - 1 (Istio's getDefaultCircuitBreakerThresholds)."""
    limits = limits_for(None)
    assert (limits.max_connections, limits.max_pending, limits.max_requests) == (UNLIMITED,) * 3
    assert limits.max_retries == UNLIMITED


def test_zero_means_the_default() -> None:
    """Istio overrides a threshold only when it is > 0."""
    pool = ConnectionPoolSettings(
        tcp=TCPSettings(max_connections=0), http=HTTPSettings(http2_max_requests=0)
    )
    policy = TrafficPolicy(connection_pool=pool)
    limits = limits_for(policy)
    assert limits.max_connections == limits.max_requests == UNLIMITED


def test_max_requests_overflow_answers_503_uo_at_once() -> None:
    """http2MaxRequests: 2 — a third request in flight gets 503 UO with x-envoy-overloaded,
    without any attempt upstream."""
    mesh = service_mesh("", "connectionPool: {http: {http2MaxRequests: 2}}\n")
    first, second = Driven(mesh), Driven(mesh)
    assert isinstance(first.action, Send)
    assert isinstance(second.action, Send)
    third = Driven(mesh)
    assert third.status == 503
    reply = third.action.reply  # type: ignore[union-attr]
    assert ("x-envoy-overloaded", "true") in reply.headers
    assert reply.body.endswith(b"reset reason: overflow")
    assert third.call.info.flags == ("UO",)
    third.finish()
    first.answer(Responded(200))
    first.finish()
    assert isinstance(Driven(mesh).action, Send)  # a place is free again


def test_overflow_is_never_retried() -> None:
    """Even with retryOn covering everything, an overflow is answered, not retried."""
    mesh = service_mesh(
        "retries: {attempts: 3, retryOn: '5xx,reset,connect-failure'}\n",
        "connectionPool: {http: {http2MaxRequests: 1}}\n",
    )
    held = Driven(mesh)
    overflowed = Driven(mesh)
    assert overflowed.status == 503
    assert overflowed.call.info.attempts == 0
    held.finish()


def test_requests_beyond_max_connections_wait_then_go_in_order() -> None:
    """maxConnections: 1 — the second request waits as pending; when the first ends,
    the oldest waiter is woken and sends."""
    mesh = service_mesh("", "connectionPool: {tcp: {maxConnections: 1}}\n", endpoints=1)
    first = Driven(mesh)
    second, third = Driven(mesh), Driven(mesh)
    assert isinstance(second.action, WaitForConnection)
    assert isinstance(third.action, WaitForConnection)
    assert limits_of(mesh).pending == 2
    first.answer(Responded(200))
    first.finish()
    assert second.woken()
    assert not third.woken()
    assert isinstance(second.answer(None), Send)
    assert limits_of(mesh).pending == 1
    second.answer(Responded(200))
    second.finish()
    assert third.woken()
    assert isinstance(third.answer(None), Send)
    third.answer(Responded(200))
    third.finish()
    limits = limits_of(mesh)
    assert (limits.active, limits.connections, limits.pending) == (0, 0, 0)


def test_pending_overflow_is_503_uo() -> None:
    """The istio.io circuit-breaking task: maxConnections 1, http1MaxPendingRequests 1 —
    one in flight, one pending, the third overflows."""
    mesh = service_mesh(
        "",
        "connectionPool:\n  tcp: {maxConnections: 1}\n"
        "  http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}\n",
        endpoints=1,
    )
    first, second, third = Driven(mesh), Driven(mesh), Driven(mesh)
    assert isinstance(first.action, Send)
    assert isinstance(second.action, WaitForConnection)
    assert third.status == 503
    assert third.call.info.flags == ("UO",)
    for call in (first, second, third):
        call.finish()
    limits = limits_of(mesh)
    assert (limits.active, limits.connections, limits.pending) == (0, 0, 0)


def test_every_host_may_open_one_connection_whatever_the_limit() -> None:
    """Envoy guarantees a host its first connection: with maxConnections 1 and 3 hosts,
    round robin sends three requests at once, one per host."""
    mesh = service_mesh(
        "",
        "connectionPool: {tcp: {maxConnections: 1}}\nloadBalancer: {simple: ROUND_ROBIN}\n",
        endpoints=3,
    )
    calls = [Driven(mesh) for _ in range(3)]
    assert all(isinstance(c.action, Send) for c in calls)
    assert len({c.action.attempt.address for c in calls}) == 3  # type: ignore[union-attr]
    fourth = Driven(mesh)
    assert isinstance(fourth.action, WaitForConnection)
    for call in (*calls, fourth):
        call.finish()


def test_waiting_past_the_route_deadline_is_504_ut() -> None:
    """The route timer covers the pending queue: a waiter whose deadline passes gets
    504 UT and leaves the queue."""
    mesh = service_mesh(
        "timeout: 2s\n", "connectionPool: {tcp: {maxConnections: 1}}\n", endpoints=1
    )
    first = Driven(mesh)
    mesh.clock.advance(0.5)  # type: ignore[attr-defined]
    second = Driven(mesh)
    assert isinstance(second.action, WaitForConnection)
    assert second.action.timeout == pytest.approx(2.0)
    mesh.clock.advance(2.0)  # type: ignore[attr-defined]
    second.answer(None)  # the shell's wait ended without the ticket
    assert second.status == 504
    assert second.call.info.flags == ("UT",)
    assert limits_of(mesh).pending == 0
    for call in (first, second):
        call.finish()


def test_a_waiter_that_gives_up_leaves_the_queue() -> None:
    """A cancelled waiter (finish while waiting) is withdrawn; a granted one that is
    cancelled before it sends gives its connection back."""
    mesh = service_mesh("", "connectionPool: {tcp: {maxConnections: 1}}\n", endpoints=1)
    first, second = Driven(mesh), Driven(mesh)
    second.finish()
    assert limits_of(mesh).pending == 0
    third = Driven(mesh)
    first.answer(Responded(200))
    first.finish()
    assert third.woken()
    third.finish()  # granted, then cancelled before it could send
    limits = limits_of(mesh)
    assert (limits.active, limits.connections, limits.pending) == (0, 0, 0)


def test_max_retries_overflow_keeps_the_last_answer_with_uo() -> None:
    """maxRetries: 1 — while one request holds the only retry slot (in backoff), another
    request's retry is skipped: its 503 is delivered, flagged UO, not URX."""
    mesh = service_mesh(
        "retries: {attempts: 2, retryOn: 5xx}\n",
        "connectionPool: {http: {maxRetries: 1}}\n",
    )
    first, second = Driven(mesh), Driven(mesh)
    assert isinstance(first.answer(Responded(503)), Sleep)  # retry slot taken, backing off
    assert isinstance(second.answer(Responded(503)), Deliver)
    assert second.call.info.flags == ("UO",)
    assert limits_of(mesh).retries == 1
    second.finish()
    assert isinstance(first.answer(None), Send)
    first.answer(Responded(200))
    assert limits_of(mesh).retries == 0  # released at the next retry decision
    first.finish()


def test_retry_slot_is_released_when_the_request_is_abandoned() -> None:
    """A request cancelled during its backoff gives its retry slot back."""
    mesh = service_mesh(
        "retries: {attempts: 2, retryOn: 5xx}\n", "connectionPool: {http: {maxRetries: 1}}\n"
    )
    call = Driven(mesh)
    call.answer(Responded(503))
    assert limits_of(mesh).retries == 1
    call.finish()
    assert limits_of(mesh).retries == 0


@pytest.mark.parametrize(
    ("percent", "minimum", "active", "pending", "allowed"),
    [
        (20.0, 3, 10, 0, 3),  # 20 % of 10 = 2, below minRetryConcurrency 3
        (20.0, 3, 30, 0, 6),
        (20.0, 3, 20, 10, 6),  # pending requests count too
        (50.0, 1, 7, 0, 3),  # floor(3.5)
        (10.0, 2, 5, 0, 2),
    ],
)
def test_retry_budget_allows_a_share_of_requests_in_flight(
    percent: float, minimum: int, active: int, pending: int, allowed: int
) -> None:
    """retryBudget: max(minRetryConcurrency, percent × (active + pending)) retries at once."""
    limits = Limits(budget_percent=percent, budget_min_concurrency=minimum, active=active)
    host = HostState(Endpoint("10.0.0.1"), "10.0.0.1", 80)
    limits.queue.extend(Ticket(host) for _ in range(pending))
    taken = sum(limits.take_retry() for _ in range(allowed + 5))
    assert taken == allowed


def test_retry_budget_defaults_in_the_engine() -> None:
    """``retryBudget: {}`` (20 %, 3) with 10 requests in flight: three may retry at once,
    the fourth keeps its 503, flagged UO. (A request in backoff holds no request slot.)"""
    mesh = service_mesh("retries: {attempts: 1, retryOn: 5xx}\n", "retryBudget: {}\n", endpoints=1)
    calls = [Driven(mesh) for _ in range(10)]
    ends = [type(call.answer(Responded(503))).__name__ for call in calls[:4]]
    assert ends == ["Sleep", "Sleep", "Sleep", "Deliver"]
    assert calls[3].call.info.flags == ("UO",)
    for call in calls:
        call.finish()
    assert limits_of(mesh).retries == 0


def test_overflow_does_not_count_for_outlier_detection() -> None:
    """A UO reply says nothing about the host: its consecutive-error counters stay at 0."""
    mesh = service_mesh(
        "",
        "connectionPool: {http: {http2MaxRequests: 1}}\noutlierDetection: {consecutive5xxErrors: 1}\n",
        endpoints=1,
    )
    held = Driven(mesh)
    for _ in range(3):
        overflowed = Driven(mesh)
        assert overflowed.status == 503
        overflowed.finish()
    host = held.action.attempt.host  # type: ignore[union-attr]
    assert host is not None
    assert host.consecutive_5xx == 0
    assert host.ejected_until is None
    held.finish()


def test_max_requests_per_connection_one_closes_each_connection() -> None:
    """maxRequestsPerConnection: 1 disables keep-alive: each attempt asks to close."""
    mesh = service_mesh("", "connectionPool: {http: {maxRequestsPerConnection: 1}}\n")
    assert ("connection", "close") in drive(mesh, URL).sends[0].edits.set
    assert "connection" not in dict(drive(service_mesh(""), URL).sends[0].edits.set)


def test_pool_timeouts_reach_the_attempt() -> None:
    """tcp.connectTimeout and http.idleTimeout are handed to the shell with each attempt."""
    mesh = service_mesh(
        "", "connectionPool: {tcp: {connectTimeout: 250ms}, http: {idleTimeout: 30s}}\n"
    )
    attempt = drive(mesh, URL).sends[0]
    assert (attempt.connect_timeout, attempt.idle_timeout) == (0.25, 30.0)


def test_limits_survive_a_reload_with_requests_in_flight() -> None:
    """A reload that changes the thresholds keeps the counts: the request in flight before
    it is released against the same counters afterwards."""
    rule = ""
    mesh = service_mesh(rule, "connectionPool: {http: {http2MaxRequests: 1}}\n", endpoints=1)
    held = Driven(mesh)
    limits = limits_of(mesh)
    reloaded = service_mesh(rule, "connectionPool: {http: {http2MaxRequests: 2}}\n", endpoints=1)
    mesh.apply(reloaded.resources)
    second = Driven(mesh)
    assert isinstance(second.action, Send)  # the new threshold applies
    assert limits_of(mesh) is limits
    assert limits.active == 2
    third = Driven(mesh)
    assert third.status == 503
    for call in (held, second, third):
        call.finish()
    assert (limits.active, limits.connections) == (0, 0)


# ---------------------------------------------------------- interleavings, as a property

STEPS = st.lists(
    st.tuples(st.sampled_from(["start", "answer", "fail", "cancel"]), st.integers(0, 50)),
    max_size=60,
)


@settings(max_examples=80, derandomize=True, deadline=None)
@given(steps=STEPS)
def test_counters_never_exceed_the_limits_and_return_to_zero(
    steps: list[tuple[str, int]],
) -> None:
    """Whatever the interleaving of starts, answers, failures and cancellations, requests
    in flight never exceed http2MaxRequests, connections never exceed maxConnections plus
    one per host, pending never exceeds http1MaxPendingRequests, and when every request
    has ended every counter is back to zero."""
    mesh = service_mesh(
        "retries: {attempts: 1, retryOn: 5xx}\n",
        "connectionPool:\n  tcp: {maxConnections: 2}\n"
        "  http: {http1MaxPendingRequests: 2, http2MaxRequests: 3, maxRetries: 1}\n",
        endpoints=2,
    )
    live: list[Driven] = []
    for step, pick in steps:
        if step == "start":
            live.append(Driven(mesh))
        elif live:
            call = live[pick % len(live)]
            if step == "cancel" or isinstance(call.action, (Reply, Deliver)):
                call.finish()
                live.remove(call)
            elif isinstance(call.action, Send):
                call.answer(Responded(503) if step == "fail" else Responded(200))
            elif isinstance(call.action, WaitForConnection):
                if call.action.ticket.granted:
                    call.answer(None)
            else:
                call.answer(Failed(Failure.RESET) if step == "fail" else None)
        limits = limits_of(mesh) if mesh.runtime.clusters else None
        if limits is not None:
            assert limits.active <= 3
            assert limits.connections <= 2 + 2
            assert limits.pending <= 2
            assert limits.retries <= 1
    for call in live:
        call.finish()
    if mesh.runtime.clusters:
        limits = limits_of(mesh)
        assert (limits.active, limits.connections, limits.pending, limits.retries) == (0, 0, 0, 0)
        (cluster,) = mesh.runtime.clusters.values()
        assert all(h.connections == 0 and h.active == 0 for h in cluster.hosts)


def test_a_connection_handed_over_after_the_deadline_is_given_back() -> None:
    """A waiter granted a connection only after its route deadline passed answers 504 UT
    and frees the connection for the next waiter, instead of sending late."""
    mesh = service_mesh(
        "timeout: 1s\n", "connectionPool: {tcp: {maxConnections: 1}}\n", endpoints=1
    )
    first, late, next_one = Driven(mesh), Driven(mesh), Driven(mesh)
    mesh.clock.advance(1.5)  # type: ignore[attr-defined]
    first.answer(Responded(200))
    first.finish()
    assert late.woken()
    late.answer(None)
    assert late.status == 504
    assert next_one.woken()  # the connection went on to the next in line
    for call in (late, next_one):
        call.finish()
    limits = limits_of(mesh)
    assert (limits.active, limits.connections, limits.pending) == (0, 0, 0)


def test_tcp_idle_timeout_stands_in_for_http() -> None:
    """Without ``http.idleTimeout``, ``tcp.idleTimeout`` sets the keep-alive expiry;
    ``0s`` (Istio: no idle timeout) leaves the inner transport's own."""
    mesh = service_mesh("", "connectionPool: {tcp: {idleTimeout: 90s}}\n")
    assert drive(mesh, URL).sends[0].idle_timeout == 90.0
    mesh = service_mesh("", "connectionPool: {tcp: {idleTimeout: 90s}, http: {idleTimeout: 5s}}\n")
    assert drive(mesh, URL).sends[0].idle_timeout == 5.0
    mesh = service_mesh("", "connectionPool: {tcp: {idleTimeout: 0s}}\n")
    assert drive(mesh, URL).sends[0].idle_timeout is None
