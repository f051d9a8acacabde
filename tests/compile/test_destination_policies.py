"""DestinationRules: merging, lookup order and the effective policy of each cluster.

``istio-api.md`` §2.2 (port level replaces; subsets replace whole blocks), §2.8 (merge and
lookup order), §5.3.
"""

from __future__ import annotations

import textwrap

from meshlib._compile import RoutingTable, Workload, compile_table
from meshlib.config import SimpleLB, read_yaml

FQDN = "reviews.default.svc.cluster.local"


def dr(name: str, namespace: str, body: str, meta: str = "") -> str:
    return (
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        f"metadata: {{name: {name}, namespace: {namespace}{meta}}}\nspec:\n"
        + textwrap.indent(textwrap.dedent(body).strip(), "  ")
        + "\n"
    )


def table(
    *documents: str, namespace: str = "default", labels: dict[str, str] | None = None
) -> RoutingTable:
    found = read_yaml("---\n".join(documents)).raise_for_errors()
    return compile_table(found.resources, Workload(namespace=namespace, labels=labels or {}))


def test_rules_for_one_host_merge_first_policy_and_subsets() -> None:
    """The first top-level trafficPolicy wins; subsets are unioned, first definition wins."""
    routing = table(
        dr("a", "default", """
            host: reviews
            trafficPolicy: {loadBalancer: {simple: RANDOM}}
            subsets: [{name: v1, labels: {version: v1}}]
            """),
        dr("b", "default", """
            host: reviews
            trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
            subsets: [{name: v1, labels: {version: other}}, {name: v2, labels: {version: v2}}]
            """),
    )  # fmt: skip
    policy = routing.destination_policy(FQDN)
    assert policy is not None
    assert [r.name for r in policy.sources] == ["a", "b"]
    assert policy.traffic_policy.load_balancer.simple is SimpleLB.RANDOM  # type: ignore[union-attr]
    assert dict(policy.subsets["v1"].labels) == {"version": "v1"}
    assert set(policy.subsets) == {"v1", "v2"}


def test_lookup_prefers_client_namespace_then_service_then_root() -> None:
    """Client namespace first, then the service's, then istio-system."""
    in_root = dr(
        "root", "istio-system", "host: reviews.default.svc.cluster.local\nsubsets: [{name: root}]"
    )
    in_service = dr("svc", "default", "host: reviews\nsubsets: [{name: svc}]")
    in_client = dr(
        "client", "shop", "host: reviews.default.svc.cluster.local\nsubsets: [{name: client}]"
    )
    assert set(
        table(in_root, in_service, in_client, namespace="shop").destination_policy(FQDN).subsets
    ) == {"client"}  # type: ignore[union-attr]
    assert set(table(in_root, in_service, namespace="shop").destination_policy(FQDN).subsets) == {
        "svc"
    }  # type: ignore[union-attr]
    assert set(table(in_root, namespace="shop").destination_policy(FQDN).subsets) == {"root"}  # type: ignore[union-attr]


def test_rules_in_unrelated_namespaces_do_not_apply() -> None:
    """A DestinationRule in a namespace that is neither client, service nor root is not used."""
    elsewhere = dr(
        "x", "unrelated", "host: reviews.default.svc.cluster.local\nsubsets: [{name: x}]"
    )
    assert table(elsewhere, namespace="shop").destination_policy(FQDN) is None


def test_most_specific_host_wins_within_a_namespace() -> None:
    """Exact host beats a wildcard DestinationRule in the same namespace."""
    routing = table(
        dr("wild", "default", "host: '*.default.svc.cluster.local'\nsubsets: [{name: wild}]"),
        dr("exact", "default", "host: reviews\nsubsets: [{name: exact}]"),
    )
    assert set(routing.destination_policy(FQDN).subsets) == {"exact"}  # type: ignore[union-attr]
    assert set(routing.destination_policy("ratings.default.svc.cluster.local").subsets) == {"wild"}  # type: ignore[union-attr]


def test_workload_selector_rules_apply_to_selected_clients_first() -> None:
    """A rule with a workloadSelector exists only for the workloads it selects, and comes first."""
    selector = dr("sel", "default", """
        host: reviews
        workloadSelector: {matchLabels: {app: productpage}}
        trafficPolicy: {loadBalancer: {simple: RANDOM}}
        """)  # fmt: skip
    plain = dr(
        "plain", "default", "host: reviews\ntrafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}"
    )
    chosen = table(plain, selector, labels={"app": "productpage"}).destination_policy(FQDN)
    other = table(plain, selector, labels={"app": "other"}).destination_policy(FQDN)
    assert chosen.traffic_policy.load_balancer.simple is SimpleLB.RANDOM  # type: ignore[union-attr]
    assert other.traffic_policy.load_balancer.simple is SimpleLB.ROUND_ROBIN  # type: ignore[union-attr]


POLICY = dr("r", "default", """
    host: reviews
    trafficPolicy:
      loadBalancer: {simple: RANDOM}
      connectionPool: {tcp: {maxConnections: 10}, http: {http1MaxPendingRequests: 5}}
      outlierDetection: {consecutive5xxErrors: 3}
      portLevelSettings:
      - port: {number: 9443}
        loadBalancer: {simple: ROUND_ROBIN}
    subsets:
    - name: v1
      labels: {version: v1}
      trafficPolicy:
        connectionPool: {http: {http2MaxRequests: 7}}
    - name: v2
      labels: {version: v2}
      trafficPolicy:
        portLevelSettings:
        - port: {number: 9080}
          loadBalancer: {simple: LEAST_REQUEST}
    """)  # fmt: skip


def test_port_level_settings_replace_without_inheriting() -> None:
    """On a port with its own settings, blocks it omits fall back to defaults, not the top."""
    policy = table(POLICY).cluster_policy(FQDN, "", 9443)
    assert policy is not None
    assert policy.load_balancer.simple is SimpleLB.ROUND_ROBIN  # type: ignore[union-attr]
    assert policy.connection_pool is None
    assert policy.outlier_detection is None


def test_subset_replaces_whole_blocks() -> None:
    """A subset's connectionPool replaces the host's whole block (its tcp part is gone)."""
    policy = table(POLICY).cluster_policy(FQDN, "v1", 9080)
    assert policy is not None
    assert policy.connection_pool.tcp is None  # type: ignore[union-attr]
    assert policy.connection_pool.http.http2_max_requests == 7  # type: ignore[union-attr]
    assert policy.load_balancer.simple is SimpleLB.RANDOM  # type: ignore[union-attr]
    assert policy.outlier_detection.consecutive_5xx_errors == 3  # type: ignore[union-attr]


def test_subset_port_level_settings_replace_all_four_blocks() -> None:
    """When the subset's own portLevelSettings match, all four blocks come from there."""
    policy = table(POLICY).cluster_policy(FQDN, "v2", 9080)
    assert policy is not None
    assert policy.load_balancer.simple is SimpleLB.LEAST_REQUEST  # type: ignore[union-attr]
    assert policy.connection_pool is None
    assert policy.outlier_detection is None


def test_cluster_policies_are_precomputed_for_known_ports() -> None:
    """The table holds the effective policy of every (host, subset, port) the config names."""
    routing = table(POLICY)
    assert {(h, s, p) for h, s, p in routing.cluster_policies} >= {
        (FQDN, "", 0),
        (FQDN, "", 9443),
        (FQDN, "v1", 9080),
        (FQDN, "v2", 9080),
    }
