"""Compile validated resources into a :class:`RoutingTable` for one workload."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from meshlib._compile._delegates import expand_delegates
from meshlib._compile._policy import effective_policy
from meshlib._compile._precedence import creation_order, exported_to, virtual_service_order
from meshlib._compile._routes import MESH_GATEWAY, compile_virtual_host
from meshlib._compile._services import build_services
from meshlib._compile._table import (
    DestinationPolicy,
    OutboundPolicy,
    RoutingTable,
    VirtualHost,
    Workload,
)
from meshlib._endpoints import Endpoint
from meshlib._hostnames import expand, is_wildcard
from meshlib._labels import selects
from meshlib.config import (
    DestinationRule,
    MutualTLSMode,
    OutboundTrafficPolicyMode,
    Resource,
    Subset,
    TrafficPolicy,
)

__all__ = ["compile_table"]


def compile_table(
    resources: Iterable[Resource[Any]],
    workload: Workload,
    *,
    endpoints: Mapping[str, tuple[Endpoint, ...]] | None = None,
    outbound_policy: OutboundPolicy = OutboundPolicy.ALLOW_ANY,
) -> RoutingTable:
    """Build the routing table ``workload`` sees.

    Args:
        resources: validated resources (what :func:`meshlib.config.read_yaml` returns).
        workload: the calling workload.
        endpoints: endpoints set in code, by FQDN; they replace those from YAML.
        outbound_policy: the mesh-wide policy for unknown hosts, unless a Sidecar
            resource selecting the workload sets one.
    """
    by_kind: dict[str, list[Resource[Any]]] = defaultdict(list)
    for resource in resources:
        by_kind[resource.kind].append(resource)
    services = build_services(
        by_kind["ServiceEntry"],
        by_kind["WorkloadEntry"],
        workload.namespace,
        endpoints or {},
        workload.namespace_of,
    )
    exact_hosts, wildcard_hosts = _virtual_hosts(by_kind["VirtualService"], workload)
    exact_rules, wildcard_rules = _destination_policies(by_kind["DestinationRule"], workload)
    addresses = {
        address: host
        for host, service in services.items()
        for address in service.addresses
        if "/" not in address
    }
    table = RoutingTable(
        workload=workload,
        virtual_hosts=exact_hosts,
        wildcard_virtual_hosts=wildcard_hosts,
        destination_policies=exact_rules,
        wildcard_destination_policies=wildcard_rules,
        services=services,
        cluster_policies={},
        outbound_policy=_outbound_policy(by_kind["Sidecar"], workload, outbound_policy),
        addresses=addresses,
        peer_modes=_peer_modes(by_kind["PeerAuthentication"]),
        wildcard_services=tuple(
            sorted(
                (s for name, s in services.items() if name.startswith("*")),
                key=lambda s: len(s.host),
                reverse=True,
            )
        ),
    )
    return _with_cluster_policies(table)


def _peer_modes(policies: Iterable[Resource[Any]]) -> dict[str, MutualTLSMode]:
    """Each namespace's namespace-wide PeerAuthentication mode (no selector; the oldest
    wins, as in Istio); ``UNSET`` leaves the namespace to the mesh-wide policy."""
    modes: dict[str, MutualTLSMode] = {}
    for resource in creation_order(policies):
        spec = resource.spec
        if spec.selector is not None or spec.mtls is None:
            continue
        if spec.mtls.mode is not MutualTLSMode.UNSET:
            modes.setdefault(resource.namespace, spec.mtls.mode)
    return modes


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
    delegates = {(r.namespace, r.name): r for r in resources if not r.spec.hosts}
    visible = [
        r
        for r in resources
        if r.spec.hosts and _bound_to_mesh(r) and exported_to(r, workload.namespace)
    ]
    exact: dict[str, VirtualHost] = {}
    wildcards: dict[str, VirtualHost] = {}
    for resource in virtual_service_order(visible, workload.namespace):
        rules = expand_delegates(resource, delegates)
        for written in resource.spec.hosts:
            host = expand(written, resource.namespace, workload.domain)
            claimed = wildcards if is_wildcard(host) else exact
            if host not in claimed:
                claimed[host] = compile_virtual_host(host, resource, rules, workload)
    return exact, _by_specificity(wildcards.values())


def _outbound_policy(
    sidecars: list[Resource[Any]], workload: Workload, default: OutboundPolicy
) -> OutboundPolicy:
    """The ``outboundTrafficPolicy`` of the Sidecar that applies to the workload.

    Istio picks a Sidecar with a matching ``workloadSelector`` in the workload's
    namespace, else the namespace's Sidecar without selector, else the root
    namespace's; without one (or without the field) the mesh-wide default applies.
    """
    ordered = creation_order(sidecars)
    selected = [
        s
        for s in ordered
        if s.namespace == workload.namespace
        and s.spec.workload_selector is not None
        and selects(s.spec.workload_selector.labels, workload.labels)
    ]
    namespace_wide = [
        s
        for s in ordered
        if s.spec.workload_selector is None
        and s.namespace in (workload.namespace, workload.root_namespace)
    ]
    namespace_wide.sort(key=lambda s: s.namespace != workload.namespace)
    for sidecar in (*selected, *namespace_wide):
        policy = sidecar.spec.outbound_traffic_policy
        if policy is not None:
            if policy.mode is OutboundTrafficPolicyMode.ALLOW_ANY:
                return OutboundPolicy.ALLOW_ANY
            return OutboundPolicy.REGISTRY_ONLY
        return default
    return default


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
        return resource.namespace == workload.namespace and selects(
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


def _ports_named(policy: DestinationPolicy) -> set[int]:
    levels = (policy.traffic_policy, *(s.traffic_policy for s in policy.subsets.values()))
    return {
        entry.port.number
        for level in levels
        if level is not None
        for entry in level.port_level_settings
        if entry.port is not None
    }


def _with_cluster_policies(table: RoutingTable) -> RoutingTable:
    """Precompute the effective policy of every (host, subset, port) the config names."""
    hosts = set(table.services)
    for per_namespace in table.destination_policies.values():
        hosts.update(per_namespace)
    policies: dict[tuple[str, str, int], TrafficPolicy | None] = {}
    for host in sorted(hosts):
        policy = table.destination_policy(host)
        if policy is None:
            continue
        service = table.services.get(host)
        ports = {0, *(p.number for p in (service.ports if service else ())), *_ports_named(policy)}
        for subset_name in ("", *policy.subsets):
            subset = policy.subsets.get(subset_name)
            for port in ports:
                policies[(host, subset_name, port)] = effective_policy(
                    policy.traffic_policy, subset.traffic_policy if subset else None, port
                )
    return dataclasses.replace(table, cluster_policies=policies)
