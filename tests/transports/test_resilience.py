"""Resilience against real servers on loopback, through every shell: what an Istio sidecar
does when upstreams refuse, reset, stall, fail in bursts, flap or are overloaded.

Each scenario starts its own servers (they count what reaches them, so the assertions are
on the wire, not on meshlib's account) and builds a mesh with a fixed seed: service
``svc`` on port 8000, whose endpoints are the servers, with a VirtualService and a
DestinationRule when the scenario needs them (the circuit-breaking scenario uses the
istio.io task's own DestinationRule for ``httpbin``). Concurrent scenarios send from a
thread per request (sync) or a task per request (asyncio, trio) through one client.
Time passes for real only where sockets need it; ejections run on a fake mesh clock. The
expected answers are Envoy's (``envoy-semantics.md`` §1 retries, §2 timeouts, §3 circuit
breaking, §4 outlier detection): status, response flags, body text and what reached the
upstream.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import anyio
import httpx
import pytest

from meshlib import Mesh
from meshlib._clock import Clock
from meshlib._core._cluster import ClusterKey
from meshlib._core._limits import Limits
from tests.conftest import SAMPLES
from tests.core.drive import FakeClock
from tests.servers import Answer, Behaviour, LocalServer, Seen, closed_port, serving
from tests.transports.shells import SHELLS, Got, Sent, Shell

SERVICE = "svc.default.svc.cluster.local"
PORT = 8000
URL = f"http://svc:{PORT}/"
SEED = 2024
#: The caller's own httpx timeout: far above every mesh timeout in this file.
CALLER_TIMEOUT = 5.0
#: Polls of 5 ms each, 2 s in all, for something a real socket must do first.
POLLS = 400

RESET_PREFIX = "upstream connect error or disconnect/reset before headers. "
OVERFLOW_BODY = RESET_PREFIX + "reset reason: overflow"

ASYNC_SHELLS = [shell for shell in SHELLS if shell.name != "sync"]


# ----------------------------------------------------------------------------- the mesh


def service_entry(ports: Sequence[int], host: str = SERVICE, name: str = "svc") -> str:
    """A ServiceEntry for ``host`` on port 8000 whose endpoints are 127.0.0.1:``ports``."""
    endpoints = "".join(f"  - {{address: 127.0.0.1, ports: {{http: {port}}}}}\n" for port in ports)
    return (
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
        f"metadata: {{name: {name}}}\n"
        f"spec:\n  hosts: [{host}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n"
        f"  ports: [{{number: {PORT}, name: http, protocol: HTTP}}]\n"
        f"  endpoints:\n{endpoints}"
    )


def mesh_for(
    *servers: LocalServer | int,
    rules: Sequence[str] = (),
    policy: str = "",
    clock: Clock | None = None,
) -> Mesh:
    """A mesh whose service ``svc`` has ``servers`` (or bare ports) as endpoints.

    Each of ``rules`` is one VirtualService rule (flow-style YAML fields, the route to
    ``svc`` added); ``policy`` is the DestinationRule's trafficPolicy (flow-style YAML).
    Without rules, the service takes Istio's default route (default retry policy, no
    timeout).
    """
    ports = [server if isinstance(server, int) else server.port for server in servers]
    documents = [service_entry(ports)]
    if rules:
        http = "".join(
            f"  - {{{rule + ', ' if rule else ''}route: [{{destination: {{host: svc}}}}]}}\n"
            for rule in rules
        )
        documents.append(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
            f"metadata: {{name: svc}}\nspec:\n  hosts: [svc]\n  http:\n{http}"
        )
    if policy:
        documents.append(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            f"metadata: {{name: svc}}\nspec:\n  host: svc\n  trafficPolicy: {policy}\n"
        )
    return Mesh.from_yaml("---\n".join(documents), seed=SEED, clock=clock)


def limits_of(mesh: Mesh, host: str = SERVICE) -> Limits:
    """The circuit breakers of ``outbound|8000||host``, as the mesh's runtime keeps them."""
    key, policy = ClusterKey(host, "", PORT), mesh.table.cluster_policy(host, "", PORT)
    with mesh.lock:
        return mesh.runtime.limits(key, policy)


def assert_limits_released(mesh: Mesh, host: str = SERVICE) -> None:
    """Every request has given back its connection, its place in the queue, its retry slot."""
    limits = limits_of(mesh, host)
    assert (limits.active, limits.pending, limits.connections, limits.retries) == (0, 0, 0, 0)


# -------------------------------------------------------------------------- the servers


def in_turn(*answers: Answer) -> Behaviour:
    """Answer the n-th request with ``answers[n]``, and every later one with the last."""
    served = itertools.count()
    lock = threading.Lock()

    def behaviour(seen: Seen) -> Answer:
        with lock:
            number = next(served)
        return answers[min(number, len(answers) - 1)]

    return behaviour


def always(answer: Answer) -> Behaviour:
    """Answer every request with ``answer``."""
    return lambda seen: answer


def attempt_counts(server: LocalServer) -> list[str]:
    """The ``x-envoy-attempt-count`` of every request the server received, in order."""
    return [seen.headers.get("x-envoy-attempt-count", "") for seen in server.seen]


# ---------------------------------------------------------------- concurrent sending


@dataclass(frozen=True)
class Timed:
    """One result, with the real time the call took."""

    got: Got
    elapsed: float


def _result_of(response: httpx.Response) -> Got:
    return Got(
        response.status_code,
        response.content,
        dict(response.headers),
        response.extensions.get("meshlib"),
    )


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (what a real socket has done) every 5 ms, for up to 2 s."""
    for _ in range(POLLS):
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError("condition not reached")


async def await_until(condition: Callable[[], bool]) -> None:
    """:func:`wait_until` for a task."""
    for _ in range(POLLS):
        if condition():
            return
        await anyio.sleep(0.005)
    raise AssertionError("condition not reached")


def send_together(
    shell: Shell,
    mesh: Mesh,
    requests: Sequence[Sent],
    *,
    after: Callable[[], bool] | None = None,
) -> list[Timed]:
    """Send ``requests`` concurrently through one client of ``shell``, results in order.

    All start at once (a barrier for threads, one task group for tasks); with ``after``,
    the first goes alone and the others once ``after()`` holds.
    """
    if shell.name == "sync":
        return _together_sync(mesh, requests, after)
    return anyio.run(_together_async, mesh, requests, after, backend=shell.name)


def _together_sync(
    mesh: Mesh, requests: Sequence[Sent], after: Callable[[], bool] | None
) -> list[Timed]:
    barrier = threading.Barrier(len(requests))
    with httpx.Client(transport=mesh.transport(), timeout=CALLER_TIMEOUT) as client:

        def one(index: int, sent: Sent) -> Timed:
            if after is None:
                barrier.wait(timeout=5)
            elif index:
                wait_until(after)
            start = time.monotonic()
            try:
                got = _result_of(client.request(sent.method, sent.url, headers=sent.headers))
            except httpx.HTTPError as error:
                got = Got(error=error)
            return Timed(got, time.monotonic() - start)

        with ThreadPoolExecutor(len(requests)) as pool:
            return list(pool.map(one, range(len(requests)), requests))


async def _together_async(
    mesh: Mesh, requests: Sequence[Sent], after: Callable[[], bool] | None
) -> list[Timed]:
    results: dict[int, Timed] = {}
    async with httpx.AsyncClient(
        transport=mesh.async_transport(), timeout=CALLER_TIMEOUT
    ) as client:

        async def one(index: int, sent: Sent) -> None:
            if after is not None and index:
                await await_until(after)
            start = time.monotonic()
            try:
                response = await client.request(sent.method, sent.url, headers=sent.headers)
            except httpx.HTTPError as error:
                got = Got(error=error)
            else:
                got = _result_of(response)
            results[index] = Timed(got, time.monotonic() - start)

        async with anyio.create_task_group() as group:
            for index, sent in enumerate(requests):
                group.start_soon(one, index, sent)
    return [results[index] for index in range(len(requests))]


def info_of(got: Got) -> tuple[int, tuple[str, ...], int]:
    """Status, flags and attempts of a result (which must carry MeshInfo)."""
    assert got.info is not None, got.error
    return got.status, got.info.flags, got.info.attempts


# ----------------------------------------------------------------- 1. a refused port


def test_refused_port_fails_over_to_the_healthy_endpoint(shell: Shell) -> None:
    """Default retry policy: a connect failure is retried on the other endpoint, unflagged."""
    with serving(LocalServer("healthy")) as (healthy,):
        mesh = mesh_for(closed_port(), healthy)
        results = shell.send(mesh, [Sent(URL)] * 6)
    attempts = [info_of(result)[2] for result in results]
    assert all(result.status == 200 for result in results)
    assert 2 in attempts
    assert set(attempts) <= {1, 2}
    # Every request reached the healthy server once, numbered as the attempt it was.
    assert attempt_counts(healthy) == [str(n) for n in attempts]
    for result in results:
        assert result.info is not None
        assert result.info.endpoint == f"127.0.0.1:{healthy.port}"
        assert result.info.flags == ()


def test_refused_port_alone_is_503_after_three_attempts(shell: Shell) -> None:
    """Only a closed port: 2 retries, then 503 ``UF,URX`` with Envoy's reset text."""
    (result,) = shell.send(mesh_for(closed_port()), [Sent(URL)])
    assert info_of(result) == (503, ("UF", "URX"), 3)
    assert result.headers["content-type"] == "text/plain"
    assert result.text == (
        RESET_PREFIX + "retried and the latest reset reason: remote connection failure, "
        "transport failure reason: delayed connect error: Connection refused"
    )


# ------------------------------------------------------------- 2. reset before response


def test_reset_is_a_connection_termination_not_retried_by_default(shell: Shell) -> None:
    """An HTTP/1.1 reset before the answer is Envoy's ``UC``; not a connect failure: no retry."""
    with serving(LocalServer("resets", always(Answer(reset=True)))) as (server,):
        (result,) = shell.send(mesh_for(server), [Sent(URL)])
    assert info_of(result) == (503, ("UC",), 1)
    assert result.text == RESET_PREFIX + "reset reason: connection termination"
    assert attempt_counts(server) == ["1"]


def test_retry_on_reset_retries_a_reset(shell: Shell) -> None:
    """``retryOn: reset``: a reset is retried; if every try resets, 503 ``URX`` after 3."""
    recovers = LocalServer("recovers", in_turn(Answer(reset=True), Answer(body=b"ok")))
    resets = LocalServer("resets", always(Answer(reset=True)))
    retries = "retries: {attempts: 2, retryOn: reset}"
    with serving(recovers, resets):
        (recovered,) = shell.send(mesh_for(recovers, rules=[retries]), [Sent(URL)])
        (exhausted,) = shell.send(mesh_for(resets, rules=[retries]), [Sent(URL)])
    assert info_of(recovered) == (200, (), 2)
    assert recovered.body == b"ok"
    assert attempt_counts(recovers) == ["1", "2"]
    assert info_of(exhausted) == (503, ("UC", "URX"), 3)
    assert exhausted.text == (
        RESET_PREFIX + "retried and the latest reset reason: connection termination"
    )
    assert attempt_counts(resets) == ["1", "2", "3"]


# -------------------------------------------------------------- 3. slow servers, timeouts


def test_route_timeout_answers_504_before_the_slow_server(shell: Shell) -> None:
    """``timeout: 0.3s`` against a 0.45 s server: 504 ``UT`` in under 0.45 s of real time."""
    with serving(LocalServer("slow", always(Answer(body=b"late", delay=0.45)))) as (slow,):
        (timed,) = send_together(shell, mesh_for(slow, rules=["timeout: 0.3s"]), [Sent(URL)])
    result = timed.got
    assert info_of(result) == (504, ("UT",), 1)
    assert result.text == "upstream request timeout"
    assert result.info is not None
    assert result.info.details == "response_timeout"
    assert timed.elapsed < 0.45
    (seen,) = slow.seen
    assert 250 <= int(seen.headers["x-envoy-expected-rq-timeout-ms"]) <= 300


def test_route_timeout_is_a_deadline_for_a_trickling_server(shell: Shell) -> None:
    """A response head trickling in over 0.5 s still ends at the 0.15 s route deadline."""
    trickle = Answer(body=b"late", headers={"a": "1", "b": "2", "c": "3"}, trickle=0.1)
    with serving(LocalServer("trickles", always(trickle))) as (server,):
        (timed,) = send_together(shell, mesh_for(server, rules=["timeout: 0.15s"]), [Sent(URL)])
    assert info_of(timed.got) == (504, ("UT",), 1)
    assert timed.elapsed < 0.45


def test_per_try_timeout_retries_a_slow_first_try(shell: Shell) -> None:
    """``perTryTimeout: 0.1s``, ``retryOn: 5xx``: a slow first try is cut and retried."""
    first_slow = in_turn(Answer(body=b"slow", delay=0.3), Answer(body=b"fast"))
    rule = "retries: {attempts: 2, perTryTimeout: 0.1s, retryOn: 5xx}"
    with serving(LocalServer("first-slow", first_slow)) as (server,):
        (timed,) = send_together(shell, mesh_for(server, rules=[rule]), [Sent(URL)])
    assert info_of(timed.got) == (200, (), 2)
    assert timed.got.body == b"fast"
    assert timed.elapsed < 0.3
    assert attempt_counts(server) == ["1", "2"]
    assert [seen.headers["x-envoy-expected-rq-timeout-ms"] for seen in server.seen] == [
        "100",
        "100",
    ]


def test_per_try_timeout_with_default_retry_on_is_not_retried(shell: Shell) -> None:
    """Istio's default ``retryOn`` has no 5xx, gateway-error or reset: one try, 504 ``UT``."""
    rule = "retries: {attempts: 2, perTryTimeout: 0.1s}"
    with serving(LocalServer("slow", always(Answer(body=b"slow", delay=0.3)))) as (server,):
        (result,) = shell.send(mesh_for(server, rules=[rule]), [Sent(URL)])
    assert info_of(result) == (504, ("UT",), 1)
    assert result.text == "upstream request timeout"
    assert result.info is not None
    assert result.info.details == "upstream_per_try_timeout"
    assert len(server.seen) == 1


# ---------------------------------------------------------------------- 4. 503 bursts


def burst(failures: int) -> Behaviour:
    """503 ``busy`` (with a header of the server's own) ``failures`` times, then 200 ``ok``."""
    busy = Answer(503, b"busy", headers={"x-server": "burst"})
    return in_turn(*[busy] * failures, Answer(body=b"ok"))


def test_retry_on_5xx_rides_out_a_503_burst(shell: Shell) -> None:
    """``retryOn: 5xx, attempts: 3`` through two 503s: 200 on the third attempt."""
    with serving(LocalServer("burst", burst(2))) as (server,):
        (result,) = shell.send(
            mesh_for(server, rules=["retries: {attempts: 3, retryOn: 5xx}"]), [Sent(URL)]
        )
    assert info_of(result) == (200, (), 3)
    assert result.body == b"ok"
    assert attempt_counts(server) == ["1", "2", "3"]


def test_default_policy_delivers_the_upstream_503_verbatim(shell: Shell) -> None:
    """Istio ≥ 1.24's default policy does not retry 503: the server's own answer, once."""
    with serving(LocalServer("burst", burst(2))) as (server,):
        (result,) = shell.send(mesh_for(server), [Sent(URL)])
    assert info_of(result) == (503, (), 1)
    assert result.body == b"busy"
    assert result.headers["x-server"] == "burst"
    assert result.info is not None
    assert result.info.details == "via_upstream"
    assert attempt_counts(server) == ["1"]


def test_retries_exhausted_deliver_the_last_503_with_urx(shell: Shell) -> None:
    """More 503s than retries: the last upstream 503 as it came, flagged ``URX``."""
    with serving(LocalServer("burst", burst(5))) as (server,):
        (result,) = shell.send(
            mesh_for(server, rules=["retries: {attempts: 2, retryOn: 5xx}"]), [Sent(URL)]
        )
    assert info_of(result) == (503, ("URX",), 3)
    assert (result.body, result.headers["x-server"]) == (b"busy", "burst")
    assert attempt_counts(server) == ["1", "2", "3"]


# ------------------------------------------------------- 5. flapping endpoint, ejection


def test_outlier_detection_ejects_the_failing_endpoint_until_base_ejection_time(
    shell: Shell,
) -> None:
    """3 consecutive 500s eject a host: no traffic for 30 s (mesh clock), back after."""
    failing = LocalServer("failing", always(Answer(500, b"boom")))
    healthy = [LocalServer(f"healthy-{n}") for n in range(3)]
    clock = FakeClock()
    policy = (
        "{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutive5xxErrors: 3, "
        "interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}}"
    )
    with serving(failing, *healthy):
        mesh = mesh_for(failing, *healthy, policy=policy, clock=clock)
        # Round robin over 4 hosts: 12 requests reach the failing one 3 times.
        first = shell.send(mesh, [Sent(URL)] * 12)
        assert [r.status for r in first].count(500) == 3
        assert len(failing.seen) == 3
        ejected = shell.send(mesh, [Sent(URL)] * 12)
        clock.advance(29)
        still_ejected = shell.send(mesh, [Sent(URL)] * 9)
        assert len(failing.seen) == 3  # nothing reached it for 29 s of mesh time
        clock.advance(2)
        returned = shell.send(mesh, [Sent(URL)] * 8)
    assert all(r.status == 200 for r in ejected + still_ejected)
    # Back in the round robin: two rounds of 4 reach it twice.
    assert [r.status for r in returned].count(500) == 2
    assert len(failing.seen) == 3 + 2


# ------------------------------------------------- 6. concurrency and circuit breaking


def test_circuit_breaking_task_one_connection_one_pending(shell: Shell) -> None:
    """istio.io's circuit-breaking rule, 3 at once: one runs, one waits, one is 503 ``UO``."""
    rule = (SAMPLES / "istio-io-tasks" / "circuit-breaking-destination-rule.yaml").read_text()
    host = "httpbin.default.svc.cluster.local"
    with serving(LocalServer("httpbin", always(Answer(body=b"ok", delay=0.2)))) as (server,):
        mesh = Mesh.from_yaml(
            service_entry([server.port], host=host, name="httpbin") + "---\n" + rule, seed=SEED
        )
        url = f"http://httpbin:{PORT}/get"
        results = [timed.got for timed in send_together(shell, mesh, [Sent(url)] * 3)]
        # The overflow is not an upstream failure: consecutive5xxErrors: 1 ejects nothing.
        (after,) = shell.send(mesh, [Sent(url)])
    assert sorted(r.status for r in results) == [200, 200, 503]
    (overflow,) = [r for r in results if r.status == 503]
    assert info_of(overflow)[1] == ("UO",)
    assert overflow.headers["x-envoy-overloaded"] == "true"
    assert overflow.text == OVERFLOW_BODY
    assert after.status == 200
    assert server.max_in_flight == 1
    assert [seen.headers.get("connection") for seen in server.seen] == ["close"] * 3
    assert_limits_released(mesh, host)


def test_http2_max_requests_bounds_requests_in_flight(shell: Shell) -> None:
    """``http2MaxRequests: 5``, 50 threads or 200 tasks: never more than 5 at the server."""
    crowd = 50 if shell.name == "sync" else 200
    with serving(LocalServer("slow", always(Answer(body=b"ok", delay=0.1)))) as (server,):
        mesh = mesh_for(server, policy="{connectionPool: {http: {http2MaxRequests: 5}}}")
        results = [timed.got for timed in send_together(shell, mesh, [Sent(URL)] * crowd)]
        assert_limits_released(mesh)
        (after,) = shell.send(mesh, [Sent(URL)])
    assert server.max_in_flight <= 5
    served = [r for r in results if r.status == 200]
    overflowed = [r for r in results if r.status != 200]
    assert served
    assert overflowed
    assert len(served) + len(overflowed) == crowd
    for result in overflowed:
        assert info_of(result)[:2] == (503, ("UO",))
        assert result.headers["x-envoy-overloaded"] == "true"
    assert len(server.seen) == len(served) + 1
    assert after.status == 200
    assert_limits_released(mesh)


# ------------------------------------------------ 7. the pending queue and the route timeout


def test_route_timeout_covers_the_pending_queue(shell: Shell) -> None:
    """One connection, 0.25 s route timeout, a 0.4 s server, 2 at once: both 504 ``UT``."""
    policy = "{connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 10}}}"
    with serving(LocalServer("slow", always(Answer(body=b"ok", delay=0.4)))) as (server,):
        mesh = mesh_for(server, rules=["timeout: 0.25s"], policy=policy)
        results = send_together(shell, mesh, [Sent(URL)] * 2)
        assert_limits_released(mesh)
    for timed in results:
        status, flags, _ = info_of(timed.got)
        assert (status, flags) == (504, ("UT",))
        assert timed.got.text == "upstream request timeout"
        assert timed.elapsed < 0.4  # neither waited for the server's answer
    # The first timed out on its own request, the other while it waited for the connection
    # (or, handed the connection at the last moment, on a request that had no time left).
    assert max(info_of(timed.got)[2] for timed in results) == 1


def test_a_request_times_out_while_waiting_for_a_connection(shell: Shell) -> None:
    """The route timer runs in the pending queue: 504 ``UT`` at 0.25 s, never sent."""
    policy = "{connectionPool: {tcp: {maxConnections: 1}}}"
    rules = ["match: [{headers: {x-hold: {exact: hold}}}], timeout: 2s", "timeout: 0.25s"]
    with serving(LocalServer("slow", always(Answer(body=b"ok", delay=0.4)))) as (server,):
        mesh = mesh_for(server, rules=rules, policy=policy)
        holder, waiter = send_together(
            shell,
            mesh,
            [Sent(URL + "hold", headers={"x-hold": "hold"}), Sent(URL + "wait")],
            after=lambda: server.in_flight == 1,
        )
        assert_limits_released(mesh)
    assert info_of(holder.got) == (200, (), 1)
    assert info_of(waiter.got) == (504, ("UT",), 0)
    assert waiter.got.text == "upstream request timeout"
    assert 0.25 <= waiter.elapsed < 0.4
    assert [seen.path for seen in server.seen] == ["/hold"]


def test_a_connection_granted_after_the_deadline_is_not_used(shell: Shell) -> None:
    """The deadline passes in the queue, then the connection frees up: 504 ``UT``, unsent."""
    clock = FakeClock()
    meshes: list[Mesh] = []

    def hold_until_late(seen: Seen) -> Answer:
        if seen.path == "/hold":
            wait_until(lambda: limits_of(meshes[0]).pending == 1)
            clock.advance(5)  # the waiter's 1 s route deadline passes while it waits
        return Answer(body=b"ok")

    policy = "{connectionPool: {tcp: {maxConnections: 1}}}"
    with serving(LocalServer("holds", hold_until_late)) as (server,):
        mesh = mesh_for(
            server, rules=["timeout: 1s, retries: {attempts: 0}"], policy=policy, clock=clock
        )
        meshes.append(mesh)
        _, waiter = send_together(
            shell,
            mesh,
            [Sent(URL + "hold"), Sent(URL + "wait")],
            after=lambda: server.in_flight == 1,
        )
        assert_limits_released(mesh)
    status, flags, _ = info_of(waiter.got)
    assert (status, flags) == (504, ("UT",))
    assert waiter.got.text == "upstream request timeout"
    assert [seen.path for seen in server.seen] == ["/hold"]


# ------------------------------------------------------ 8. cancellation while waiting


@pytest.mark.parametrize("shell", ASYNC_SHELLS, ids=lambda shell: shell.name)
def test_a_cancelled_waiter_leaves_the_queue(shell: Shell) -> None:
    """A task cancelled while waiting for a connection gives up its place, and only it."""
    policy = "{connectionPool: {tcp: {maxConnections: 1}}}"
    results: dict[str, Got] = {}

    async def scenario(mesh: Mesh, server: LocalServer) -> None:
        async with httpx.AsyncClient(
            transport=mesh.async_transport(), timeout=CALLER_TIMEOUT
        ) as client:

            async def first() -> None:
                results["first"] = _result_of(await client.get(URL + "first"))

            async with anyio.create_task_group() as group:
                group.start_soon(first)
                await await_until(lambda: server.in_flight == 1)
                with anyio.move_on_after(0.1) as scope:
                    await client.get(URL + "cancelled")
                assert scope.cancelled_caught
                limits = limits_of(mesh)
                assert (limits.pending, limits.active, limits.connections) == (0, 1, 1)
            with anyio.fail_after(2):  # a connection kept for the cancelled task would hang
                results["next"] = _result_of(await client.get(URL + "next"))

    with serving(LocalServer("slow", always(Answer(body=b"ok", delay=0.3)))) as (server,):
        mesh = mesh_for(server, policy=policy)
        anyio.run(scenario, mesh, server, backend=shell.name)
        assert_limits_released(mesh)
    assert info_of(results["first"]) == (200, (), 1)
    assert info_of(results["next"]) == (200, (), 1)
    assert [seen.path for seen in server.seen] == ["/first", "/next"]


# ------------------------------------------------------ 9. requests per connection


def test_max_requests_per_connection_1_closes_every_connection(shell: Shell) -> None:
    """``maxRequestsPerConnection: 1``: ``connection: close`` and a new connection each time."""
    policy = "{connectionPool: {http: {maxRequestsPerConnection: 1}}}"
    with serving(LocalServer("server")) as (server,):
        results = shell.send(mesh_for(server, policy=policy), [Sent(URL)] * 3)
    assert [r.status for r in results] == [200] * 3
    assert [seen.headers.get("connection") for seen in server.seen] == ["close"] * 3
    assert len({seen.client_port for seen in server.seen}) == 3


def test_connections_are_kept_alive_by_default(shell: Shell) -> None:
    """Without ``maxRequestsPerConnection``, consecutive requests share one connection."""
    with serving(LocalServer("server")) as (server,):
        results = shell.send(mesh_for(server), [Sent(URL)] * 3)
    assert [r.status for r in results] == [200] * 3
    assert [seen.headers.get("connection") for seen in server.seen] == ["keep-alive"] * 3
    assert len({seen.client_port for seen in server.seen}) == 1


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell.name)
def test_a_body_read_by_the_inner_transport_still_ends_the_request(shell: Shell) -> None:
    """httpx.MockTransport hands back responses whose body is already read: each request
    must still give its connection back, or one slot (http2MaxRequests: 1) would be
    taken for ever and the second request would overflow."""
    mesh = mesh_for(closed_port(), policy="{connectionPool: {http: {http2MaxRequests: 1}}}")
    mock = httpx.MockTransport(lambda request: httpx.Response(200, text="ok"))
    results = shell.send(mesh, [Sent(URL)] * 3, inner=lambda _: mock)
    assert [r.status for r in results] == [200, 200, 200]
    assert_limits_released(mesh)
