"""Compile validated resources into a :class:`RoutingTable` for one workload."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from meshlib._compile._policy import effective_policy
from meshlib._compile._precedence import creation_order, exported_to, virtual_service_order
from meshlib._compile._routes import MESH_GATEWAY, compile_virtual_host, labels_subset
from meshlib._compile._table import (
    DestinationPolicy,
    RoutingTable,
    Service,
    VirtualHost,
    Workload,
)
from meshlib._hostnames import expand, is_wildcard
from meshlib.config import DestinationRule, Resource, ServiceEntry, Subset, TrafficPolicy

__all__ = ["compile_table"]


def compile_table(resources: Iterable[Resource[Any]], workload: Workload) -> RoutingTable:
    """Build the routing table ``workload`` sees from validated ``resources``."""
    by_kind: dict[str, list[Resource[Any]]] = defaultdict(list)
    for resource in resources:
        by_kind[resource.kind].append(resource)
    services = _services(by_kind["ServiceEntry"], workload)
    exact_hosts, wildcard_hosts = _virtual_hosts(by_kind["VirtualService"], workload)
    exact_rules, wildcard_rules = _destination_policies(by_kind["DestinationRule"], workload)
    table = RoutingTable(
        workload=workload,
        virtual_hosts=exact_hosts,
        wildcard_virtual_hosts=wildcard_hosts,
        destination_policies=exact_rules,
        wildcard_destination_policies=wildcard_rules,
        services=services,
        cluster_policies={},
    )
    return _with_cluster_policies(table)


def _bound_to_mesh(resource: Resource[Any]) -> bool:
    """A VirtualService applies to sidecars when its gateways are empty or include mesh."""
    gateways: tuple[str, ...] = resource.spec.gateways
    return not gateways or MESH_GATEWAY in gateways


def _by_specificity(items: Iterable[Any]) -> tuple[Any, ...]:
    """Wildcard entries, most specific (longest) first; ``*`` last."""
    return tuple(sorted(items, key=lambda item: -len(item.host)))


def _virtual_hosts(
    resources: list[Resource[Any]], workload: Workload
) -> tuple[dict[str, VirtualHost], tuple[VirtualHost, ...]]:
    """Each host goes to the first VirtualService that claims it (no merge on sidecars)."""
    visible = [
        r
        for r in resources
        if r.spec.hosts and _bound_to_mesh(r) and exported_to(r, workload.namespace)
    ]
    exact: dict[str, VirtualHost] = {}
    wildcards: dict[str, VirtualHost] = {}
    for resource in virtual_service_order(visible, workload.namespace):
        for written in resource.spec.hosts:
            host = expand(written, resource.namespace, workload.domain)
            claimed = wildcards if is_wildcard(host) else exact
            if host not in claimed:
                claimed[host] = compile_virtual_host(host, resource, workload)
    return exact, _by_specificity(wildcards.values())


def _services(resources: list[Resource[Any]], workload: Workload) -> dict[str, Service]:
    """Hosts declared by ServiceEntries visible to the workload.

    When several namespaces declare a host, the workload's own namespace wins, then the
    oldest (``model/sidecar.go`` ``selectServices``); entries in one namespace merge ports.
    """
    visible = [r for r in creation_order(resources) if exported_to(r, workload.namespace)]
    visible.sort(key=lambda r: r.namespace != workload.namespace)
    services: dict[str, Service] = {}
    for resource in visible:
        spec: ServiceEntry = resource.spec
        ports = tuple(p.number for p in spec.ports)
        for written in spec.hosts:
            host = written.lower()
            known = services.get(host)
            if known is None:
                services[host] = Service(host, resource.namespace, ports, resource)
            elif known.namespace == resource.namespace:
                merged = known.ports + tuple(p for p in ports if p not in known.ports)
                services[host] = Service(host, known.namespace, merged, known.source)
    return services


def _destination_policies(
    resources: list[Resource[Any]], workload: Workload
) -> tuple[dict[str, dict[str, DestinationPolicy]], dict[str, tuple[DestinationPolicy, ...]]]:
    """Merge DestinationRules per namespace and host, as ``mergeDestinationRule`` does.

    In each namespace, rules with a ``workloadSelector`` come first (they exist only for
    the workloads they select, in their own namespace), then by creation time. For one
    host, the first top-level ``trafficPolicy`` wins and subsets are unioned, the first
    definition of a name winning.
    """
    applicable = [r for r in resources if _applies(r, workload)]
    ordered = sorted(creation_order(applicable), key=lambda r: r.spec.workload_selector is None)
    grouped: dict[str, dict[str, list[Resource[DestinationRule]]]] = defaultdict(dict)
    for resource in ordered:
        host = expand(resource.spec.host, resource.namespace, workload.domain)
        grouped[resource.namespace].setdefault(host, []).append(resource)
    exact: dict[str, dict[str, DestinationPolicy]] = {}
    wildcards: dict[str, tuple[DestinationPolicy, ...]] = {}
    for namespace, hosts in grouped.items():
        merged = [_merge(host, rules) for host, rules in hosts.items()]
        exact[namespace] = {p.host: p for p in merged if not is_wildcard(p.host)}
        wildcards[namespace] = _by_specificity(p for p in merged if is_wildcard(p.host))
    return exact, wildcards


def _applies(resource: Resource[Any], workload: Workload) -> bool:
    selector = resource.spec.workload_selector
    if selector is not None:
        return resource.namespace == workload.namespace and labels_subset(
            selector.match_labels, workload.labels
        )
    return exported_to(resource, workload.namespace)


def _merge(host: str, rules: list[Resource[DestinationRule]]) -> DestinationPolicy:
    traffic_policy: TrafficPolicy | None = None
    subsets: dict[str, Subset] = {}
    for rule in rules:
        if traffic_policy is None:
            traffic_policy = rule.spec.traffic_policy
        for subset in rule.spec.subsets:
            subsets.setdefault(subset.name, subset)
    return DestinationPolicy(host, tuple(rules), traffic_policy, subsets)


def _with_cluster_policies(table: RoutingTable) -> RoutingTable:
    """Precompute the effective policy of every cluster the configuration names."""
    hosts = set(table.services)
    for per_namespace in table.destination_policies.values():
        hosts.update(per_namespace)
    policies: dict[tuple[str, str, int], TrafficPolicy | None] = {}
    for host in sorted(hosts):
        policy = table.destination_policy(host)
        if policy is None:
            continue
        service = table.services.get(host)
        ports = {0, *(service.ports if service else ())}
        for level in (policy.traffic_policy, *(s.traffic_policy for s in policy.subsets.values())):
            ports.update(
                p.port.number for p in (level.port_level_settings if level else ()) if p.port
            )
        for subset_name in ("", *policy.subsets):
            subset = policy.subsets.get(subset_name)
            for port in ports:
                policies[(host, subset_name, port)] = effective_policy(
                    policy.traffic_policy, subset.traffic_policy if subset else None, port
                )
    return RoutingTable(
        workload=table.workload,
        virtual_hosts=table.virtual_hosts,
        wildcard_virtual_hosts=table.wildcard_virtual_hosts,
        destination_policies=table.destination_policies,
        wildcard_destination_policies=table.wildcard_destination_policies,
        services=table.services,
        cluster_policies=policies,
    )
