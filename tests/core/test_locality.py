"""Locality-aware balancing: Istio's priorities and weights, Envoy's priority loads.

``istio-api.md`` §2.3 and ``envoy-semantics.md`` §5.5-5.6.
"""

from __future__ import annotations

import textwrap
from collections import Counter

import pytest

from meshlib import Endpoint, Mesh
from meshlib._core._actions import Responded
from meshlib._core._locality import arrange, locality_matches, locality_priority, priority_loads
from meshlib.config import LocalityLoadBalancerSetting
from tests.core.drive import drive
from tests.core.test_balancing import binomial_ok, hosts


@pytest.mark.parametrize(
    ("healthy", "loads"),
    [
        ((100, 100), [100, 0]),
        ((72, 100), [100, 0]),
        ((71, 100), [99, 1]),
        ((50, 100), [70, 30]),
        ((25, 100), [35, 65]),
        ((0, 100), [0, 100]),
    ],
)
def test_priority_loads_with_overprovisioning(healthy: tuple[int, int], loads: list[int]) -> None:
    """P0 keeps everything until ~71 % healthy, then spills to P1 (factor 1.4)."""
    assert priority_loads([healthy[0], 100], [healthy[1], 100]) == loads


@pytest.mark.parametrize(
    ("client", "endpoint", "priority"),
    [
        ("r/z/s", "r/z/s", 0),
        ("r/z/s", "r/z/t", 1),
        ("r/z/s", "r/y/s", 2),
        ("r/z/s", "q/z/s", 3),
        ("", "", 0),
    ],
)
def test_locality_priorities(client: str, endpoint: str, priority: int) -> None:
    """Same region/zone/subzone 0, same zone 1, same region 2, elsewhere 3."""
    assert locality_priority(client, endpoint) == priority


@pytest.mark.parametrize(
    ("locality", "pattern", "matches"),
    [
        ("us-west/z1/s", "us-west/*", True),
        ("us-west/z1/s", "us-west/z1/*", True),
        ("us-west/z1/s", "us-west/z2/*", False),
        ("us-east/z1", "*", True),
        ("us-west", "us-west/z1", False),
    ],
)
def test_locality_patterns(locality: str, pattern: str, matches: bool) -> None:
    """A ``*`` matches everything from its segment on."""
    assert locality_matches(locality, pattern) is matches


DR = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc}
spec:
  host: svc
  trafficPolicy:
"""
LOCALITIES = {
    "a": "us-west/z1/s1",
    "b": "us-west/z2/s1",
    "c": "us-east/z1/s1",
    "d": "eu-west/z1/s1",
}


def mesh_for(policy: str, *, locality: str = "us-west/z1/s1") -> Mesh:
    mesh = Mesh.from_yaml(
        DR + textwrap.indent(textwrap.dedent(policy), "    "), seed=3, locality=locality
    )
    mesh.set_endpoints(
        "svc",
        [
            Endpoint(f"10.0.0.{i}", port=80, locality=loc)
            for i, loc in enumerate(LOCALITIES.values())
        ],
    )
    return mesh


def served(mesh: Mesh, n: int = 400) -> Counter[str]:
    names = {f"10.0.0.{i}:80": name for i, name in enumerate(LOCALITIES)}
    return Counter(names[drive(mesh, "http://svc/").info.endpoint or ""] for _ in range(n))


def eject(mesh: Mesh, *names: str) -> None:
    """Mark endpoints ejected, as the outlier detector would."""
    addresses = {f"10.0.0.{i}" for i, name in enumerate(LOCALITIES) if name in names}
    for cluster in mesh.runtime.clusters.values():
        for host in cluster.hosts:
            if host.address in addresses:
                host.ejected_until = 1e18
        cluster.topology.invalidate()


def test_without_outlier_detection_locality_is_ignored() -> None:
    """Failover priorities need outlierDetection: without it, all endpoints share the load."""
    counts = served(mesh_for("loadBalancer: {simple: ROUND_ROBIN}"))
    assert set(counts) == set(LOCALITIES)


def test_outlier_detection_turns_on_default_locality_failover() -> None:
    """With outlierDetection, the client's own zone takes everything; when its hosts are
    ejected, traffic moves to the same region, then to other regions."""
    mesh = mesh_for("outlierDetection: {consecutive5xxErrors: 5}")
    assert set(served(mesh, 50)) == {"a"}
    eject(mesh, "a")
    assert set(served(mesh, 50)) == {"b"}
    eject(mesh, "b")
    assert set(served(mesh, 50)) <= {"c", "d"}


def test_failover_rules_order_other_regions() -> None:
    """``failover: from us-west to eu-west``: eu-west comes before us-east."""
    mesh = mesh_for("""
        outlierDetection: {consecutive5xxErrors: 5}
        loadBalancer: {localityLbSetting: {failover: [{from: us-west, to: eu-west}]}}
        """)
    served(mesh, 1)
    eject(mesh, "a", "b")
    assert set(served(mesh, 50)) == {"d"}


def test_failover_priority_labels() -> None:
    """``failoverPriority`` prefers endpoints sharing the client's label values, in order."""
    setting = LocalityLoadBalancerSetting(
        failover_priority=("topology.kubernetes.io/region", "topology.kubernetes.io/zone")
    )
    group = list(hosts(1, 1, 1))
    for host, locality in zip(group, ("us-west/z1", "us-west/z2", "us-east/z1"), strict=True):
        host.endpoint = Endpoint(host.address, locality=locality)
    labels = {"topology.kubernetes.io/region": "us-west", "topology.kubernetes.io/zone": "z1"}
    levels = arrange(
        group, setting, client_locality="us-west/z1", client_labels=labels, failover=True
    )
    assert [[h.endpoint.locality for h in level.hosts] for level in levels] == [
        ["us-west/z1"],
        ["us-west/z2"],
        ["us-east/z1"],
    ]


def test_distribute_weights_hold() -> None:
    """``distribute``: 70 % to us-west/z1, 30 % to us-east; unnamed localities get nothing."""
    mesh = mesh_for("""
        loadBalancer:
          localityLbSetting:
            distribute:
            - from: us-west/z1/*
              to: {"us-west/z1/*": 70, "us-east/*": 30}
        """)
    n = 2000
    counts = served(mesh, n)
    assert set(counts) == {"a", "c"}
    assert binomial_ok(counts["a"], n, 0.7)


def test_locality_lb_can_be_disabled() -> None:
    """``enabled: false`` keeps every endpoint in one priority, even with outlierDetection."""
    mesh = mesh_for("""
        outlierDetection: {consecutive5xxErrors: 5}
        loadBalancer: {localityLbSetting: {enabled: false}}
        """)
    assert set(served(mesh, 200)) == set(LOCALITIES)


def test_no_healthy_host_is_503_uh_without_panic() -> None:
    """minHealthPercent 0 (Istio's default with outlierDetection): nothing healthy is UH."""
    mesh = mesh_for("outlierDetection: {consecutive5xxErrors: 5}")
    served(mesh, 1)
    eject(mesh, *LOCALITIES)
    trace = drive(mesh, "http://svc/")
    assert trace.info.flags == ("UH",)


def test_panic_threshold_balances_over_all_hosts() -> None:
    """Below minHealthPercent of healthy hosts, Envoy balances over every host (panic)."""
    mesh = mesh_for(
        "outlierDetection: {consecutive5xxErrors: 5, minHealthPercent: 50}\nloadBalancer: {localityLbSetting: {enabled: false}}"
    )
    served(mesh, 1)
    eject(mesh, "a", "b", "c")
    assert set(served(mesh, 200)) == set(LOCALITIES)


def test_retry_remote_localities_moves_the_second_retry_to_another_priority() -> None:
    """retryRemoteLocalities (Envoy's previous_priorities, update frequency 2): the first
    retry stays in the client's zone; from the second retry on, the priorities already
    tried get no load. Without it every attempt stays in the zone."""
    policy = "outlierDetection: {consecutive5xxErrors: 100}"
    vs = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: default}
spec:
  hosts: [svc]
  http:
  - route: [{destination: {host: svc}}]
    retries: {attempts: 3, retryOn: 5xx, retryRemoteLocalities: REMOTE}
"""
    names = {f"10.0.0.{i}:80": name for i, name in enumerate(LOCALITIES)}

    def tried(remote: bool) -> list[str]:
        mesh = mesh_for(policy)
        mesh.apply(
            (*mesh.resources, *Mesh.from_yaml(vs.replace("REMOTE", str(remote).lower())).resources)
        )
        trace = drive(mesh, "http://svc/", upstream=lambda _: Responded(503))
        return [names[f"{a.address}:{a.port}"] for a in trace.sends]

    assert tried(remote=False) == ["a"] * 4
    remote = tried(remote=True)
    assert remote[:2] == ["a", "a"]
    assert "a" not in remote[2:]
