"""Load balancing: what one pick costs, by balancer and endpoint count, and what a cluster
costs to build.

A pick is what the engine asks of a cluster once per attempt: ``Topology.pick`` chooses a
priority level and a locality, then the balancer picks a host among the healthy hosts
there (or a consistent-hash table maps the request's hash to one). For 10, 100 and
10,000 endpoints ``10.x.y.z:8080`` (active request counts 0 to 3, so least-request
comparisons go both ways), per case:

* µs per ``Topology.pick`` and per pick of the balancer (or hash table) itself, called
  on the same host tuple: median and best of ``REPEATS`` batches of about
  ``BATCH_SECONDS`` each, ``time.perf_counter_ns``, GC off during a batch as ``timeit``
  does. The harness's own loop and call cost is measured apart and printed (it is
  included in every figure);
* Python and C function calls per topology pick (``sys.setprofile``): the work itself,
  independent of the machine. Flat in endpoint count means this ratio, largest ÷
  smallest count, stays at 1.0: nothing on the pick path grows with the hosts (the
  time still grows a little: heap depth of the weighted schedules, cache misses).

The cases: ``LEAST_REQUEST`` with equal weights (two random choices) and with unequal
weights 1 to 5 (earliest-deadline-first on weight ÷ (active + 1)); ``ROUND_ROBIN`` with
equal and unequal weights (a static EDF schedule); ``RANDOM``; ring hash (minimum 1,024
entries) and Maglev (65,537) lookups with a precomputed request hash; locality-aware
topologies over three localities with outlier detection on, either as failover priority
levels (the client's zone, its region, another region) or as ``distribute`` weights
70/20/10 within one level; and slow start (``warmupDurationSecs: 60s``): least request
with every host warming, with one new host among warm ones (a scale-up), and after the
window is over; round robin with every host warming, and after the window is over.

Builds, at the largest count: a cluster from its endpoints as the engine makes it (host
records, ``topology_for``, then the first pick, which builds the balancer's schedule or
the hash table), median and best of ``BUILD_REPEATS``; and the ring (1,024 minimum) and
Maglev (65,537) tables alone.

Targets: every pick ≤ ``TARGET_PICK_US`` at every count, calls per pick flat; every
build ≤ ``TARGET_BUILD_MS`` at 10,000 endpoints. performance.md §6 B7 states stricter
numbers (≤ 2 µs per pick, ≤ 100 ms per rebuild): they are reported too.

Run: ``python -m benchmarks.balancing`` (about 20 s; ``--quick``: 10 and 100 endpoints,
short batches, builds at 100).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import cycle, islice, repeat
from types import FrameType

from benchmarks._report import save
from meshlib import Endpoint
from meshlib._core._balancer import Balancer
from meshlib._core._cluster import HostState
from meshlib._core._hash_policy import hash_table
from meshlib._core._hashring import host_key
from meshlib._core._runtime import (
    Locality,
    balancer_factory,
    client_locality,
    hash_builder_for,
    topology_for,
)
from meshlib.config import SimpleLB, TrafficPolicy
from meshlib.config._destination_rule import (
    ConsistentHashLB,
    LoadBalancerSettings,
    LocalityDistribute,
    LocalityLoadBalancerSetting,
    MagLev,
    OutlierDetection,
    RingHash,
)
from meshlib.config._values import Duration

__all__ = ["main"]

HOST_COUNTS = (10, 100, 10_000)
QUICK_HOST_COUNTS = (10, 100)
REPEATS = 7
QUICK_REPEATS = 3
BATCH_SECONDS = 0.02  # each timed batch lasts about this long
QUICK_BATCH_SECONDS = 0.003
BUILD_REPEATS = 5
QUICK_BUILD_REPEATS = 2
PROFILED_PICKS = 1_000  # at most this many picks per call count
KEYS = 65_536  # distinct precomputed request hashes, cycled
TARGET_PICK_US = 5.0
TARGET_BUILD_MS = 200.0
TARGET_CALLS_GROWTH = 1.05  # calls per pick, largest ÷ smallest count, at most
B7_PICK_US = 2.0  # performance.md §6 B7, reported alongside
B7_BUILD_MS = 100.0
SEED = 1
NOW = 1_000.0  # the mesh's clock, fixed during a run
WARMUP_SECONDS = 60.0
PORT = 8080
LOCALITIES = ("us-east/zone-a/", "us-east/zone-b/", "us-west/zone-a/")
CLIENT = client_locality(LOCALITIES[0], {})

OUTLIER = OutlierDetection(
    consecutive_5xx_errors=5,
    interval=Duration.from_seconds(10),
    base_ejection_time=Duration.from_seconds(30),
)


def _policy(
    simple: SimpleLB | None = None,
    *,
    consistent_hash: ConsistentHashLB | None = None,
    locality: LocalityLoadBalancerSetting | None = None,
    warmup: bool = False,
    outlier: bool = False,
) -> TrafficPolicy:
    settings = LoadBalancerSettings(
        simple=simple,
        consistent_hash=consistent_hash,
        locality_lb_setting=locality,
        warmup_duration_secs=Duration.from_seconds(WARMUP_SECONDS) if warmup else None,
    )
    return TrafficPolicy(load_balancer=settings, outlier_detection=OUTLIER if outlier else None)


def _warm(_index: int, _count: int) -> float:
    """Added long ago: warmed up."""
    return 0.0


def _warming(_index: int, _count: int) -> float:
    """Added half a slow-start window ago."""
    return NOW - WARMUP_SECONDS / 2


def _last_is_new(index: int, count: int) -> float:
    """Every host warm but the last one, added half a window ago (a scale-up)."""
    return _warming(index, count) if index == count - 1 else 0.0


@dataclass(frozen=True)
class Case:
    """One balancing setup: its policy, the endpoints' weights, localities and ages."""

    name: str
    policy: TrafficPolicy
    weighted: bool = False
    localities: bool = False
    added_at: Callable[[int, int], float] = _warm

    @property
    def hashed(self) -> bool:
        """Picks take a request hash (ring hash, Maglev)."""
        settings = self.policy.load_balancer
        return settings is not None and settings.consistent_hash is not None

    @property
    def client(self) -> Locality:
        """The client's locality (only the locality cases have one)."""
        return CLIENT if self.localities else Locality()


_DISTRIBUTE = LocalityLoadBalancerSetting(
    distribute=(
        LocalityDistribute(
            from_="us-east/zone-a/*",
            to={"us-east/zone-a/*": 70, "us-east/zone-b/*": 20, "us-west/zone-a/*": 10},
        ),
    )
)

CASES = (
    Case("least_request (P2C)", _policy(SimpleLB.LEAST_REQUEST)),
    Case("least_request weighted (EDF)", _policy(SimpleLB.LEAST_REQUEST), weighted=True),
    Case("round_robin", _policy(SimpleLB.ROUND_ROBIN)),
    Case("round_robin weighted (EDF)", _policy(SimpleLB.ROUND_ROBIN), weighted=True),
    Case("random", _policy(SimpleLB.RANDOM)),
    Case("ring_hash", _policy(consistent_hash=ConsistentHashLB(ring_hash=RingHash()))),
    Case("maglev", _policy(consistent_hash=ConsistentHashLB(maglev=MagLev()))),
    Case("locality failover (3 levels)", _policy(outlier=True), localities=True),
    Case(
        "locality distribute 70/20/10",
        _policy(locality=_DISTRIBUTE, outlier=True),
        localities=True,
    ),
    Case("least_request + slow start (warming)", _policy(warmup=True), added_at=_warming),
    Case(
        "round_robin + slow start (warming)",
        _policy(SimpleLB.ROUND_ROBIN, warmup=True),
        added_at=_warming,
    ),
    Case("least_request + slow start (1 new host)", _policy(warmup=True), added_at=_last_is_new),
    Case("least_request + slow start (window over)", _policy(warmup=True), added_at=_warm),
    Case(
        "round_robin + slow start (window over)",
        _policy(SimpleLB.ROUND_ROBIN, warmup=True),
        added_at=_warm,
    ),
)


def address(index: int) -> str:
    """The address of endpoint ``index``: ``10.x.y.z``."""
    return f"10.{index >> 16}.{(index >> 8) & 255}.{index & 255}"


def endpoints(case: Case, count: int) -> list[Endpoint]:
    """``count`` endpoints for ``case``: weights 1 to 5 when weighted, localities in turn."""
    return [
        Endpoint(
            address(i),
            port=PORT,
            weight=1 + i % 5 if case.weighted else 1,
            locality=LOCALITIES[i % len(LOCALITIES)] if case.localities else "",
        )
        for i in range(count)
    ]


def host_states(case: Case, endpoints: Sequence[Endpoint]) -> list[HostState]:
    """The cluster's host records, as the engine makes them (with the case's ages)."""
    count = len(endpoints)
    return [
        HostState(e, e.address, PORT, added_at=case.added_at(i, count))
        for i, e in enumerate(endpoints)
    ]


# ------------------------------------------------------------------------------ timing


@dataclass(frozen=True, slots=True)
class Timing:
    """A cost per operation: median and best of the timed batches."""

    median: float
    best: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Timing:
        """The median and best of ``samples``."""
        return cls(statistics.median(samples), min(samples))

    def as_dict(self, places: int = 3) -> dict[str, float]:
        """Rounded, for JSON."""
        return {"median": round(self.median, places), "best": round(self.best, places)}


#: Runs ``count`` operations.
Batch = Callable[[int], None]


def timed_ns(batch: Batch, count: int, *, collect: bool = True) -> int:
    """Nanoseconds for one ``batch(count)``, the GC off while timing."""
    if collect:
        gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        batch(count)
        return time.perf_counter_ns() - start
    finally:
        gc.enable()


def calibrate(batch: Batch, seconds: float) -> int:
    """How many operations make a batch of about ``seconds`` (at least 1)."""
    count = 1
    while (elapsed := timed_ns(batch, count, collect=False) / 1e9) < seconds / 4:
        count *= 2
    return max(1, round(count * seconds / elapsed))


def plain_batch(pick: Callable[[], object]) -> Batch:
    """``pick()``, ``count`` times."""

    def run(count: int) -> None:
        for _ in repeat(None, count):
            pick()

    return run


def keyed_batch(pick: Callable[[int], object], keys: Sequence[int]) -> Batch:
    """``pick(key)`` over the precomputed hashes, ``count`` times."""

    def run(count: int) -> None:
        for key in islice(cycle(keys), count):
            pick(key)

    return run


def hashed_batch(pick: Callable[..., object], keys: Sequence[int]) -> Batch:
    """``pick(hash_value=key)`` over the precomputed hashes, ``count`` times."""

    def run(count: int) -> None:
        for key in islice(cycle(keys), count):
            pick(hash_value=key)

    return run


def calls_per_operation(batch: Batch, count: int) -> float:
    """Python and C function calls per operation of ``batch`` (``sys.setprofile``),
    the call of the operation itself included."""
    calls = 0

    def profile(_frame: FrameType, event: str, _arg: object) -> None:
        nonlocal calls
        calls += event in ("call", "c_call")

    sys.setprofile(profile)
    try:
        batch(count)
    finally:
        sys.setprofile(None)
    return calls / count


@dataclass
class Timed:
    """A batch to time in every round, with its size and its samples (µs per operation)."""

    batch: Batch
    size: int
    samples: list[float] = field(default_factory=list)

    @classmethod
    def calibrated(cls, batch: Batch, seconds: float) -> Timed:
        """``batch`` warmed up, sized to last about ``seconds``."""
        batch(1)
        return cls(batch, calibrate(batch, seconds))

    def run(self) -> None:
        """Time one batch."""
        self.samples.append(timed_ns(self.batch, self.size) / self.size / 1e3)


def rounds(timed: Sequence[Timed], repeats: int) -> None:
    """Time every batch once per round, in alternating order (A B C, C B A, ...), so a
    burst of load from other processes spreads over the cases instead of hitting one.

    What exists before the rounds is frozen out of the GC, so the collection before each
    batch stays short however many hosts the setups hold.
    """
    gc.collect()
    gc.freeze()
    try:
        for number in range(repeats):
            for item in timed if number % 2 == 0 else timed[::-1]:
                item.run()
    finally:
        gc.unfreeze()


# ------------------------------------------------------------------------------- picks


@dataclass(frozen=True)
class PickResult:
    """One case at one endpoint count."""

    topology: Timing
    direct: Timing | None
    calls: float
    batch: int

    def as_dict(self) -> dict[str, object]:
        """Rounded, for JSON."""
        return {
            "topology_pick_us": self.topology.as_dict(),
            "direct_pick_us": self.direct.as_dict() if self.direct is not None else None,
            "calls_per_pick": round(self.calls, 1),
            "batch": self.batch,
        }


@dataclass
class PickSetup:
    """One case at one endpoint count, ready to time: through the topology, and the
    balancer (or hash table) alone on the same hosts (None for the locality cases,
    which balance in several groups)."""

    topology: Timed
    direct: Timed | None
    calls: float

    def result(self) -> PickResult:
        """The timings, once the rounds have run."""
        direct = Timing.of(self.direct.samples) if self.direct is not None else None
        return PickResult(Timing.of(self.topology.samples), direct, self.calls, self.topology.size)


def pick_setup(case: Case, count: int, keys: Sequence[int], seconds: float) -> PickSetup:
    """The topology of ``case`` over ``count`` hosts, and its batches, calibrated."""
    rng = random.Random(SEED)
    hosts = host_states(case, endpoints(case, count))
    for i, host in enumerate(hosts):
        host.active = i % 4
    topology = topology_for(hosts, case.policy, case.client)
    pick = partial(topology.pick, rng, NOW)
    timed = Timed.calibrated(
        hashed_batch(pick, keys) if case.hashed else plain_batch(pick), seconds
    )
    calls = calls_per_operation(timed.batch, min(timed.size, PROFILED_PICKS))
    candidates = tuple(hosts)
    direct = None
    if case.hashed:
        build = hash_builder_for(case.policy)
        assert build is not None  # a hashed case
        table = build([(0, candidates)])  # one level, no locality weights
        direct = Timed.calibrated(keyed_batch(table.pick, keys), seconds)
    elif len(topology.levels) == 1 and len(topology.levels[0].groups) == 1:
        balancer: Balancer = balancer_factory(case.policy)()
        direct = Timed.calibrated(
            plain_batch(partial(balancer.pick, candidates, rng, NOW)), seconds
        )
    return PickSetup(timed, direct, calls)


def measure_picks(
    counts: Sequence[int], keys: Sequence[int], repeats: int, seconds: float
) -> tuple[dict[str, dict[int, PickResult]], float]:
    """Every case at every count, timed in rounds; and the harness's µs per iteration."""
    harness = Timed.calibrated(plain_batch(int), seconds)
    setups = {
        (case.name, count): pick_setup(case, count, keys, seconds)
        for case in CASES
        for count in counts
    }
    timed = [harness]
    for setup in setups.values():
        timed.append(setup.topology)
        if setup.direct is not None:
            timed.append(setup.direct)
    rounds(timed, repeats)
    results: dict[str, dict[int, PickResult]] = {}
    for (name, count), setup in setups.items():
        results.setdefault(name, {})[count] = setup.result()
    return results, statistics.median(harness.samples)


# ------------------------------------------------------------------------------ builds


def build_cluster(case: Case, endpoints: Sequence[Endpoint], key: int) -> None:
    """A cluster as the engine builds it: host records, topology, the first pick."""
    topology = topology_for(host_states(case, endpoints), case.policy, case.client)
    topology.pick(random.Random(SEED), NOW, hash_value=key)


def measure_builds(count: int, repeats: int) -> dict[str, Timing]:
    """ms per build: a cluster for every case, then the ring and Maglev tables alone;
    one build of each per round, in alternating order."""
    actions: dict[str, Callable[[], object]] = {
        case.name: partial(build_cluster, case, endpoints(case, count), 12345) for case in CASES
    }
    keyed = [(host_key(address(i), PORT), 1) for i in range(count)]
    actions["ring_hash table alone"] = partial(
        hash_table, ConsistentHashLB(ring_hash=RingHash()), keyed
    )
    actions["maglev table alone"] = partial(hash_table, ConsistentHashLB(maglev=MagLev()), keyed)

    def batch_of(action: Callable[[], object]) -> Batch:
        def run(count: int) -> None:
            for _ in range(count):
                action()

        return run

    timed = {name: Timed(batch_of(action), 1) for name, action in actions.items()}
    rounds(list(timed.values()), repeats)
    return {name: Timing.of([us / 1e3 for us in t.samples]) for name, t in timed.items()}


# ----------------------------------------------------------------------------- results


def growth(by_count: dict[int, PickResult], value: Callable[[PickResult], float]) -> float:
    """``value`` at the largest count ÷ at the smallest."""
    counts = sorted(by_count)
    return round(value(by_count[counts[-1]]) / value(by_count[counts[0]]), 3)


def verdict(results: dict[str, dict[int, PickResult]], limit: float) -> dict[str, bool]:
    """Per case: every median pick (topology and direct) ≤ ``limit`` µs."""
    return {
        name: all(
            max(r.topology.median, r.direct.median if r.direct else 0.0) <= limit
            for r in by_count.values()
        )
        for name, by_count in results.items()
    }


def print_rows(name: str, by_count: dict[int, PickResult]) -> None:
    """One line per endpoint count."""
    for count, result in by_count.items():
        direct = f"{result.direct.median:>10.2f}" if result.direct else f"{'-':>10}"
        print(
            f"{name:40} {count:>6} {result.topology.median:>10.2f} {result.topology.best:>8.2f}"
            f" {direct} {result.calls:>7.1f}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Measure every case at every count, then the builds; print, save ``balancing.json``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.balancing", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 and 100 endpoints, short batches")
    args = parser.parse_args(argv)
    counts = QUICK_HOST_COUNTS if args.quick else HOST_COUNTS
    repeats = QUICK_REPEATS if args.quick else REPEATS
    seconds = QUICK_BATCH_SECONDS if args.quick else BATCH_SECONDS
    started = time.perf_counter()
    rng = random.Random(SEED)
    keys = [rng.getrandbits(64) for _ in range(KEYS)]
    print(
        f"{'case':40} {'hosts':>6} {'pick µs':>10} {'best µs':>8} {'direct µs':>10} {'calls':>7}"
    )
    results, overhead = measure_picks(counts, keys, repeats, seconds)
    for name, by_count in results.items():
        print_rows(name, by_count)
    print(f"(every figure includes the harness's {overhead * 1e3:.0f} ns per iteration)")
    calls_growth = {name: growth(r, lambda x: x.calls) for name, r in results.items()}
    time_growth = {name: growth(r, lambda x: x.topology.median) for name, r in results.items()}
    met = verdict(results, TARGET_PICK_US)
    flat = {name: value <= TARGET_CALLS_GROWTH for name, value in calls_growth.items()}
    span = f"{counts[0]} → {counts[-1]} hosts"
    print(
        f"\n{'growth ' + span:40} {'calls':>8} {'time':>8}  pick ≤ {TARGET_PICK_US:.0f} µs, flat"
    )
    for name in results:
        print(
            f"{name:40} {calls_growth[name]:>8.2f} {time_growth[name]:>8.2f}"
            f"  {'met' if met[name] else 'MISSED':>6} {'flat' if flat[name] else 'GROWS':>6}"
        )

    build_count = counts[-1]
    build_repeats = QUICK_BUILD_REPEATS if args.quick else BUILD_REPEATS
    builds = measure_builds(build_count, build_repeats)
    print(f"\n{f'build at {build_count} endpoints':40} {'ms':>11} {'best ms':>8}")
    for name, timing in builds.items():
        print(f"{name:40} {timing.median:>11.1f} {timing.best:>8.1f}")
    builds_met = all(t.median <= TARGET_BUILD_MS for t in builds.values())
    missing = [name for name in results if not (met[name] and flat[name])]
    picks_met = not missing
    print(
        f"targets: pick ≤ {TARGET_PICK_US:.0f} µs and flat:"
        f" {'met' if picks_met else 'MISSED by ' + ', '.join(missing)};"
        f" build ≤ {TARGET_BUILD_MS:.0f} ms at {build_count}: {'met' if builds_met else 'MISSED'}"
    )
    b7 = verdict(results, B7_PICK_US)
    print(
        f"performance.md B7 (pick ≤ {B7_PICK_US:.0f} µs, build ≤ {B7_BUILD_MS:.0f} ms):"
        f" picks over it: {', '.join(n for n, ok in b7.items() if not ok) or 'none'};"
        f" builds over it: "
        f"{', '.join(n for n, t in builds.items() if t.median > B7_BUILD_MS) or 'none'}"
    )
    record = {
        "by_case": {
            name: {
                "by_hosts": {str(count): r.as_dict() for count, r in by_count.items()},
                "calls_growth": calls_growth[name],
                "time_growth": time_growth[name],
                "within_target": met[name],
                "flat": flat[name],
            }
            for name, by_count in results.items()
        },
        "builds_ms": {
            "endpoints": build_count,
            **{name: timing.as_dict(2) for name, timing in builds.items()},
        },
        "harness_us_per_iteration": round(overhead, 4),
        "target_pick_us": TARGET_PICK_US,
        "target_calls_growth": TARGET_CALLS_GROWTH,
        "target_build_ms": TARGET_BUILD_MS,
        "picks_within_target": picks_met,
        "builds_within_target": builds_met,
        "b7_pick_us": B7_PICK_US,
        "b7_build_ms": B7_BUILD_MS,
        "b7_picks_over": [name for name, ok in b7.items() if not ok],
        "repeats": repeats,
        "batch_seconds": seconds,
        "elapsed_seconds": round(time.perf_counter() - started, 1),
    }
    print(f"saved to {save('balancing', record)}")


if __name__ == "__main__":
    main()
