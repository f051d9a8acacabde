"""Retries and timeouts, without sockets (``envoy-semantics.md`` §1; ``istio-api.md`` §1.8).

Each test scripts the upstream's answers and checks the attempts the engine made, the
waits it asked for and how the request ended, on a fake clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest

from meshlib._core._actions import Attempt, Deliver, Failed, Outcome, Responded, RouteTimeout
from meshlib._core._retry import Failure, backoff_seconds
from tests.core.builders import URL, service_mesh
from tests.core.drive import FakeClock, drive

# ------------------------------------------------------------------------ retryOn table


def answers(*outcomes: Outcome) -> Callable[[Attempt], Outcome]:
    """An upstream answering ``outcomes`` in turn, then 200 for ever."""
    queue: Iterator[Outcome] = iter(outcomes)
    return lambda _: next(queue, Responded(200))


RESET = Failed(Failure.RESET)
CONNECT = Failed(Failure.CONNECT, request_sent=False)
TERMINATED = Failed(Failure.TERMINATED)
TERMINATED_UNSENT = Failed(Failure.TERMINATED, request_sent=False)
REFUSED = Failed(Failure.REFUSED_STREAM)
PER_TRY = Failed(Failure.TIMEOUT)
GRPC_UNAVAILABLE = Responded(200, {"grpc-status": "14", "content-type": "application/grpc"})
RATE_LIMITED = Responded(429, {"x-envoy-ratelimited": "true"})

#: (retryOn, the first answer, retried?) — Envoy's ``wouldRetryFromHeaders`` and
#: ``wouldRetryFromReset`` (``envoy-semantics.md`` §1.1).
RETRY_ON = [
    ("5xx", Responded(500), True),
    ("5xx", Responded(503), True),
    ("5xx", Responded(404), False),
    ("5xx", RESET, True),
    ("5xx", CONNECT, True),
    ("5xx", PER_TRY, True),
    ("gateway-error", Responded(502), True),
    ("gateway-error", Responded(503), True),
    ("gateway-error", Responded(504), True),
    ("gateway-error", Responded(500), False),
    ("gateway-error", RESET, True),
    ("gateway-error", PER_TRY, True),
    ("reset", RESET, True),
    ("reset", TERMINATED, True),
    ("reset", PER_TRY, True),
    ("reset", Responded(503), False),
    ("connect-failure", CONNECT, True),
    ("connect-failure", RESET, False),
    ("connect-failure", TERMINATED, False),  # the keep-alive race is not a connect failure
    ("connect-failure", PER_TRY, False),
    ("connect-failure", Responded(503), False),
    ("reset-before-request", TERMINATED_UNSENT, True),
    ("reset-before-request", TERMINATED, False),
    ("refused-stream", REFUSED, True),
    ("refused-stream", RESET, False),
    ("retriable-4xx", Responded(409), True),
    ("retriable-4xx", Responded(400), False),
    ("retriable-status-codes", Responded(503), False),  # no codes listed: matches nothing
    ("503", Responded(503), True),
    ("503", Responded(502), False),
    ("429,503", Responded(429), True),
    ("unavailable", GRPC_UNAVAILABLE, True),
    ("cancelled", GRPC_UNAVAILABLE, False),
    ("5xx", RATE_LIMITED, False),  # x-envoy-ratelimited is retried only on envoy-ratelimited
    ("429", RATE_LIMITED, False),
    ("envoy-ratelimited", RATE_LIMITED, True),
]


@pytest.mark.parametrize(("retry_on", "first", "retried"), RETRY_ON)
def test_retry_on_token_decides_what_is_retried(
    retry_on: str, first: Outcome, retried: bool
) -> None:
    """Each retryOn token retries exactly what Envoy retries for it."""
    mesh = service_mesh(f"retries: {{attempts: 2, retryOn: '{retry_on}'}}\n")
    headers = {"content-type": "application/grpc"} if first is GRPC_UNAVAILABLE else None
    trace = drive(mesh, URL, upstream=answers(first), headers=headers)
    assert len(trace.sends) == (2 if retried else 1)


# ------------------------------------------------------------------ Istio's policies


def test_default_policy_retries_connect_failures_twice_on_other_hosts() -> None:
    """No retries block: 2 retries on connect-failure, each to a host not yet tried."""
    trace = drive(service_mesh(None), URL, upstream=lambda _: CONNECT)
    assert len(trace.sends) == 3
    assert len({a.address for a in trace.sends}) == 3
    assert trace.reply.reply.status == 503
    assert trace.info.flags == ("UF", "URX")  # Envoy's order
    assert (
        b"retried and the latest reset reason: remote connection failure" in trace.reply.reply.body
    )


def test_default_policy_does_not_retry_503() -> None:
    """Istio's default lists retriable-status-codes without codes: a 503 is delivered as is."""
    trace = drive(service_mesh(None), URL, upstream=answers(Responded(503)))
    assert len(trace.sends) == 1
    assert isinstance(trace.final, Deliver)
    assert trace.info.flags == ()


def test_attempts_zero_turns_retries_off() -> None:
    """``attempts: 0``: one attempt even on a connect failure."""
    mesh = service_mesh("retries: {attempts: 0}\n")
    trace = drive(mesh, URL, upstream=lambda _: CONNECT)
    assert len(trace.sends) == 1
    assert trace.info.flags == ("UF",)


def test_retries_ran_out_delivers_the_last_response_with_urx() -> None:
    """When every attempt answers a retriable 503, the last one is delivered, flagged URX."""
    mesh = service_mesh("retries: {attempts: 3, retryOn: 5xx}\n")
    trace = drive(mesh, URL, upstream=lambda _: Responded(503))
    assert len(trace.sends) == 4
    assert isinstance(trace.final, Deliver)
    assert trace.info.flags == ("URX",)


def test_attempt_count_header_counts_attempts() -> None:
    """``x-envoy-attempt-count`` is 1 on the first attempt and grows by one per retry."""
    mesh = service_mesh("retries: {attempts: 3, retryOn: 5xx}\n")
    trace = drive(mesh, URL, upstream=answers(Responded(503), Responded(503)))
    counts = [dict(a.edits.set)["x-envoy-attempt-count"] for a in trace.sends]
    assert counts == ["1", "2", "3"]


def test_a_streamed_body_already_sent_is_not_retried() -> None:
    """A request body that cannot be replayed is retried only if none of it was sent."""
    mesh = service_mesh("retries: {attempts: 2, retryOn: '5xx,reset-before-request'}\n")

    def body() -> Iterator[bytes]:
        yield b"once"

    sent = drive(mesh, URL, method="POST", content=body(), upstream=answers(Responded(503)))
    assert len(sent.sends) == 1
    unsent = drive(mesh, URL, method="POST", content=body(), upstream=answers(TERMINATED_UNSENT))
    assert len(unsent.sends) == 2


# -------------------------------------------------------------------------- backoff


@pytest.mark.parametrize(
    ("retry", "ceiling_ms"), [(1, 25), (2, 50), (3, 100), (4, 200), (5, 250), (9, 250)]
)
def test_backoff_is_uniform_below_the_doubling_ceiling(retry: int, ceiling_ms: int) -> None:
    """Retry k waits U[0, min(25 ms · 2^(k-1), 250 ms)) in whole milliseconds (Envoy's
    JitteredExponentialBackOffStrategy with the 25 ms default)."""
    rng = random.Random(11)
    n = 4000
    waits = [backoff_seconds(retry, 0.025, rng) for _ in range(n)]
    millis = [round(w * 1000, 6) for w in waits]
    assert all(m == int(m) and 0 <= m < ceiling_ms for m in millis)
    assert max(millis) == ceiling_ms - 1  # the whole range is reached
    mean = sum(millis) / n
    expected = (ceiling_ms - 1) / 2
    sigma = ceiling_ms / (12**0.5) / n**0.5  # standard error of the mean of a uniform
    assert abs(mean - expected) < 5 * sigma


def test_backoff_base_comes_from_the_rule() -> None:
    """``retries.backoff: 100ms`` sets the base: the first wait is below 100 ms, and the
    engine sleeps exactly the drawn wait between attempts."""
    mesh = service_mesh("retries: {attempts: 4, retryOn: 5xx, backoff: 100ms}\n")
    trace = drive(mesh, URL, upstream=lambda _: Responded(503))
    waits = [s.seconds for s in trace.sleeps]
    assert len(waits) == 4
    assert [s.reason for s in trace.sleeps] == ["backoff"] * 4
    for k, wait in enumerate(waits, start=1):
        assert 0 <= wait < min(0.1 * 2 ** (k - 1), 1.0)


# ------------------------------------------------------------------------ timeouts


def slow(clock: FakeClock, seconds: float, outcome: Outcome) -> Callable[[Attempt], Outcome]:
    """An upstream taking ``seconds`` per attempt; past the route deadline it reports the
    route timeout, as the shells do."""

    def answer(attempt: Attempt) -> Outcome:
        if attempt.deadline is not None and clock.now() + seconds >= attempt.deadline:
            clock.time = attempt.deadline
            return RouteTimeout()
        clock.advance(seconds)
        return outcome

    return answer


def test_route_timeout_covers_all_attempts_and_backoff() -> None:
    """A 1 s route timeout with 0.4 s failing attempts: the third attempt hits the
    deadline, and the request ends with 504 UT exactly 1 s after it started."""
    clock = FakeClock()
    mesh = service_mesh("timeout: 1s\nretries: {attempts: 5, retryOn: 5xx}\n", clock=clock)
    start = clock.now()
    trace = drive(mesh, URL, upstream=slow(clock, 0.4, Responded(503)))
    assert trace.reply.reply.status == 504
    assert trace.reply.reply.body == b"upstream request timeout"
    assert trace.info.flags == ("UT",)
    assert clock.now() - start == pytest.approx(1.0)
    assert len(trace.sends) == 3


def test_backoff_past_the_deadline_ends_at_the_deadline() -> None:
    """A backoff that would end past the route deadline sleeps only until it: 504 UT."""
    clock = FakeClock()
    mesh = service_mesh(
        "timeout: 0.5s\nretries: {attempts: 2, retryOn: 5xx, backoff: 10s}\n", clock=clock
    )
    start = clock.now()
    found = False
    for seed in range(20):  # a draw of at least 0.5 s of the 10 s range
        mesh.rng.seed(seed)
        clock.time = start = clock.now()
        trace = drive(mesh, URL, upstream=answers(Responded(503)))
        if len(trace.sends) == 1:
            found = True
            assert trace.reply.reply.status == 504
            assert clock.now() - start == pytest.approx(0.5)
            break
    assert found


def test_per_try_timeout_at_or_above_the_route_timeout_is_ignored() -> None:
    """Envoy ignores a per-try timeout that is not below the route timeout."""
    mesh = service_mesh("timeout: 1s\nretries: {attempts: 2, perTryTimeout: 1s}\n")
    assert drive(mesh, URL).sends[0].per_try_timeout is None
    mesh = service_mesh("timeout: 1s\nretries: {attempts: 2, perTryTimeout: 0.25s}\n")
    assert drive(mesh, URL).sends[0].per_try_timeout == 0.25


def test_per_try_timeout_with_default_retry_on_is_not_retried() -> None:
    """A per-try timeout is retried only on 5xx, gateway-error or reset: Istio's default
    retryOn has none, so the request ends 504 UT after one attempt."""
    mesh = service_mesh("retries: {attempts: 2, perTryTimeout: 0.25s}\n")
    trace = drive(mesh, URL, upstream=lambda _: PER_TRY)
    assert len(trace.sends) == 1
    assert trace.reply.reply.status == 504
    assert trace.info.flags == ("UT",)


def test_expected_timeout_header_is_the_smaller_of_per_try_and_remaining() -> None:
    """``x-envoy-expected-rq-timeout-ms`` = min(per-try, route deadline − elapsed)."""
    clock = FakeClock()
    mesh = service_mesh(
        "timeout: 1s\nretries: {attempts: 2, perTryTimeout: 0.6s, retryOn: 5xx, backoff: 1ms}\n",
        clock=clock,
    )
    trace = drive(mesh, URL, upstream=slow(clock, 0.5, Responded(503)))
    expected = [dict(a.edits.set)["x-envoy-expected-rq-timeout-ms"] for a in trace.sends]
    assert expected[0] == "600"
    assert int(expected[1]) <= 500


def test_no_timeout_sends_no_expected_timeout_header() -> None:
    """Without a route or per-try timeout there is nothing to announce upstream."""
    trace = drive(service_mesh(""), URL)
    assert "x-envoy-expected-rq-timeout-ms" not in dict(trace.sends[0].edits.set)
