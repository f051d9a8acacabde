"""Which resource wins for a host, as Istio decides (``istio-api.md`` §5.2, §5.3, §2.8)."""

from __future__ import annotations

import textwrap

from meshlib._compile import RoutingTable, Workload, compile_table
from meshlib.config import read_yaml


def vs(name: str, namespace: str, host: str, subset: str, extra: str = "") -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: {name}
          namespace: {namespace}
        {textwrap.indent(extra, "  ").strip() and "  " + extra.strip()}
        spec:
          hosts: [{host}]
          http:
          - route:
            - destination: {{host: {host}, subset: {subset}}}
        """
    ).replace("\n\n", "\n")


def table(
    *documents: str, namespace: str = "default", labels: dict[str, str] | None = None
) -> RoutingTable:
    found = read_yaml("---\n".join(documents)).raise_for_errors()
    return compile_table(found.resources, Workload(namespace=namespace, labels=labels or {}))


def winner(routing: RoutingTable, host: str) -> str:
    virtual_host = routing.virtual_host(host)
    assert virtual_host is not None
    return virtual_host.source.name


FQDN = "reviews.default.svc.cluster.local"


def test_first_loaded_wins_without_timestamps() -> None:
    """Resources without creationTimestamp count as created in load order; no merging."""
    routing = table(vs("b", "default", "reviews", "v1"), vs("a", "default", "reviews", "v2"))
    assert winner(routing, FQDN) == "b"
    assert routing.virtual_host(FQDN).routes[0].targets.targets[0].subset == "v1"  # type: ignore[union-attr]


def test_oldest_timestamp_wins_then_name() -> None:
    """Older creationTimestamp wins; equal timestamps go by name."""
    old = "creationTimestamp: '2024-01-01T00:00:00Z'"
    new = "creationTimestamp: '2024-06-01T00:00:00Z'"
    assert (
        winner(
            table(
                vs("b", "default", "reviews", "v1", new), vs("a", "default", "reviews", "v2", old)
            ),
            FQDN,
        )
        == "a"
    )
    assert (
        winner(
            table(
                vs("b", "default", "reviews", "v1", old), vs("a", "default", "reviews", "v2", old)
            ),
            FQDN,
        )
        == "a"
    )


def test_timestamped_resources_are_older_than_loaded_ones() -> None:
    """A resource read from a file without a timestamp counts as created when loaded: now."""
    stamped = vs("z", "default", "reviews", "v2", "creationTimestamp: '2020-01-01T00:00:00Z'")
    assert winner(table(vs("a", "default", "reviews", "v1"), stamped), FQDN) == "z"


def test_private_to_client_namespace_beats_public() -> None:
    """A VirtualService exported only to the client's namespace wins over public ones."""
    public = vs("public", "other", "reviews.default.svc.cluster.local", "v1")
    private = vs("private", "default", "reviews", "v2").replace(
        "  hosts:", "  exportTo: ['.']\n  hosts:"
    )
    assert winner(table(public, private), FQDN) == "private"


def test_exported_by_name_comes_between_private_and_public() -> None:
    """exportTo naming the client's namespace beats public, loses to private."""
    public = vs("public", "other", FQDN, "v1")
    named = vs("named", "third", FQDN, "v2").replace("  hosts:", "  exportTo: [default]\n  hosts:")
    assert winner(table(public, named), FQDN) == "named"


def test_invisible_virtual_services_are_ignored() -> None:
    """A VirtualService private to another namespace does not apply to this client."""
    hidden = vs("hidden", "other", FQDN, "v1").replace("  hosts:", "  exportTo: ['.']\n  hosts:")
    assert table(hidden).virtual_host(FQDN) is None


def test_gateway_only_virtual_services_are_ignored() -> None:
    """Bound to gateways without ``mesh``: not for sidecars, so not for meshlib."""
    gateway = vs("gw", "default", "reviews", "v1").replace(
        "  hosts:", "  gateways: [ingress]\n  hosts:"
    )
    both = vs("both", "default", "ratings", "v1").replace(
        "  hosts:", "  gateways: [ingress, mesh]\n  hosts:"
    )
    routing = table(gateway, both)
    assert routing.virtual_host(FQDN) is None
    assert winner(routing, "ratings.default.svc.cluster.local") == "both"


def test_exact_host_beats_wildcards_and_longest_wildcard_wins() -> None:
    """Exact VirtualService hosts first, then the most specific wildcard."""
    routing = table(
        vs("star", "default", "'*.example.com'", "v1"),
        vs("deep", "default", "'*.api.example.com'", "v2"),
        vs("exact", "default", "a.api.example.com", "v3"),
    )
    assert winner(routing, "a.api.example.com") == "exact"
    assert winner(routing, "b.api.example.com") == "deep"
    assert winner(routing, "c.example.com") == "star"
    assert routing.virtual_host("example.com") is None


def test_short_names_expand_with_the_resources_namespace() -> None:
    """``reviews`` in namespace ``shop`` is ``reviews.shop.svc.cluster.local``."""
    routing = table(vs("r", "shop", "reviews", "v1"), namespace="shop")
    assert winner(routing, "reviews.shop.svc.cluster.local") == "r"
    assert routing.virtual_host(FQDN) is None
