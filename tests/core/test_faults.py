"""VirtualService faults, without sockets (``istio-api.md`` §1.9; ``envoy-semantics.md`` §7).

Each test runs requests through the engine on a fake clock and checks what Envoy's fault
filter would do: the draws, the order, the replies and what faults never touch.
"""

from __future__ import annotations

import math

import pytest

from meshlib._core._actions import Deliver, Failed, Reply, Responded, Send, Sleep
from meshlib._core._retry import Failure
from tests.core.builders import URL, service_mesh
from tests.core.drive import FakeClock, drive

GRPC = {"content-type": "application/grpc"}


def binomial_ok(count: int, n: int, p: float) -> bool:
    """Within 4.5 standard deviations of n·p: a false alarm under 1e-5."""
    return abs(count - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)) + 1


def test_delay_then_the_request_goes_on() -> None:
    """``fixedDelay: 7s`` at 100 %: one Sleep of 7 s, flag DI, then the upstream answers."""
    clock = FakeClock()
    mesh = service_mesh(
        "fault: {delay: {fixedDelay: 7s, percentage: {value: 100}}}\n", clock=clock
    )
    start = clock.now()
    trace = drive(mesh, URL)
    assert [(s.seconds, s.reason) for s in trace.sleeps] == [(7.0, "fault delay")]
    assert isinstance(trace.final, Deliver)
    assert trace.info.flags == ("DI",)
    assert clock.now() - start == 7.0


def test_abort_answers_without_the_upstream() -> None:
    """``abort: {httpStatus: 500}`` at 100 %: Envoy's ``fault filter abort`` body, FI,
    and no attempt upstream."""
    mesh = service_mesh("fault: {abort: {httpStatus: 500, percentage: {value: 100}}}\n")
    trace = drive(mesh, URL)
    assert trace.sends == []
    reply = trace.reply.reply
    assert (reply.status, reply.body) == (500, b"fault filter abort")
    assert trace.info.flags == ("FI",)
    assert trace.info.details == "fault_filter_abort"


def test_unset_percentage_injects_nothing() -> None:
    """A delay or an abort without ``percentage`` is never injected (Envoy's default 0)."""
    mesh = service_mesh("fault: {delay: {fixedDelay: 5s}, abort: {httpStatus: 503}}\n")
    for _ in range(50):
        trace = drive(mesh, URL)
        assert trace.sleeps == []
        assert isinstance(trace.final, Deliver)


def test_legacy_integer_percent_is_honoured() -> None:
    """The deprecated ``delay.percent: 100`` still delays."""
    mesh = service_mesh("fault: {delay: {fixedDelay: 1s, percent: 100}}\n")
    assert [s.seconds for s in drive(mesh, URL).sleeps] == [1.0]


@pytest.mark.parametrize(("delay", "abort"), [(10.0, 30.0), (50.0, 0.1), (0.0001, 99.9)])
def test_percentages_converge_within_binomial_bounds(delay: float, abort: float) -> None:
    """Over 4000 requests each share is within 4.5 σ of its percentage, and the two
    draws are independent: both happen at about delay × abort."""
    mesh = service_mesh(
        f"fault: {{delay: {{fixedDelay: 1s, percentage: {{value: {delay}}}}},"
        f" abort: {{httpStatus: 503, percentage: {{value: {abort}}}}}}}\n"
    )
    n = 4000
    delayed = aborted = both = 0
    for _ in range(n):
        trace = drive(mesh, URL)
        was_delayed, was_aborted = bool(trace.sleeps), isinstance(trace.final, Reply)
        delayed += was_delayed
        aborted += was_aborted
        both += was_delayed and was_aborted
    assert binomial_ok(delayed, n, delay / 100)
    assert binomial_ok(aborted, n, abort / 100)
    assert binomial_ok(both, n, delay / 100 * abort / 100)


def test_delay_and_abort_together_flag_both() -> None:
    """Both at 100 %: the delay first, then the abort; flags DI and FI."""
    mesh = service_mesh(
        "fault:\n  delay: {fixedDelay: 2s, percentage: {value: 100}}\n"
        "  abort: {httpStatus: 503, percentage: {value: 100}}\n"
    )
    trace = drive(mesh, URL)
    assert isinstance(trace.actions[0], Sleep)
    assert trace.reply.reply.status == 503
    assert trace.info.flags == ("DI", "FI")


def test_grpc_abort_takes_grpcs_shape_only_for_grpc_requests() -> None:
    """``grpcStatus: UNAVAILABLE``: a gRPC request gets HTTP 200 with grpc-status 14; a
    plain HTTP request gets 200 ``fault filter abort`` without grpc-status."""
    mesh = service_mesh("fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}\n")
    grpc = drive(mesh, URL, headers=GRPC).reply.reply
    assert grpc.status == 200
    headers = dict(grpc.headers)
    assert headers["grpc-status"] == "14"
    assert headers["content-type"] == "application/grpc"
    plain = drive(mesh, URL).reply.reply
    assert (plain.status, plain.body) == (200, b"fault filter abort")
    assert "grpc-status" not in dict(plain.headers)


def test_http_abort_of_a_grpc_request_maps_the_status() -> None:
    """``httpStatus: 503`` to a gRPC client: HTTP 200 and grpc-status 14 (UNAVAILABLE)."""
    mesh = service_mesh("fault: {abort: {httpStatus: 503, percentage: {value: 100}}}\n")
    reply = drive(mesh, URL, headers=GRPC).reply.reply
    assert reply.status == 200
    assert dict(reply.headers)["grpc-status"] == "14"


def test_the_destination_is_drawn_before_the_faults() -> None:
    """With an 80/20 split and an abort, the request still records the subset drawn:
    the weighted pick happens first, then the fault filter."""
    rule = (
        "route:\n- {destination: {host: svc, subset: a}, weight: 80}\n"
        "- {destination: {host: svc, subset: b}, weight: 20}\n"
        "fault: {abort: {httpStatus: 500, percentage: {value: 100}}}\n"
    )
    policy = "loadBalancer: {simple: ROUND_ROBIN}\n"
    mesh = service_mesh(None, policy)
    vs_and_subsets = (
        """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: default}
spec:
  hosts: [svc]
  http:
  - """
        + rule.replace("\n", "\n    ").rstrip()
        + """
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc, namespace: default}
spec:
  host: svc
  subsets: [{name: a, labels: {}}, {name: b, labels: {}}]
"""
    )
    mesh.apply(vs_and_subsets)
    subsets = [drive(mesh, URL).info.subset for _ in range(400)]
    assert set(subsets) == {"a", "b"}
    assert binomial_ok(subsets.count("a"), 400, 0.8)


def test_faults_are_never_retried_nor_counted() -> None:
    """An injected 503 abort with retryOn 5xx is answered once; it reaches no host, takes
    no connection and feeds no outlier detection."""
    mesh = service_mesh(
        "fault: {abort: {httpStatus: 503, percentage: {value: 100}}}\n"
        "retries: {attempts: 3, retryOn: 5xx}\n",
        "connectionPool: {http: {http2MaxRequests: 1}}\n"
        "outlierDetection: {consecutive5xxErrors: 1}\n",
    )
    for _ in range(5):
        trace = drive(mesh, URL)
        assert trace.sends == []
        assert trace.reply.reply.status == 503
    for cluster in mesh.runtime.clusters.values():
        assert cluster.limits.active == 0
        assert all(h.consecutive_5xx == 0 for h in cluster.hosts)


def test_the_delay_does_not_count_against_the_route_timeout() -> None:
    """Envoy arms the route timer after the fault filter: a 7 s delay under a 1 s route
    timeout is waited in full, then the request succeeds."""
    clock = FakeClock()
    mesh = service_mesh(
        "timeout: 1s\nfault: {delay: {fixedDelay: 7s, percentage: {value: 100}}}\n",
        clock=clock,
    )
    start = clock.now()
    trace = drive(mesh, URL)
    (send,) = [a for a in trace.actions if isinstance(a, Send)]
    assert send.attempt.deadline == pytest.approx(start + 7.0 + 1.0)
    assert isinstance(trace.final, Deliver)
    assert trace.info.flags == ("DI",)


def test_delayed_requests_still_retry_upstream_failures() -> None:
    """The delay happens once; the attempts after it retry as the route says."""
    mesh = service_mesh(
        "fault: {delay: {fixedDelay: 1s, percentage: {value: 100}}}\n"
        "retries: {attempts: 2, retryOn: connect-failure}\n"
    )
    outcomes = iter([Failed(Failure.CONNECT, request_sent=False), Responded(200)])
    trace = drive(mesh, URL, upstream=lambda _: next(outcomes))
    assert trace.sleeps[0].reason == "fault delay"
    assert len(trace.sends) == 2
    assert isinstance(trace.final, Deliver)
