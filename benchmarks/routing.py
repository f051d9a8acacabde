"""The routing decision alone, no I/O: how long from a request head to the first ``Send``.

A decision is what a transport does before it touches the network: ``mesh.start_call(head)``
then ``call.start()`` under the mesh's lock, which resolves the host, matches the
VirtualService rules in order, draws the weighted destination, finds the subset's cluster
and picks an endpoint, and returns the first :class:`~meshlib._core._actions.Send`.
Building the head from an ``httpx.Request`` (``request_head``) is timed on its own.

Meshes with 1, 100 and 10,000 hosts; each host has a VirtualService with three rules
(a header match → v2; a regex URI match → 90/10 over v1/v2 with retries and a timeout;
a prefix match → 80/20) and a DestinationRule with two subsets (v2 with its own
``trafficPolicy``) and host-level policies; its two endpoints are set in code. Requests
go to 100 hosts spread over the table, one of three kinds: matching the first rule,
the second (regex), or the last (after the header and regex rules failed).

Reported, per mesh size and request kind:

* µs per decision over the 100 spread hosts (median and best of ``REPEATS`` batches of
  ``BATCH`` decisions, GC off during a batch as ``timeit`` does) — what a client calling
  many services pays, CPU cache misses included;
* µs per decision when every request goes to one host in the middle of the table (best
  batch, the least disturbed by other processes) — the table's own cost with the CPU
  caches warm, which isolates the lookup structures;
* Python function calls per decision (``sys.setprofile``): the work itself, independent
  of the machine;
* for each, the ratio of the largest mesh to the one-host mesh. Flat means: calls ratio
  1.0 and one-host time ratio ≤ ``TARGET_GROWTH``. The spread time grows somewhat with
  the heap (the sampled hosts' objects lie further apart), not with the algorithm.

Run: ``python -m benchmarks.routing`` (``--quick`` skips the 10,000-host mesh).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

import httpx

import meshlib
from benchmarks._report import save
from meshlib._core._actions import Send
from meshlib._core._request import RequestHead
from meshlib._transports._common import request_head
from meshlib.config import read_yaml

__all__ = ["main"]

HOST_COUNTS = (1, 100, 10_000)
QUICK_HOST_COUNTS = (1, 100)
SAMPLED_HOSTS = 100  # distinct hosts the timed requests cycle through
BATCH = 2_000  # decisions per timed batch
REPEATS = 7
TARGET_GROWTH = 1.15  # one-host decision µs, largest mesh ÷ one-host mesh, at most
SEED = 1  # the mesh's random draws repeat, so the call counts compare across sizes

VIRTUAL_SERVICE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: svc-{i}
spec:
  hosts:
  - svc-{i}
  http:
  - name: canary-users
    match:
    - headers:
        end-user:
          exact: user-{i}
    route:
    - destination:
        host: svc-{i}
        subset: v2
  - name: api
    match:
    - uri:
        regex: /api/v[0-9]+/items/[a-z0-9-]+
    route:
    - destination:
        host: svc-{i}
        subset: v1
      weight: 90
    - destination:
        host: svc-{i}
        subset: v2
      weight: 10
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: 5xx,connect-failure,reset
    timeout: 10s
  - name: default
    match:
    - uri:
        prefix: /
    route:
    - destination:
        host: svc-{i}
        subset: v1
      weight: 80
    - destination:
        host: svc-{i}
        subset: v2
      weight: 20
"""

DESTINATION_RULE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: svc-{i}
spec:
  host: svc-{i}
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
    connectionPool:
      http:
        http1MaxPendingRequests: 50
        maxRetries: 3
    outlierDetection:
      consecutive5xxErrors: 5
      interval: 10s
      baseEjectionTime: 30s
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
"""


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of request: its path and ``end-user`` header (``{i}``: the host number),
    and the name of the rule it must be routed by."""

    name: str
    path: str
    user: str
    route: str


KINDS = (
    Kind("rule 1: header", "/reviews/0", "user-{i}", "canary-users"),
    Kind("rule 2: regex", "/api/v1/items/item-7", "someone", "api"),
    Kind("rule 3: prefix", "/reviews/0", "someone", "default"),
)


@dataclass(frozen=True, slots=True)
class Timing:
    """µs per operation: median and best of the timed batches."""

    median_us: float
    best_us: float


@dataclass(frozen=True, slots=True)
class Row:
    """The measurements for one request kind on one mesh."""

    decision: Timing
    one_host: Timing
    calls_per_decision: float
    request_head: Timing

    def as_dict(self) -> dict[str, float]:
        """Rounded values, for JSON."""
        return {
            "decision_us": round(self.decision.median_us, 2),
            "decision_best_us": round(self.decision.best_us, 2),
            "one_host_decision_us": round(self.one_host.median_us, 2),
            "one_host_decision_best_us": round(self.one_host.best_us, 2),
            "calls_per_decision": round(self.calls_per_decision, 1),
            "request_head_us": round(self.request_head.median_us, 2),
        }


@dataclass(frozen=True, slots=True)
class MeshResult:
    """Everything measured on the mesh of ``hosts`` services."""

    hosts: int
    build_seconds: float
    rows: dict[str, Row]

    def as_dict(self) -> dict[str, object]:
        """Rounded values, for JSON."""
        rows = {name: row.as_dict() for name, row in self.rows.items()}
        return {"build_seconds": round(self.build_seconds, 2), **rows}


def config(hosts: int) -> str:
    """A VirtualService and a DestinationRule for each of ``hosts`` services."""
    documents = [VIRTUAL_SERVICE.format(i=i) for i in range(hosts)]
    documents += [DESTINATION_RULE.format(i=i) for i in range(hosts)]
    return "---\n".join(documents)


def endpoints(i: int) -> tuple[meshlib.Endpoint, ...]:
    """Two endpoints of host ``i``: one per version."""
    address = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
    return tuple(
        meshlib.Endpoint(address, port=8000 + n, labels={"version": version})
        for n, version in enumerate(("v1", "v2"))
    )


def build_mesh(hosts: int) -> meshlib.Mesh:
    """The mesh of ``hosts`` services, with their endpoints set in code in one go."""
    mesh = meshlib.Mesh(read_yaml(config(hosts)), seed=SEED)
    mesh.update_endpoints({f"svc-{i}": endpoints(i) for i in range(hosts)})
    return mesh


def sampled(hosts: int) -> list[int]:
    """Up to ``SAMPLED_HOSTS`` host numbers spread evenly from the first to the last."""
    count = min(hosts, SAMPLED_HOSTS)
    if count == 1:
        return [0]
    return sorted({round(k * (hosts - 1) / (count - 1)) for k in range(count)})


def requests_for(kind: Kind, hosts: Sequence[int]) -> list[httpx.Request]:
    """One request of ``kind`` per host."""
    return [
        httpx.Request(
            "GET", f"http://svc-{i}:9080{kind.path}", headers={"end-user": kind.user.format(i=i)}
        )
        for i in hosts
    ]


def decide(mesh: meshlib.Mesh, head: RequestHead) -> tuple[meshlib.MeshInfo, object]:
    """One decision, as the transports take it; the call is finished afterwards."""
    call = mesh.start_call(head)
    with mesh.lock:
        action = call.start()
    mesh.finish_call(call)
    return call.info, action


def time_decisions(mesh: meshlib.Mesh, heads: Sequence[RequestHead]) -> Timing:
    """µs per ``start_call`` + ``start`` over ``heads``, cycled to ``BATCH`` decisions.

    The calls are finished after the clock stops, so the time is the decision only.
    """
    batch = [heads[n % len(heads)] for n in range(BATCH)]
    lock = mesh.lock
    results = []
    for _ in range(REPEATS):
        calls = []
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for head in batch:
                call = mesh.start_call(head)
                with lock:
                    call.start()
                calls.append(call)
            results.append((time.perf_counter() - start) / BATCH * 1e6)
        finally:
            gc.enable()
        for call in calls:
            mesh.finish_call(call)
    return Timing(statistics.median(results), min(results))


def calls_per_decision(mesh: meshlib.Mesh, heads: Sequence[RequestHead]) -> float:
    """Python and C function calls per ``start_call`` + ``start``: the work, untimed.

    Averaged over ``BATCH`` decisions, so the weighted draws even out.
    """
    count = 0

    def profile(_frame: FrameType, event: str, _arg: object) -> None:
        nonlocal count
        count += event in ("call", "c_call")

    calls = []
    sys.setprofile(profile)
    try:
        for n in range(BATCH):
            call = mesh.start_call(heads[n % len(heads)])
            with mesh.lock:
                call.start()
            calls.append(call)
    finally:
        sys.setprofile(None)
    for call in calls:
        mesh.finish_call(call)
    return count / BATCH


def time_heads(requests: Sequence[httpx.Request]) -> Timing:
    """µs per ``request_head(request)``: the shell's conversion before the decision."""
    batch = [requests[n % len(requests)] for n in range(BATCH)]
    results = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for request in batch:
            request_head(request)
        results.append((time.perf_counter() - start) / BATCH * 1e6)
    return Timing(statistics.median(results), min(results))


def check(mesh: meshlib.Mesh, kind: Kind, heads: Sequence[RequestHead]) -> None:
    """Warm every sampled cluster up, and make sure each decision is a ``Send`` routed by
    the rule ``kind`` expects (a benchmark of the wrong path would measure nothing)."""
    for head in heads:
        info, action = decide(mesh, head)
        if not isinstance(action, Send) or not (info.route or "").startswith(kind.route):
            raise RuntimeError(f"{kind.name}: expected a Send on {kind.route}: {action}, {info}")


def measure(hosts: int) -> MeshResult:
    """Build the mesh of ``hosts`` services and time each request kind on it."""
    started = time.perf_counter()
    mesh = build_mesh(hosts)
    built = time.perf_counter() - started
    rows = {}
    for kind in KINDS:
        requests = requests_for(kind, sampled(hosts))
        heads = [request_head(request) for request in requests]
        check(mesh, kind, heads)
        middle = heads[len(heads) // 2 : len(heads) // 2 + 1]
        rows[kind.name] = Row(
            decision=time_decisions(mesh, heads),
            one_host=time_decisions(mesh, middle),
            calls_per_decision=calls_per_decision(mesh, heads),
            request_head=time_heads(requests),
        )
    return MeshResult(hosts, built, rows)


def growth(results: Sequence[MeshResult], value: Callable[[Row], float]) -> dict[str, float]:
    """``value`` on the largest mesh ÷ on the smallest, per request kind."""
    smallest, largest = results[0], results[-1]
    return {
        kind.name: round(value(largest.rows[kind.name]) / value(smallest.rows[kind.name]), 3)
        for kind in KINDS
    }


def print_rows(result: MeshResult) -> None:
    """One line per request kind, then the time it took to build the mesh."""
    for name, row in result.rows.items():
        print(
            f"{result.hosts:>6} {name:16} {row.decision.median_us:>12.2f}"
            f" {row.decision.best_us:>8.2f} {row.one_host.best_us:>9.2f}"
            f" {row.calls_per_decision:>7.1f} {row.request_head.median_us:>8.2f}"
        )
    print(f"{result.hosts:>6} {'(build mesh)':16} {result.build_seconds:>11.2f}s")


def main(argv: Sequence[str] | None = None) -> None:
    """Measure every mesh size, print a table, save ``results/routing.json``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.routing", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the 10,000-host mesh")
    args = parser.parse_args(argv)
    counts = QUICK_HOST_COUNTS if args.quick else HOST_COUNTS
    print(
        f"{'hosts':>6} {'request':16} {'decision µs':>12} {'best µs':>8} {'1 host µs':>9}"
        f" {'calls':>7} {'head µs':>8}"
    )
    results = []
    for hosts in counts:
        results.append(measure(hosts))
        print_rows(results[-1])
    spread_growth = growth(results, lambda row: row.decision.median_us)
    one_host_growth = growth(results, lambda row: row.one_host.best_us)
    work_growth = growth(results, lambda row: row.calls_per_decision)
    span = f"{counts[0]} → {counts[-1]} hosts"
    print(f"one-host time growth {span}: {one_host_growth} (target ≤ {TARGET_GROWTH})")
    print(f"work growth {span}: {work_growth} (calls per decision; flat is 1.0)")
    print(f"spread time growth {span}: {spread_growth} (cache misses; reported only)")
    record = {
        "by_hosts": {str(result.hosts): result.as_dict() for result in results},
        "one_host_time_growth": one_host_growth,
        "work_growth": work_growth,
        "spread_time_growth": spread_growth,
        "target_one_host_time_growth": TARGET_GROWTH,
        "flat": all(value <= TARGET_GROWTH for value in one_host_growth.values())
        and all(value <= 1.01 for value in work_growth.values()),
        "batch": BATCH,
        "repeats": REPEATS,
        "sampled_hosts": SAMPLED_HOSTS,
    }
    print(f"saved to {save('routing', record)}")


if __name__ == "__main__":
    main()
