"""The test kit: virtual time, faults from code and their scopes, in-memory endpoints.

Nothing here waits for real: every delay runs on a VirtualClock, and every endpoint is an
in-memory handler. Scenarios run through the sync shell and the async shells.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import anyio.lowlevel
import httpx
import pytest

import meshlib
from meshlib.testing import Backends, VirtualClock, fault
from tests.conftest import SAMPLES
from tests.transports.shells import Sent, Shell

BOOKINFO = SAMPLES / "bookinfo-networking"
RATINGS = "http://ratings:9080/ratings/0"
JASON = {"end-user": "jason"}


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"stars": 5})


def bookinfo(*samples: str, **options: object) -> tuple[meshlib.Mesh, Backends]:
    """A mesh from Bookinfo samples, with ratings v1 and v2 in memory."""
    paths = [BOOKINFO / "destination-rule-all.yaml", *(BOOKINFO / s for s in samples)]
    mesh = meshlib.Mesh.from_paths(*paths, clock=VirtualClock(), seed=1, **options)  # type: ignore[arg-type]
    backends = Backends(mesh)
    for version in ("v1", "v2"):
        backends.mount("ratings", ok, labels={"version": version})
    return mesh, backends


# ------------------------------------------------------------------------ the clock


def test_virtual_sleeps_take_no_real_time_and_move_the_clock() -> None:
    """A 7 s sleep returns at once; the clock says 7 s later."""
    clock = VirtualClock(100.0)
    started = time.monotonic()
    clock.sleep(7.0)
    assert clock.now() == 107.0
    assert time.monotonic() - started < 0.5


def test_overlapping_waits_end_together() -> None:
    """Two tasks sleeping 7 s at the same time both end at +7 s, not +14 s; sleeps one
    after the other add up."""
    clock = VirtualClock()

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(clock.asleep, 7.0)
            group.start_soon(clock.asleep, 7.0)
        assert clock.now() == 7.0
        await clock.asleep(2.0)
        assert clock.now() == 9.0

    anyio.run(main)


def test_the_clock_never_goes_back() -> None:
    """advance() refuses negative time."""
    with pytest.raises(ValueError, match="cannot go back"):
        VirtualClock().advance(-1.0)


# ----------------------------------------------------------- Bookinfo fault samples


def test_bookinfo_delay_sample_delays_jason_by_seven_virtual_seconds(shell: Shell) -> None:
    """virtual-service-ratings-test-delay: jason's calls wait 7 s (in virtual time, at
    once in real time); everyone else's do not."""
    mesh, backends = bookinfo("virtual-service-ratings-test-delay.yaml")
    started = time.monotonic()
    jason, other = shell.send(
        mesh, [Sent(RATINGS, headers=JASON), Sent(RATINGS)], inner=backends.inner
    )
    assert time.monotonic() - started < 2.0
    assert jason.info is not None
    assert other.info is not None
    assert (jason.status, jason.info.flags, jason.info.elapsed) == (200, ("DI",), 7.0)
    assert (other.status, other.info.flags, other.info.elapsed) == (200, (), 0.0)
    assert mesh.clock.now() == 7.0


def test_bookinfo_abort_sample_answers_500_to_jason_without_ratings(shell: Shell) -> None:
    """virtual-service-ratings-test-abort: jason gets 500 ``fault filter abort`` and
    ratings never sees the request; others reach ratings."""
    mesh, backends = bookinfo("virtual-service-ratings-test-abort.yaml")
    jason, other = shell.send(
        mesh, [Sent(RATINGS, headers=JASON), Sent(RATINGS)], inner=backends.inner
    )
    assert (jason.status, jason.text) == (500, "fault filter abort")
    assert jason.info is not None
    assert jason.info.flags == ("FI",)
    assert other.status == 200
    backends.assert_called("ratings", times=1, statuses=[200])


def test_a_route_timeout_shorter_than_the_delay_does_not_cut_it(shell: Shell) -> None:
    """As in Envoy, the route timer starts after the fault: a 7 s delay under a 1 s
    timeout is waited in full and the request then succeeds."""
    mesh, backends = bookinfo()
    mesh.apply(
        [
            *mesh.resources,
            *meshlib.Mesh.from_yaml(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                "metadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http:\n"
                "  - route: [{destination: {host: ratings, subset: v1}}]\n"
                "    timeout: 1s\n"
                "    fault: {delay: {fixedDelay: 7s, percentage: {value: 100}}}\n"
            ).resources,
        ]
    )
    (got,) = shell.send(mesh, [Sent(RATINGS)], inner=backends.inner)
    assert got.status == 200
    assert got.info is not None
    assert got.info.elapsed == 7.0


# ------------------------------------------------------------------ faults from code


def test_fault_as_context_manager_and_decorator(shell: Shell) -> None:
    """Inside ``with fault(...)`` ratings aborts; after it, it answers again. The same
    fault decorating a function applies while the function runs."""
    mesh, backends = bookinfo()
    with fault("ratings", abort=503):
        (inside,) = shell.send(mesh, [Sent(RATINGS)], inner=backends.inner)
    (after,) = shell.send(mesh, [Sent(RATINGS)], inner=backends.inner)
    assert (inside.status, after.status) == (503, 200)

    @fault("ratings", delay=2.5)
    def decorated() -> float:
        (got,) = shell.send(mesh, [Sent(RATINGS)], inner=backends.inner)
        assert got.info is not None
        return got.info.elapsed

    assert decorated() == 2.5


def test_decorating_a_coroutine_function() -> None:
    """``@fault(...)`` on an async function scopes the fault to each call."""
    _, backends = bookinfo()

    @fault("ratings", abort=418)
    async def call() -> int:
        async with httpx.AsyncClient(transport=backends.async_transport()) as client:
            return (await client.get(RATINGS)).status_code

    assert anyio.run(call) == 418


@pytest.mark.parametrize(
    ("match", "request_headers", "path", "hit"),
    [
        ({"subset": "v1"}, {}, "/ratings/0", "v1"),
        ({"subset": "v2"}, {}, "/ratings/0", "v2"),
        ({"path": "/ratings/"}, {}, "/ratings/0", "any"),
        ({"path": "/other"}, {}, "/ratings/0", "none"),
        ({"headers": {"end-user": "jason"}}, JASON, "/ratings/0", "any"),
        ({"headers": {"end-user": "jason"}}, {}, "/ratings/0", "none"),
    ],
)
def test_fault_matches_subset_path_and_headers(
    match: dict[str, object], request_headers: dict[str, str], path: str, hit: str
) -> None:
    """A fault applies only to requests routed to its subset, under its path prefix,
    with its exact headers."""
    mesh, backends = bookinfo("virtual-service-reviews-50-v3.yaml")
    mesh.apply(
        [
            *mesh.resources,
            *meshlib.Mesh.from_yaml(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                "metadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http:\n"
                "  - route:\n    - {destination: {host: ratings, subset: v1}, weight: 50}\n"
                "    - {destination: {host: ratings, subset: v2}, weight: 50}\n"
            ).resources,
        ]
    )
    client = httpx.Client(transport=backends.transport())
    with fault("ratings", abort=503, **match):  # type: ignore[arg-type]
        answers = [
            client.get(f"http://ratings:9080{path}", headers=request_headers) for _ in range(40)
        ]
    aborted = {r.extensions["meshlib"].subset for r in answers if r.status_code == 503}
    expected = {"v1": {"v1"}, "v2": {"v2"}, "any": {"v1", "v2"}, "none": set()}[hit]
    assert aborted == expected


def test_fault_percent_converges_at_a_fixed_seed() -> None:
    """``percent=25`` aborts about a quarter of 2000 requests (within 4.5 σ), and the
    same seed gives the same requests."""
    runs = []
    for _ in range(2):
        _, backends = bookinfo()
        client = httpx.Client(transport=backends.transport())
        with fault("ratings", abort=503, percent=25):
            runs.append([client.get(RATINGS).status_code for _ in range(2000)])
    aborted = runs[0].count(503)
    assert abs(aborted - 500) <= 4.5 * (2000 * 0.25 * 0.75) ** 0.5
    assert runs[0] == runs[1]


def test_fault_on_an_external_host_that_passes_through() -> None:
    """An unknown host (ALLOW_ANY passthrough) can be failed too."""
    _, backends = bookinfo()
    backends.mount_external("api.example.com", ok)
    client = httpx.Client(transport=backends.transport())
    assert client.get("http://api.example.com/x").status_code == 200
    with fault("api.example.com", abort=502):
        assert client.get("http://api.example.com/x").status_code == 502


def test_a_fault_needs_something_to_inject() -> None:
    """fault() without delay, abort or gRPC status is a mistake, said at once."""
    with pytest.raises(ValueError, match="needs a delay, an abort"):
        fault("ratings")
    with pytest.raises(ValueError, match="unknown gRPC status"):
        fault("ratings", grpc_status="NOPE")


# --------------------------------------------------------------------------- scopes


def test_concurrent_threads_see_only_their_own_faults() -> None:
    """Two threads inject different faults for the same host at the same time: each
    sees only its own (context scope); a third thread with none sees none."""
    _, backends = bookinfo()
    client = httpx.Client(transport=backends.transport())
    barrier = threading.Barrier(3)

    def run(status: int | None) -> list[int]:
        if status is None:
            barrier.wait()
            return [client.get(RATINGS).status_code for _ in range(20)]
        with fault("ratings", abort=status):
            barrier.wait()
            return [client.get(RATINGS).status_code for _ in range(20)]

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(run, (503, 429, None)))
    assert results == [[503] * 20, [429] * 20, [200] * 20]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_concurrent_tasks_see_only_their_own_faults(backend: str) -> None:
    """Two tasks (asyncio, trio) with different faults for the same host, interleaved
    on one client: no leak between them."""
    _, backends = bookinfo()

    async def main() -> dict[str, list[int]]:
        results: dict[str, list[int]] = {}
        async with httpx.AsyncClient(transport=backends.async_transport()) as client:

            async def run(name: str, status: int) -> None:
                with fault("ratings", abort=status):
                    codes = []
                    for _ in range(10):
                        codes.append((await client.get(RATINGS)).status_code)
                        await anyio.lowlevel.checkpoint()
                    results[name] = codes

            async with anyio.create_task_group() as group:
                group.start_soon(run, "a", 503)
                group.start_soon(run, "b", 504)
        return results

    results = anyio.run(main, backend=backend)
    assert results == {"a": [503] * 10, "b": [504] * 10}


def test_mesh_scope_reaches_threads_started_by_the_code_under_test() -> None:
    """``fault(..., mesh=mesh)`` applies to every thread using that mesh (threads do not
    inherit the context), and to no other mesh."""
    mesh, backends = bookinfo()
    _, other_backends = bookinfo()

    def in_a_new_thread(b: Backends) -> int:
        result: list[int] = []
        thread = threading.Thread(
            target=lambda: result.append(
                httpx.Client(transport=b.transport()).get(RATINGS).status_code
            )
        )
        thread.start()
        thread.join()
        return result[0]

    with fault("ratings", abort=503):  # context scope: the new thread does not see it
        assert in_a_new_thread(backends) == 200
    with fault("ratings", abort=503, mesh=mesh):
        assert in_a_new_thread(backends) == 503
        assert in_a_new_thread(other_backends) == 200
    assert in_a_new_thread(backends) == 200


# ------------------------------------------------------------------ in-memory endpoints


def test_calls_are_recorded_with_subset_endpoint_request_and_outcome(shell: Shell) -> None:
    """Retries on an in-memory endpoint: ratings was called 3 times, the third succeeded."""
    mesh = meshlib.Mesh.from_yaml(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http:\n"
        "  - route: [{destination: {host: ratings}}]\n"
        "    retries: {attempts: 3, retryOn: 5xx}\n",
        clock=VirtualClock(),
        seed=3,
    )
    answers: Iterator[int] = iter([503, 503, 200])
    backends = Backends(mesh)
    backends.mount("ratings", lambda request: httpx.Response(next(answers)))
    (got,) = shell.send(mesh, [Sent(RATINGS)], inner=backends.inner)
    assert got.status == 200
    calls = backends.assert_called("ratings", times=3, statuses=[503, 503, 200])
    assert [c.request.headers["x-envoy-attempt-count"] for c in calls] == ["1", "2", "3"]
    assert all(c.request.headers["host"] == "ratings:9080" for c in calls)
    assert calls[0].service == "ratings.default.svc.cluster.local"
    assert calls[0].endpoint.endswith(":9080")
    assert calls[1].at > calls[0].at  # the backoff took (virtual) time


def test_failed_attempts_are_recorded_with_their_error(shell: Shell) -> None:
    """A handler raising ConnectError is a refused connection: retried by Istio's
    default policy, recorded with the error and no status."""
    mesh = meshlib.Mesh(clock=VirtualClock(), seed=2)
    backends = Backends(mesh)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    backends.mount("ratings", refuse)
    (got,) = shell.send(mesh, [Sent(RATINGS)], inner=backends.inner)
    assert got.status == 503
    calls = backends.assert_called("ratings", times=3, statuses=[None, None, None])
    assert all(isinstance(c.error, httpx.ConnectError) for c in calls)


def test_latency_past_the_route_timeout_times_out_in_virtual_time(shell: Shell) -> None:
    """An endpoint taking 2 s under a 0.5 s route timeout: 504 UT, and the clock shows
    exactly 0.5 s, with no real waiting."""
    mesh = meshlib.Mesh.from_yaml(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http:\n"
        "  - route: [{destination: {host: ratings}}]\n    timeout: 0.5s\n",
        clock=VirtualClock(),
    )
    backends = Backends(mesh)
    backends.mount("ratings", ok, latency=2.0)
    started = time.monotonic()
    (got,) = shell.send(mesh, [Sent(RATINGS)], inner=backends.inner)
    assert time.monotonic() - started < 2.0
    assert got.status == 504
    assert got.info is not None
    assert (got.info.flags, got.info.elapsed) == (("UT",), 0.5)


def test_assert_called_failure_lists_every_call() -> None:
    """A failed assertion names what was expected and lists the calls made."""
    _, backends = bookinfo()
    httpx.Client(transport=backends.transport()).get(RATINGS)
    with pytest.raises(AssertionError) as failure:
        backends.assert_called("ratings", times=2)
    message = str(failure.value)
    assert message.startswith("ratings was called 1 times, expected 2")
    assert "1. GET ratings.default.svc.cluster.local at 192.0.2." in message
    assert message.endswith("/ratings/0: 200")
