"""Load-balancing algorithms, without sockets (``envoy-semantics.md`` §5).

Balancers are exercised directly with hosts and a seeded RNG; counts are compared with
the shares the algorithm promises, within bounds derived from the number of picks.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshlib import Endpoint
from meshlib._core._balancer import LeastRequest, RandomBalancer, RoundRobin, _StaticSchedule
from meshlib._core._cluster import HostState
from meshlib._core._warmup import SlowStart


def hosts(*weights: int) -> tuple[HostState, ...]:
    return tuple(
        HostState(Endpoint(f"10.0.0.{i}", weight=w), f"10.0.0.{i}", 80)
        for i, w in enumerate(weights)
    )


def binomial_ok(count: int, n: int, p: float) -> bool:
    """Within 4.5 standard deviations of n·p: a false alarm under 1e-5."""
    return abs(count - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)) + 1


weights_strategy = st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=6)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(weights=weights_strategy, cycles=st.integers(min_value=1, max_value=5))
def test_weighted_round_robin_is_exact_over_aligned_cycles(
    weights: list[int], cycles: int
) -> None:
    """From the schedule's start, every cycle of sum(weights) picks serves each host its weight."""
    group = hosts(*weights)
    schedule = _StaticSchedule(group, 0)
    total = sum(weights)
    for _ in range(cycles):
        served = Counter(schedule.pick() for _ in range(total))
        assert [served[h] for h in group] == weights


@settings(max_examples=60, derandomize=True, deadline=None)
@given(weights=weights_strategy, seed=st.integers(0, 2**32))
def test_weighted_round_robin_is_within_one_in_any_window(weights: list[int], seed: int) -> None:
    """In any window of sum(weights) picks (a random start), each host is within ±1 of its weight."""
    group = hosts(*weights)
    balancer = RoundRobin()
    rng = random.Random(seed)
    picks = [balancer.pick(group, rng, 0.0) for _ in range(3 * sum(weights))]
    total = sum(weights)
    for start in range(len(picks) - total + 1):
        served = Counter(picks[start : start + total])
        assert all(abs(served[h] - w) <= 1 for h, w in zip(group, weights, strict=True))


def test_round_robin_takes_turns_from_a_random_start() -> None:
    """Equal weights: strict turns; two clients start at different places."""
    group = hosts(1, 1, 1, 1)
    balancer = RoundRobin()
    rng = random.Random(3)
    picks = [balancer.pick(group, rng, 0.0) for _ in range(8)]
    assert picks[:4] == picks[4:]
    assert set(picks[:4]) == set(group)
    starts = {RoundRobin().pick(group, random.Random(seed), 0.0) for seed in range(20)}
    assert len(starts) > 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_is_uniform_and_ignores_weights(seed: int) -> None:
    """RANDOM: each host ~1/n of picks whatever its weight."""
    group = hosts(1, 5, 10)
    rng = random.Random(seed)
    n = 6000
    served = Counter(RandomBalancer().pick(group, rng, 0.0) for _ in range(n))
    assert all(binomial_ok(served[h], n, 1 / 3) for h in group)


@pytest.mark.parametrize("seed", [1, 2])
def test_least_request_weighted_form_follows_weights(seed: int) -> None:
    """Unequal weights and no requests in flight: shares follow the weights (EDF)."""
    group = hosts(1, 3)
    balancer = LeastRequest()
    rng = random.Random(seed)
    served = Counter(balancer.pick(group, rng, 0.0) for _ in range(400))
    assert served[group[1]] == 300
    assert served[group[0]] == 100


def test_least_request_two_choices_never_picks_the_busiest_when_others_are_idle() -> None:
    """P2C: the host with the most active requests loses every comparison it enters."""
    group = hosts(1, 1, 1)
    group[1].active = 5
    rng = random.Random(9)
    served = Counter(LeastRequest().pick(group, rng, 0.0) for _ in range(3000))
    # The busy host wins only when both samples are itself: 1/9 of picks.
    assert binomial_ok(served[group[1]], 3000, 1 / 9)


def _simulate(
    balancer: LeastRequest | RoundRobin, durations: list[int], seed: int, ticks: int
) -> Counter[int]:
    """One request per tick; each host holds a request for its duration (in ticks)."""
    group = hosts(*[1] * len(durations))
    rng = random.Random(seed)
    ends: list[tuple[int, HostState]] = []
    served: Counter[int] = Counter()
    for tick in range(ticks):
        for end, host in [e for e in ends if e[0] <= tick]:
            host.active -= 1
            ends.remove((end, host))
        host = balancer.pick(group, rng, float(tick))
        host.active += 1
        served[group.index(host)] += 1
        ends.append((tick + durations[group.index(host)], host))
    return served


def test_least_request_steers_around_a_slow_host() -> None:
    """Under concurrency, a host that holds requests 8× longer gets far fewer of them."""
    served = _simulate(LeastRequest(), [1, 8, 1], seed=5, ticks=3000)
    assert served[1] < served[0] / 2
    assert served[1] < served[2] / 2
    round_robin = _simulate(RoundRobin(), [1, 8, 1], seed=5, ticks=3000)
    assert abs(round_robin[1] - 1000) <= 1  # round robin does not care


def test_slow_start_factor_follows_envoys_formula() -> None:
    """weight × max(minimum, (age / window) ** (1 / aggression)), 1.0 once warm."""
    host = hosts(1)[0]
    host.added_at = 0.0
    linear = SlowStart(window=10.0, minimum=0.1, aggression=1.0)
    assert linear.factor(host, 5.0) == pytest.approx(0.5)
    assert linear.factor(host, 0.5) == pytest.approx(0.1)  # the floor
    assert linear.factor(host, 10.0) == 1.0
    aggressive = SlowStart(window=10.0, minimum=0.0, aggression=2.0)
    assert aggressive.factor(host, 2.5) == pytest.approx(0.5)


def test_warming_host_gets_a_growing_share() -> None:
    """A host that just joined takes few requests at first, its full share later."""
    group = hosts(1, 1)
    group[0].added_at = -100.0
    group[1].added_at = 0.0
    balancer = RoundRobin(SlowStart(window=10.0))
    rng = random.Random(1)
    early = Counter(balancer.pick(group, rng, 1.0) for _ in range(1000))
    late = Counter(balancer.pick(group, rng, 20.0) for _ in range(1000))
    assert early[group[1]] < 200
    assert abs(late[group[1]] - 500) <= 1
