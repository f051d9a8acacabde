"""Weighted destinations: one independent draw per request converges to the weights."""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from meshlib import Endpoint, Mesh
from tests.core.drive import drive

HOST = "svc.default.svc.cluster.local"


def split_mesh(weights: list[int], seed: int) -> Mesh:
    routes = "".join(
        f"    - destination: {{host: svc, subset: s{i}}}\n      weight: {w}\n"
        for i, w in enumerate(weights)
    )
    subsets = "".join(f"  - {{name: s{i}, labels: {{s: '{i}'}}}}\n" for i in range(len(weights)))
    mesh = Mesh.from_yaml(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: svc}\n"
        f"spec:\n  host: svc\n  subsets:\n{subsets}---\n"
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: svc}\n"
        f"spec:\n  hosts: [svc]\n  http:\n  - route:\n{routes}",
        seed=seed,
    )
    mesh.set_endpoints(
        HOST, [Endpoint(f"10.0.0.{i}", port=80, labels={"s": str(i)}) for i in range(len(weights))]
    )
    return mesh


def within_binomial_bound(count: int, n: int, p: float) -> bool:
    """|count - np| <= 4.5 standard deviations (a false alarm under 1e-5 per check)."""
    return abs(count - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)) + 1


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    weights=st.lists(st.integers(min_value=0, max_value=1000), min_size=2, max_size=4).filter(
        lambda w: sum(w) > 0
    ),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_splits_converge_to_relative_weights(weights: list[int], seed: int) -> None:
    """Each destination gets weight/sum of requests within a binomial bound; 0 gets none."""
    mesh = split_mesh(weights, seed)
    n = 1000
    counts = Counter(drive(mesh, "http://svc/").info.subset for _ in range(n))
    total = sum(weights)
    for i, weight in enumerate(weights):
        if weight == 0:
            assert counts[f"s{i}"] == 0
        else:
            assert within_binomial_bound(counts[f"s{i}"], n, weight / total), (weights, counts)


def test_single_destination_ignores_its_weight() -> None:
    """One destination gets every request, even with weight 0 (Istio drops the weight)."""
    mesh = split_mesh([0], 1)
    assert {drive(mesh, "http://svc/").info.subset for _ in range(50)} == {"s0"}


def test_the_same_seed_gives_the_same_sequence() -> None:
    """A seeded mesh draws the same destinations in the same order, run after run."""
    mesh_a, mesh_b = split_mesh([1, 2, 3], 42), split_mesh([1, 2, 3], 42)
    run_a = [drive(mesh_a, "http://svc/").info.subset for _ in range(200)]
    run_b = [drive(mesh_b, "http://svc/").info.subset for _ in range(200)]
    assert run_a == run_b
    assert len(set(run_a)) == 3
