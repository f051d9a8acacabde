"""Outlier detection, without sockets (``envoy-semantics.md`` §4; ``istio-api.md`` §2.5).

The detector is exercised directly for its counting rules and through the engine for
ejections, returns and their effect on load balancing, on a fake clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from meshlib import Endpoint
from meshlib._core._actions import Attempt, Failed, Outcome, Responded
from meshlib._core._cluster import HostState
from meshlib._core._outlier import STATE_MACHINE, Detector, Event, Result, State, detector_for
from meshlib._core._retry import Failure
from meshlib.config._destination_rule import OutlierDetection
from meshlib.config._values import Duration
from tests.core.builders import URL, service_mesh
from tests.core.drive import FakeClock, drive


def hosts(n: int) -> list[HostState]:
    return [HostState(Endpoint(f"10.0.0.{i}"), f"10.0.0.{i}", 80) for i in range(1, n + 1)]


def feed(detector: Detector, host: HostState, group: list[HostState], *statuses: int) -> bool:
    """Record responses with ``statuses``; True if the last one ejected the host."""
    ejected = False
    for status in statuses:
        ejected = detector.record(host, detector.result_of_status(status), group, 0.0)
    return ejected


# ---------------------------------------------------------------- what Istio configures


def test_no_block_means_no_detection() -> None:
    """Without ``outlierDetection`` nothing is ever ejected (no detector at all)."""
    assert detector_for(None) is None


def test_empty_block_has_envoys_defaults() -> None:
    """``outlierDetection: {}``: 5 consecutive 5xx, gateway errors off, 10 s interval,
    30 s base ejection, 10 % cap, max ejection time 300 s."""
    detector = detector_for(OutlierDetection())
    assert detector == Detector(
        consecutive_5xx=5,
        consecutive_gateway=0,
        consecutive_local=5,
        split_local=False,
        interval=10.0,
        base_ejection=30.0,
        max_ejection_percent=10,
    )
    assert detector.max_ejection == 300.0


def test_explicit_zero_disables_5xx_ejection() -> None:
    """``consecutive5xxErrors: 0`` turns 5xx ejection off (unset means 5)."""
    detector = detector_for(OutlierDetection(consecutive_5xx_errors=0))
    assert detector is not None
    group = hosts(10)
    assert not feed(detector, group[0], group, *[500] * 50)


def test_max_ejection_time_is_at_least_the_base() -> None:
    """Envoy's max_ejection_time default is 300 s, raised to the base when the base is longer."""
    detector = detector_for(OutlierDetection(base_ejection_time=Duration(600 * 10**9)))
    assert detector is not None
    assert detector.max_ejection == 600.0


# -------------------------------------------------------------------- counting rules


def test_five_consecutive_5xx_eject() -> None:
    """The fifth 5xx in a row ejects (of 10 hosts, 10 % may go)."""
    detector, group = Detector(), hosts(10)
    assert not feed(detector, group[0], group, 500, 500, 500, 500)
    assert feed(detector, group[0], group, 503)
    assert group[0].ejected_until == 30.0


def test_a_success_resets_the_count() -> None:
    """Four 5xx, a 200, four 5xx: never five in a row, no ejection."""
    detector, group = Detector(), hosts(10)
    assert not feed(detector, group[0], group, 500, 500, 500, 500, 200, 500, 500, 500, 500)
    assert group[0].ejected_until is None


def test_4xx_is_a_success() -> None:
    """Only 5xx are errors by default: 404 and 429 reset the count."""
    detector, group = Detector(), hosts(10)
    assert not feed(detector, group[0], group, 500, 500, 500, 500, 404, 500, 429, 500)


def test_gateway_errors_count_apart_when_set() -> None:
    """consecutiveGatewayErrors: 3 — 502/503/504 count; a 500 resets the gateway count
    (but counts towards consecutive 5xx)."""
    detector, group = Detector(consecutive_5xx=0, consecutive_gateway=3), hosts(10)
    assert not feed(detector, group[0], group, 502, 504, 500, 503, 503)
    assert feed(detector, group[0], group, 502)


def test_local_failures_count_as_gateway_errors_without_split() -> None:
    """A connect failure or reset counts as 503, a timeout as 504 (non-split mode)."""
    detector, group = Detector(consecutive_5xx=0, consecutive_gateway=2), hosts(10)
    detector.record(group[0], Result.LOCAL_FAILURE, group, 0.0)
    assert detector.record(group[0], Result.LOCAL_FAILURE, group, 0.0)


def test_split_mode_counts_local_failures_apart() -> None:
    """splitExternalLocalOriginErrors: local failures go to consecutiveLocalOriginFailures
    only; 5xx counters see only real responses; a response resets the local count."""
    detector = Detector(consecutive_5xx=2, consecutive_local=3, split_local=True)
    group = hosts(10)
    host = group[0]
    for _ in range(2):
        detector.record(host, Result.LOCAL_FAILURE, group, 0.0)
    assert host.consecutive_5xx == 0
    assert host.consecutive_local == 2
    detector.record(host, Result.SUCCESS, group, 0.0)
    assert host.consecutive_local == 0
    for _ in range(2):
        assert not detector.record(host, Result.LOCAL_FAILURE, group, 0.0)
    assert detector.record(host, Result.LOCAL_FAILURE, group, 0.0)


def test_error_codes_redefine_what_counts() -> None:
    """outlierDetectionHttpErrorCodes: [429] — 429 is an error, 500 no longer is."""
    detector = detector_for(
        OutlierDetection(consecutive_5xx_errors=2, outlier_detection_http_error_codes=(429,))
    )
    assert detector is not None
    group = hosts(10)
    assert not feed(detector, group[0], group, 429, 500, 429)
    assert feed(detector, group[0], group, 429)


def test_the_cap_counts_the_host_about_to_be_ejected() -> None:
    """Envoy ≥ 1.28: eject only if 100 × (ejected + 1) / hosts ≤ maxEjectionPercent. With
    the default 10 % and 9 hosts nothing is ever ejected; with 10 hosts, one."""
    detector = Detector()
    nine = hosts(9)
    assert not feed(detector, nine[0], nine, *[500] * 5)
    ten = hosts(10)
    assert feed(detector, ten[0], ten, *[500] * 5)
    assert not feed(detector, ten[1], ten, *[500] * 5)


def test_a_refused_ejection_resets_the_counter() -> None:
    """As Envoy does, the counter that fired is reset even when the cap refused the
    ejection: five more errors are needed to try again."""
    detector, group = Detector(), hosts(9)
    feed(detector, group[0], group, *[500] * 5)
    assert group[0].consecutive_5xx == 0


def test_an_ejected_host_is_not_ejected_again() -> None:
    """More errors from an ejected host change nothing: one ejection, one multiplier step."""
    detector, group = Detector(max_ejection_percent=100), hosts(2)
    assert feed(detector, group[0], group, *[500] * 5)
    assert not feed(detector, group[0], group, *[500] * 5)
    assert group[0].ejections == 1


# --------------------------------------------------------------- ejection and return


def test_return_happens_at_the_first_sweep_after_the_ejection_time() -> None:
    """Ejected at t=3 for 30 s with sweeps every 10 s from t=0: back at the sweep at
    t=40 (not 33), since hosts return only at sweeps."""
    detector, group = Detector(max_ejection_percent=100), hosts(2)
    detector.record(group[0], Result.SUCCESS, group, 0.0)
    for _ in range(5):
        detector.record(group[0], Result.SERVER_ERROR, group, 3.0)
    assert group[0].ejected_until == 33.0
    last, returned = detector.sweep(group, 0.0, 39.9)
    assert (last, returned) == (30.0, False)
    last, returned = detector.sweep(group, last, 40.0)
    assert (last, returned) == (40.0, True)
    assert group[0].ejected_until is None


def test_ejection_time_grows_with_each_ejection_and_is_capped() -> None:
    """The n-th ejection in a row lasts min(base × n, max(300 s, base))."""
    detector = Detector(base_ejection=100.0, max_ejection_percent=100)
    assert [detector.ejection_time(n) for n in (1, 2, 3, 4, 9)] == [100, 200, 300, 300, 300]


def test_multiplier_decays_one_step_per_healthy_interval() -> None:
    """After an ejection, each sweep the host is in the balancing set lowers its
    multiplier by one, so a second ejection soon after lasts 2 × base, later 1 × base."""
    detector, group = Detector(max_ejection_percent=100), hosts(2)
    host = group[0]
    feed(detector, host, group, *[500] * 5)
    last, _ = detector.sweep(group, 0.0, 30.0)  # back at t=30
    assert host.ejections == 1
    feed(detector, host, group, *[500] * 5)
    assert host.ejections == 2
    assert host.ejected_until == pytest.approx(60.0)
    last, _ = detector.sweep(group, last, 90.0)  # back at t=90, multiplier still 2
    last, _ = detector.sweep(group, last, 110.0)  # two healthy sweeps: 2 → 0
    assert host.ejections == 0


def test_state_machine_table_matches_the_detector() -> None:
    """The documented state table holds: results keep a host's state, a threshold ejects
    a healthy host, a due sweep returns an ejected one."""
    detector, group = Detector(max_ejection_percent=100), hosts(2)
    host = group[0]

    def state() -> State:
        return State.EJECTED if host.ejected_until is not None else State.HEALTHY

    feed(detector, host, group, 500)
    assert state() is STATE_MACHINE[(State.HEALTHY, Event.RESULT)]
    feed(detector, host, group, 500, 500, 500, 500)
    assert state() is STATE_MACHINE[(State.HEALTHY, Event.THRESHOLD)]
    feed(detector, host, group, 500, 500, 500, 500, 500)
    assert state() is STATE_MACHINE[(State.EJECTED, Event.THRESHOLD)]
    detector.sweep(group, 0.0, 10.0)  # not yet due
    assert state() is State.EJECTED
    detector.sweep(group, 10.0, 30.0)
    assert state() is STATE_MACHINE[(State.EJECTED, Event.SWEEP_DUE)]


# ----------------------------------------------------------------- through the engine


def failing(address: str, outcome: Outcome) -> Callable[[Attempt], Outcome]:
    """An upstream where ``address`` answers ``outcome`` and every other host 200."""

    def answer(attempt: Attempt) -> Outcome:
        return outcome if attempt.address == address else Responded(200)

    return answer


POLICY = (
    "loadBalancer: {simple: ROUND_ROBIN}\n"
    "outlierDetection: {consecutive5xxErrors: 3, interval: 10s, baseEjectionTime: 30s,"
    " maxEjectionPercent: 100}\n"
)


def test_ejected_host_gets_no_traffic_until_it_returns() -> None:
    """After three 500s from 10.0.0.1 it gets no requests; 30 s later (at the next sweep)
    it is back in the rotation."""
    clock = FakeClock()
    mesh = service_mesh(None, POLICY, clock=clock, endpoints=3)
    upstream = failing("10.0.0.1", Responded(500))
    served: Counter[str] = Counter()
    for _ in range(30):
        served[drive(mesh, URL, upstream=upstream).sends[-1].address] += 1
    assert served["10.0.0.1"] == 3
    clock.advance(29.0)
    assert "10.0.0.1" not in {drive(mesh, URL).sends[0].address for _ in range(6)}
    clock.advance(11.0)  # past the ejection time and at a sweep
    assert "10.0.0.1" in {drive(mesh, URL).sends[0].address for _ in range(6)}


def test_a_success_through_the_engine_resets_the_count() -> None:
    """A flapping host (500, 500, 200, ...) never reaches three in a row, so it is never
    ejected; a host that fails three times in a row is."""
    mesh = service_mesh("retries: {attempts: 0}\n", POLICY, endpoints=1)
    answers = iter([Responded(500), Responded(500), Responded(200)] * 4)
    for _ in range(12):
        drive(mesh, URL, upstream=lambda _: next(answers))
    assert drive(mesh, URL).info.flags != ("UH",)
    for _ in range(3):
        drive(mesh, URL, upstream=lambda _: Responded(500))
    assert drive(mesh, URL).info.flags == ("UH",)


def test_connect_failures_eject_too() -> None:
    """Local-origin failures count as 503 (non-split): a refusing host is ejected, and
    retries go elsewhere in the meantime."""
    clock = FakeClock()
    mesh = service_mesh(None, POLICY, clock=clock, endpoints=3)
    upstream = failing("10.0.0.1", Failed(Failure.CONNECT, request_sent=False))
    traces = [drive(mesh, URL, upstream=upstream) for _ in range(20)]
    attempts_on_bad = sum(a.address == "10.0.0.1" for t in traces for a in t.sends)
    assert attempts_on_bad == 3
    assert all(t.info.details == "via_upstream" for t in traces)


def test_every_host_ejected_is_no_healthy_upstream() -> None:
    """minHealthPercent 0 (Istio's default with outlier detection): no panic routing,
    so with the only host ejected the answer is 503 UH."""
    mesh = service_mesh("retries: {attempts: 0}\n", POLICY, endpoints=1)
    for _ in range(3):
        drive(mesh, URL, upstream=lambda _: Responded(500))
    trace = drive(mesh, URL)
    assert trace.reply.reply.status == 503
    assert trace.info.flags == ("UH",)


def test_grpc_status_in_headers_counts_as_its_http_status() -> None:
    """For gRPC, grpc-status 14 (UNAVAILABLE) in the response headers counts as a 503."""
    mesh = service_mesh(None, POLICY, endpoints=3)
    grpc = {"content-type": "application/grpc"}
    upstream = failing("10.0.0.1", Responded(200, {"grpc-status": "14"}))
    sends = [drive(mesh, URL, headers=grpc, upstream=upstream).sends for _ in range(30)]
    assert sum(a.address == "10.0.0.1" for s in sends for a in s) == 3


def test_ejections_survive_a_reload() -> None:
    """Reloading the same configuration keeps the host ejected."""
    mesh = service_mesh(None, POLICY, endpoints=3)
    upstream = failing("10.0.0.1", Responded(500))
    for _ in range(12):
        drive(mesh, URL, upstream=upstream)
    mesh.apply(mesh.resources)
    assert "10.0.0.1" not in {drive(mesh, URL).sends[0].address for _ in range(9)}
