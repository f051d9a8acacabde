"""Resilience policies on the request path: what retries, timeouts, circuit breakers and
outlier detection cost per request, with no sockets.

Engine level: each request is driven as the sync transport drives it, without httpx or
I/O: ``mesh.start_call(head)``, ``call.start()`` and ``call.send(outcome)`` under the
mesh's lock until the call delivers or replies, ``call.info``, ``mesh.finish_call``;
upstream answers are scripted, and backoff sleeps are skipped (the time a retry waits is
not the mesh's CPU). One service, three endpoints, the mesh's real clock. Cases:

* ``default``: no VirtualService, no DestinationRule: Istio's default route (its default
  retry policy, not triggered) and least-request balancing;
* ``full policy``: a VirtualService rule with ``retries {attempts: 3, retryOn: 5xx,
  perTryTimeout: 2s}`` and ``timeout: 10s``; a DestinationRule with ``LEAST_REQUEST``,
  ``connectionPool`` limits far above what one request uses, and ``outlierDetection``;
  every attempt answered 200, so nothing but the bookkeeping runs;
* ``overflow``: the full policy with ``http2MaxRequests: 1`` and one request held in
  flight; the timed request is answered at once with 503 ``UO`` (start → ``Reply``);
* ``retried twice``: the full policy, the upstream answering 503, 503, then 200;
* what the full policy's parts cost: the same without its timeouts (route timeout and
  per-try timeout), and without ``outlierDetection``;
* ``default`` and ``full policy`` again over one cluster of ``LARGE`` endpoints: nothing
  on the request path should grow with the cluster.

Each case is timed in rounds, one batch of about ``BATCH_SECONDS`` per case per round
(the cases in alternating order A B C, C B A, … so that bursts of load from other
processes hit them alike; GC off during a batch). Reported: µs per request (median and
best round), Python and C function calls per request (``sys.setprofile``, independent
of the machine), and, paired within a round, the full policy's throughput ÷ the
default's, the µs it adds (and its timeouts and outlier detection), and the µs each
retry adds.

Transport level: the default and full-policy meshes behind ``httpx.Client`` with the
real sync transport over :class:`benchmarks.http.CannedTransport` (a canned ``200`` and
no I/O), with plain httpx over the same canned transport as the reference; alternating
rounds, paired ratios (see :mod:`benchmarks._stats`). The overflow is timed there too,
at ``transport.handle_request`` (each call with a request of its own) and through
``httpx.Client.get``. On loopback: plain httpx, the default mesh and the full-policy
mesh against :mod:`benchmarks.http`'s local server, one endpoint.

Targets: the full policy's throughput ≥ ``TARGET_THROUGHPUT_RATIO`` × the default's
(engine and transport level) and × plain httpx's (loopback); an overflow answered in
≤ ``TARGET_OVERFLOW_US`` by the engine and at ``transport.handle_request``.
performance.md §6 B8 gives stricter references, reported alongside: a fast-fail ≤ 5 µs,
a retry policy configured but not triggered ≤ 2 µs (the full policy's added µs bounds
that from above: it adds the DestinationRule's work too).

Run: ``python -m benchmarks.resilience`` (about 40 s; ``--quick``: a few seconds, with
1,000 endpoints in the large cluster).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from types import FrameType

import httpx

import meshlib
from benchmarks._processes import local_server
from benchmarks._report import save
from benchmarks._stats import (
    METRICS,
    Round,
    paired_difference,
    paired_ratio,
    paired_ratios,
    summarize,
)
from benchmarks.http import CannedTransport, Settings, alternate, time_client
from meshlib._core._actions import (
    Action,
    Deliver,
    Outcome,
    Raise,
    Reply,
    Responded,
    Send,
)
from meshlib._core._request import RequestHead
from meshlib._transports._common import Upstream, request_head

__all__ = ["main"]

BATCH_SECONDS = 0.03  # each timed batch of one case lasts about this long
QUICK_BATCH_SECONDS = 0.005
ROUNDS = 15
QUICK_ROUNDS = 5
PROFILED_REQUESTS = 100
TRANSPORT = Settings(rounds=10, seconds=0.5, warmup=0.2, haproxy=False)
QUICK_TRANSPORT = Settings(rounds=3, seconds=0.1, warmup=0.05, haproxy=False)
TARGET_THROUGHPUT_RATIO = 0.9  # full policy ÷ default, requests per second, at least
TARGET_OVERFLOW_US = 20.0  # start → 503 UO, at most
B8_FAST_FAIL_US = 5.0  # performance.md §6 B8 (c), reported alongside
B8_RETRY_CONFIGURED_US = 2.0  # §6 B8 (a)
SEED = 1
URL = "http://svc/items"
PLAIN_URL = "http://127.0.0.1:9/items"  # plain httpx over the canned transport
ENDPOINTS = 3
LARGE = 10_000  # endpoints of the large-cluster pair
QUICK_LARGE = 1_000
FINAL = (Deliver, Reply, Raise)

VIRTUAL_SERVICE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: default}
spec:
  hosts: [svc]
  http:
  - name: api
    route:
    - destination: {host: svc}
    retries: {attempts: 3, retryOn: 5xx, perTryTimeout: 2s}
    timeout: 10s
"""
TIMEOUTS = ("    timeout: 10s\n", ", perTryTimeout: 2s")

DESTINATION_RULE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc, namespace: default}
spec:
  host: svc
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool:
      tcp: {maxConnections: 10000, connectTimeout: 5s}
      http:
        http1MaxPendingRequests: 10000
        http2MaxRequests: {max_requests}
        maxRetries: 10000
"""
OUTLIER_DETECTION = """\
    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}
"""

HEAD = request_head(httpx.Request("GET", URL))
OK = Responded(200)
UNAVAILABLE = Responded(503)


def build_mesh(config: str, endpoints: int = ENDPOINTS) -> meshlib.Mesh:
    """A mesh with ``config`` and service ``svc`` on ``endpoints`` endpoints 10.0.x.y:8080."""
    mesh = meshlib.Mesh.from_yaml(config, seed=SEED) if config else meshlib.Mesh(seed=SEED)
    addresses = (f"10.0.{n >> 8}.{n & 255}" for n in range(1, endpoints + 1))
    mesh.set_endpoints("svc", [meshlib.Endpoint(address, port=8080) for address in addresses])
    return mesh


def default_mesh(endpoints: int = ENDPOINTS) -> meshlib.Mesh:
    """No VirtualService, no DestinationRule: Istio's default route."""
    return build_mesh("", endpoints)


def full_policy_mesh(
    max_requests: int = 10_000,
    endpoints: int = ENDPOINTS,
    *,
    timeouts: bool = True,
    outlier_detection: bool = True,
) -> meshlib.Mesh:
    """Retries, timeouts, connection-pool limits, outlier detection, least request
    (without the timeouts or the outlier detection to see what each costs)."""
    rule = VIRTUAL_SERVICE
    if not timeouts:
        for text in TIMEOUTS:
            rule = rule.replace(text, "")
    policy = DESTINATION_RULE.replace("{max_requests}", str(max_requests))
    if outlier_detection:
        policy += OUTLIER_DETECTION
    return build_mesh(rule + "---\n" + policy, endpoints)


# --------------------------------------------------------------------- engine level


def drive(
    mesh: meshlib.Mesh, head: RequestHead, outcomes: Sequence[Outcome]
) -> tuple[Action, meshlib.MeshInfo]:
    """One request, as the sync transport drives the engine: ``outcomes`` answer its
    attempts in turn, sleeps are skipped. Returns the final action and the call's info."""
    lock = mesh.lock
    call = mesh.start_call(head)
    with lock:
        action: Action = call.start()
    answers = iter(outcomes)
    while not isinstance(action, FINAL):
        result = next(answers) if isinstance(action, Send) else None
        with lock:
            action = call.send(result)
    info = call.info
    mesh.finish_call(call)
    return action, info


@dataclass
class Case:
    """A request to time: its mesh, its scripted answers, what it must end with."""

    name: str
    mesh: meshlib.Mesh
    outcomes: tuple[Outcome, ...]
    check: Callable[[Action, meshlib.MeshInfo], bool]
    attempts: int
    size: int = 1  # requests per timed batch
    samples: list[float] = field(default_factory=list)
    calls: float = 0.0

    def batch(self, count: int, *, collect: bool = True) -> float:
        """µs per request over ``count`` requests, the GC off while timing."""
        mesh, outcomes = self.mesh, self.outcomes
        if collect:
            gc.collect()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            for _ in repeat(None, count):
                drive(mesh, HEAD, outcomes)
            elapsed = time.perf_counter_ns() - start
        finally:
            gc.enable()
        return elapsed / count / 1e3

    def calibrate(self, seconds: float) -> None:
        """Size the batch to last about ``seconds``."""
        count = 1
        while (us := self.batch(count, collect=False)) * count < seconds * 1e6 / 4:
            count *= 2
        self.size = max(1, round(seconds * 1e6 / us))

    def prepare(self, seconds: float) -> None:
        """Check the request ends as it must (the first one builds the cluster), count
        its calls, size its batch."""
        for _ in range(3):
            action, info = drive(self.mesh, HEAD, self.outcomes)
            if not self.check(action, info):
                raise RuntimeError(f"{self.name}: unexpected {action!r}, {info!r}")
        self.calls = calls_per_request(self, PROFILED_REQUESTS)
        self.calibrate(seconds)

    def run(self) -> None:
        """Time one batch."""
        self.samples.append(self.batch(self.size))


def _delivered(attempts: int, virtual_service: str | None) -> Callable[..., bool]:
    def check(action: Action, info: meshlib.MeshInfo) -> bool:
        return (
            isinstance(action, Deliver)
            and info.attempts == attempts
            and info.virtual_service == virtual_service
        )

    return check


def _overflowed(action: Action, info: meshlib.MeshInfo) -> bool:
    return isinstance(action, Reply) and action.reply.status == 503 and info.flags == ("UO",)


#: Case names, as the results name them.
DEFAULT, FULL, OVERFLOW, RETRIED = "default", "full policy", "overflow (503 UO)", "retried twice"
NO_TIMEOUTS, NO_OUTLIER = "full, no timeouts", "full, no outlierDetection"
LARGE_DEFAULT, LARGE_FULL = "default, large", "full policy, large"


def engine_cases(large: int) -> tuple[list[Case], Callable[[], None]]:
    """The cases; and what ends the request held in flight by the overflow case."""
    overflow_mesh, release = _held_overflow_mesh()
    routed = _delivered(1, "default/svc")
    cases = [
        Case(DEFAULT, default_mesh(), (OK,), _delivered(1, None), 1),
        Case(FULL, full_policy_mesh(), (OK,), routed, 1),
        Case(OVERFLOW, overflow_mesh, (), _overflowed, 0),
        Case(
            RETRIED,
            full_policy_mesh(),
            (UNAVAILABLE, UNAVAILABLE, OK),
            _delivered(3, "default/svc"),
            3,
        ),
        Case(NO_TIMEOUTS, full_policy_mesh(timeouts=False), (OK,), routed, 1),
        Case(NO_OUTLIER, full_policy_mesh(outlier_detection=False), (OK,), routed, 1),
        Case(LARGE_DEFAULT, default_mesh(large), (OK,), _delivered(1, None), 1),
        Case(LARGE_FULL, full_policy_mesh(endpoints=large), (OK,), routed, 1),
    ]
    return cases, release


def calls_per_request(case: Case, count: int) -> float:
    """Python and C function calls per request (``sys.setprofile``)."""
    calls = 0

    def profile(_frame: FrameType, event: str, _arg: object) -> None:
        nonlocal calls
        calls += event in ("call", "c_call")

    sys.setprofile(profile)
    try:
        for _ in range(count):
            drive(case.mesh, HEAD, case.outcomes)
    finally:
        sys.setprofile(None)
    return calls / count


def measure_engine(rounds: int, seconds: float, large: int) -> dict[str, Case]:
    """Prepare every case, then time them in alternating rounds (A B C, C B A, ...), so
    that bursts of load from other processes hit them alike."""
    cases, release = engine_cases(large)
    try:
        for case in cases:
            case.prepare(seconds)
        for number in range(rounds):
            for case in cases if number % 2 == 0 else cases[::-1]:
                case.run()
    finally:
        release()
    return {case.name: case for case in cases}


def _paired(
    cases: dict[str, Case], name: str, baseline: str, value: Callable[[float, float], float]
) -> float:
    """The median over rounds of ``value(case µs, baseline µs)`` in the same round."""
    pairs = zip(cases[name].samples, cases[baseline].samples, strict=True)
    return statistics.median(value(a, b) for a, b in pairs)


def engine_record(cases: dict[str, Case], large: int) -> dict[str, object]:
    """Per case µs per request; the full policy against the default, paired by round."""
    record: dict[str, object] = {
        name: {
            "us_per_request": round(statistics.median(case.samples), 2),
            "best_us_per_request": round(min(case.samples), 2),
            "calls_per_request": round(case.calls, 1),
            "attempts": case.attempts,
            "endpoints": large if name in (LARGE_DEFAULT, LARGE_FULL) else ENDPOINTS,
            "batch": case.size,
        }
        for name, case in cases.items()
    }

    def throughput(a: float, b: float) -> float:
        return b / a

    def added(a: float, b: float) -> float:
        return a - b

    record["full_policy_throughput_ratio"] = round(_paired(cases, FULL, DEFAULT, throughput), 3)
    record["full_policy_added_us"] = round(_paired(cases, FULL, DEFAULT, added), 2)
    record["timeouts_added_us"] = round(_paired(cases, FULL, NO_TIMEOUTS, added), 2)
    record["outlier_detection_added_us"] = round(_paired(cases, FULL, NO_OUTLIER, added), 2)
    record["large_full_policy_throughput_ratio"] = round(
        _paired(cases, LARGE_FULL, LARGE_DEFAULT, throughput), 3
    )
    record["us_per_retry"] = round(_paired(cases, RETRIED, FULL, added) / 2, 2)
    record["overflow_us"] = round(statistics.median(cases[OVERFLOW].samples), 2)
    return record


# ------------------------------------------------------------------ transport level


def check_routed(response: httpx.Response, route: str) -> None:
    """Fail unless ``response`` is a 200 routed by ``route`` (a benchmark of the wrong
    path would measure nothing useful)."""
    info = response.extensions.get("meshlib")
    if response.status_code != 200 or getattr(info, "route", None) != route:
        raise RuntimeError(f"not routed by {route}: {response!r}, {info!r}")


def canned(_: Upstream) -> httpx.BaseTransport:
    """The inner transport of every endpoint: a canned ``200``, no I/O."""
    return CannedTransport()


def measure_transport(settings: Settings) -> dict[str, list[Round]]:
    """Plain httpx, the default mesh and the full-policy mesh, over the canned transport."""
    with (
        httpx.Client(transport=CannedTransport()) as plain,
        httpx.Client(transport=default_mesh().transport(canned)) as default,
        httpx.Client(transport=full_policy_mesh().transport(canned)) as full,
    ):
        check_routed(default.get(URL), "default")
        check_routed(full.get(URL), "api")
        runners = {
            "plain httpx": partial(time_client, plain, PLAIN_URL),
            "default": partial(time_client, default, URL),
            "full policy": partial(time_client, full, URL),
        }
        return alternate(runners, settings)


def measure_loopback(settings: Settings) -> dict[str, list[Round]]:
    """Plain httpx, the default mesh and the full-policy mesh against the local server
    of :mod:`benchmarks.http` (one endpoint, on loopback): the issue's comparison of the
    full policy with plain httpx, sockets and all."""
    with local_server(settings.lifetime) as port:
        default, full = default_mesh(), full_policy_mesh()
        for mesh in (default, full):
            mesh.set_endpoints("svc", [meshlib.Endpoint("127.0.0.1", port=port)])
        with (
            httpx.Client() as plain,
            httpx.Client(transport=default.transport()) as default_client,
            httpx.Client(transport=full.transport()) as full_client,
        ):
            check_routed(default_client.get(URL), "default")
            check_routed(full_client.get(URL), "api")
            runners = {
                "plain httpx": partial(time_client, plain, f"http://127.0.0.1:{port}/items"),
                "default": partial(time_client, default_client, URL),
                "full policy": partial(time_client, full_client, URL),
            }
            return alternate(runners, settings)


def _held_overflow_mesh() -> tuple[meshlib.Mesh, Callable[[], None]]:
    """The overflow case's mesh with its one request in flight; and what ends it."""
    mesh = full_policy_mesh(max_requests=1)
    held = mesh.start_call(HEAD)
    with mesh.lock:
        if not isinstance(held.start(), Send):
            raise RuntimeError("the held request should have been admitted")
    return mesh, partial(mesh.finish_call, held)


def _time_each(send: Callable[[httpx.Request], object], requests: list[httpx.Request]) -> float:
    """µs per ``send(request)`` over ``requests`` (built beforehand), the GC off."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for request in requests:
            send(request)
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return elapsed / len(requests) / 1e3


def measure_overflow(rounds: int, count: int) -> dict[str, float]:
    """The overflow answered through the sync transport: ``transport.handle_request``
    alone (each call gets a request of its own, built beforehand, as a client passes
    one), and ``client.get`` through ``httpx.Client``, beside plain httpx's own floor
    (``client.get`` over the canned transport). Medians over ``rounds`` batches."""
    mesh, release = _held_overflow_mesh()
    transport = mesh.transport(canned)
    first = transport.handle_request(httpx.Request("GET", URL))
    info = first.extensions["meshlib"]
    if first.status_code != 503 or info.flags != ("UO",):
        raise RuntimeError(f"not an overflow: {first!r}, {info!r}")
    samples: dict[str, list[float]] = {"transport": [], "client": [], "plain client": []}
    with (
        httpx.Client(transport=transport) as client,
        httpx.Client(transport=CannedTransport()) as plain,
    ):
        get_meshed = partial(client.get, URL)
        get_plain = partial(plain.get, PLAIN_URL)
        for _ in range(rounds):
            requests = [httpx.Request("GET", URL) for _ in range(count)]
            samples["transport"].append(_time_each(transport.handle_request, requests))
            samples["client"].append(_time_each(lambda _: get_meshed(), requests))
            samples["plain client"].append(_time_each(lambda _: get_plain(), requests))
    release()
    return {name: round(statistics.median(values), 2) for name, values in samples.items()}


def transport_record(phase: dict[str, list[Round]]) -> dict[str, object]:
    """Per client: req/s and CPU µs per request; the paired ratios."""
    plain, default, full = phase["plain httpx"], phase["default"], phase["full policy"]
    record: dict[str, object] = {
        name: summarize(rounds).as_dict() for name, rounds in phase.items()
    }
    record["full_policy_throughput_ratio"] = paired_ratio(full, default, METRICS["rps"])
    per_round = paired_ratios(full, default, METRICS["rps"])
    record["full_policy_throughput_ratio_range"] = [
        round(min(per_round), 3),
        round(max(per_round), 3),
    ]
    record["full_policy_added_cpu_us"] = round(paired_difference(full, default, METRICS["cpu"]), 1)
    record["default_throughput_ratio_to_plain"] = paired_ratio(default, plain, METRICS["rps"])
    record["full_policy_throughput_ratio_to_plain"] = paired_ratio(full, plain, METRICS["rps"])
    return record


# ------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> None:
    """Measure the engine and the transport, print, save ``results/resilience.json``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.resilience", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for a smoke run")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rounds = QUICK_ROUNDS if args.quick else ROUNDS
    seconds = QUICK_BATCH_SECONDS if args.quick else BATCH_SECONDS
    large = QUICK_LARGE if args.quick else LARGE
    cases = measure_engine(rounds, seconds, large)
    engine = engine_record(cases, large)
    print(f"engine, no sockets: {'endpoints':>20} {'µs/request':>11} {'best':>8} {'calls':>8}")
    for name, case in cases.items():
        endpoints = large if name in (LARGE_DEFAULT, LARGE_FULL) else ENDPOINTS
        print(
            f"  {name:28} {endpoints:>9} {statistics.median(case.samples):>11.2f}"
            f" {min(case.samples):>8.2f} {case.calls:>8.1f}"
        )
    ratio = engine["full_policy_throughput_ratio"]
    large_ratio = engine["large_full_policy_throughput_ratio"]
    overflow = engine["overflow_us"]
    assert isinstance(ratio, float)
    assert isinstance(large_ratio, float)
    assert isinstance(overflow, float)
    print(
        f"  full policy ÷ default throughput {ratio:.3f} (target ≥ {TARGET_THROUGHPUT_RATIO}):"
        f" {'met' if ratio >= TARGET_THROUGHPUT_RATIO else 'MISSED'};"
        f" adds {engine['full_policy_added_us']} µs per request, of which timeouts"
        f" {engine['timeouts_added_us']}, outlier detection {engine['outlier_detection_added_us']}"
    )
    print(
        f"  at {large} endpoints: full policy ÷ default throughput {large_ratio:.3f}:"
        f" {'met' if large_ratio >= TARGET_THROUGHPUT_RATIO else 'MISSED'}"
    )
    print(
        f"  overflow {overflow:.2f} µs (target ≤ {TARGET_OVERFLOW_US:.0f} µs):"
        f" {'met' if overflow <= TARGET_OVERFLOW_US else 'MISSED'};"
        f" each retry adds {engine['us_per_retry']} µs (backoff sleeps skipped)"
    )

    overflow_rounds = QUICK_ROUNDS if args.quick else ROUNDS
    overflow_at = measure_overflow(overflow_rounds, 500 if args.quick else 5_000)
    at_transport = overflow_at["transport"]
    print(
        f"\noverflow (503 UO) through the sync transport: transport.handle_request"
        f" {at_transport:.2f} µs (target ≤ {TARGET_OVERFLOW_US:.0f} µs):"
        f" {'met' if at_transport <= TARGET_OVERFLOW_US else 'MISSED'};"
        f" httpx.Client.get {overflow_at['client']:.2f} µs"
        f" (plain httpx's own floor, a canned 200: {overflow_at['plain client']:.2f} µs)"
    )

    settings = QUICK_TRANSPORT if args.quick else TRANSPORT
    phase = measure_transport(settings)
    transport = transport_record(phase)
    print(f"\nsync transport, canned 200: {'req/s':>10} {'CPU µs/req':>11}")
    for name, rounds_of in phase.items():
        summary = summarize(rounds_of)
        print(f"  {name:26} {summary.rps:>10.0f} {summary.cpu_us:>11.1f}")
    transport_ratio = transport["full_policy_throughput_ratio"]
    assert isinstance(transport_ratio, float)
    print(
        f"  full policy ÷ default throughput {transport_ratio:.3f}"
        f" (target ≥ {TARGET_THROUGHPUT_RATIO}):"
        f" {'met' if transport_ratio >= TARGET_THROUGHPUT_RATIO else 'MISSED'}"
        f" (rounds {transport['full_policy_throughput_ratio_range']});"
        f" adds {transport['full_policy_added_cpu_us']} µs CPU per request"
    )
    loopback = measure_loopback(settings)
    print(f"\nsync transport, local server on loopback: {'req/s':>10} {'CPU µs/req':>11}")
    for name, rounds_of in loopback.items():
        summary = summarize(rounds_of)
        print(f"  {name:26} {summary.rps:>10.0f} {summary.cpu_us:>11.1f}")
    to_plain = paired_ratio(loopback["full policy"], loopback["plain httpx"], METRICS["rps"])
    added = paired_difference(loopback["full policy"], loopback["plain httpx"], METRICS["cpu"])
    print(
        f"  full policy ÷ plain httpx throughput {to_plain:.3f}"
        f" (target ≥ {TARGET_THROUGHPUT_RATIO}):"
        f" {'met' if to_plain >= TARGET_THROUGHPUT_RATIO else 'MISSED'};"
        f" adds {added:.1f} µs CPU per request"
    )
    record = {
        "engine": engine,
        "transport": transport,
        "loopback": {
            **{name: summarize(rounds_of).as_dict() for name, rounds_of in loopback.items()},
            "full_policy_throughput_ratio_to_plain": to_plain,
            "default_throughput_ratio_to_plain": paired_ratio(
                loopback["default"], loopback["plain httpx"], METRICS["rps"]
            ),
        },
        "overflow_through_transport_us": overflow_at,
        "targets": {
            "throughput_ratio": TARGET_THROUGHPUT_RATIO,
            "engine_throughput_met": ratio >= TARGET_THROUGHPUT_RATIO,
            "large_engine_throughput_met": large_ratio >= TARGET_THROUGHPUT_RATIO,
            "transport_throughput_met": transport_ratio >= TARGET_THROUGHPUT_RATIO,
            "loopback_full_policy_to_plain_met": to_plain >= TARGET_THROUGHPUT_RATIO,
            "overflow_us": TARGET_OVERFLOW_US,
            "overflow_met": overflow <= TARGET_OVERFLOW_US,
            "overflow_at_transport_met": at_transport <= TARGET_OVERFLOW_US,
            "b8_fast_fail_us": B8_FAST_FAIL_US,
            "b8_retry_configured_us": B8_RETRY_CONFIGURED_US,
        },
        "settings": {
            "endpoints": ENDPOINTS,
            "large_endpoints": large,
            "engine_rounds": rounds,
            "engine_batch_seconds": seconds,
            "transport_rounds": settings.rounds,
            "transport_seconds_per_round": settings.seconds,
        },
        "elapsed_seconds": round(time.perf_counter() - started, 1),
    }
    print(f"saved to {save('resilience', record)}")


if __name__ == "__main__":
    main()
