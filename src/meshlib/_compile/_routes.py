"""Compile a VirtualService's ``http`` rules: matchers, targets and cumulative weights."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from meshlib._compile._table import (
    CompiledRoute,
    RouteTarget,
    VirtualHost,
    WeightedTargets,
    Workload,
)
from meshlib._core._match import (
    HeaderCondition,
    MatchKind,
    QueryCondition,
    RequestMatcher,
    StringMatcher,
)
from meshlib._hostnames import expand
from meshlib._regex import compile_re2
from meshlib.config import HTTPMatchRequest, HTTPRoute, Resource, StringMatch, VirtualService

__all__ = ["compile_virtual_host", "string_matcher"]

MESH_GATEWAY = "mesh"


def string_matcher(match: StringMatch, *, ignore_case: bool = False) -> StringMatcher:
    """Compile one ``StringMatch``. A match with no type, or ``regex: "*"``, is presence."""
    if match.exact is not None:
        return StringMatcher(MatchKind.EXACT, match.exact, ignore_case=ignore_case)
    if match.prefix is not None:
        return StringMatcher(MatchKind.PREFIX, match.prefix, ignore_case=ignore_case)
    if match.regex is not None and match.regex != "*":
        return StringMatcher(MatchKind.REGEX, match.regex, compile_re2(match.regex))
    return StringMatcher(MatchKind.PRESENT)


def _optional(match: StringMatch | None, *, ignore_case: bool = False) -> StringMatcher | None:
    return None if match is None else string_matcher(match, ignore_case=ignore_case)


def _request_matcher(match: HTTPMatchRequest) -> RequestMatcher:
    headers = tuple(
        HeaderCondition(name.lower(), string_matcher(value))
        for name, value in match.headers.items()
    ) + tuple(
        HeaderCondition(name.lower(), string_matcher(value), invert=True)
        for name, value in match.without_headers.items()
    )
    return RequestMatcher(
        name=match.name,
        uri=_optional(match.uri, ignore_case=match.ignore_uri_case),
        scheme=_optional(match.scheme),
        method=_optional(match.method),
        authority=_optional(match.authority),
        port=match.port,
        headers=headers,
        query=tuple(
            QueryCondition(name, string_matcher(value))
            for name, value in match.query_params.items()
        ),
    )


def applies_to_workload(
    match: HTTPMatchRequest, gateways: tuple[str, ...], workload: Workload
) -> bool:
    """Settle, at compile time, the conditions on the calling workload (``sourceMatchHTTP``).

    ``gateways`` in a match replaces the VirtualService's; ``sourceLabels`` must be a
    subset of the workload's labels; ``sourceNamespace`` must equal its namespace.
    """
    bound = match.gateways or gateways
    if bound and MESH_GATEWAY not in bound:
        return False
    labels = workload.labels
    if any(labels.get(key) != value for key, value in match.source_labels.items()):
        return False
    return not match.source_namespace or match.source_namespace == workload.namespace


def _targets(rule: HTTPRoute, namespace: str, domain: str) -> WeightedTargets | None:
    destinations = [d for d in rule.route if d.destination is not None]
    if not destinations:
        return None
    if len(destinations) > 1:
        destinations = [d for d in destinations if d.weight > 0]
    targets = tuple(
        RouteTarget(
            host=expand(d.destination.host, namespace, domain),
            subset=d.destination.subset,
            port=d.destination.port.number if d.destination.port else 0,
            weight=max(d.weight, 1) if len(destinations) == 1 else d.weight,
            headers=d.headers,
        )
        for d in destinations
        if d.destination is not None
    )
    return WeightedTargets(targets, tuple(itertools.accumulate(t.weight for t in targets)))


def compile_virtual_host(
    host: str, resource: Resource[VirtualService], workload: Workload
) -> VirtualHost:
    """Compile the rules of ``resource`` that apply to ``workload`` for one host."""
    spec = resource.spec
    routes: list[CompiledRoute] = []
    ports: set[int] | None = set()
    for index, rule in enumerate(spec.http):
        kept = tuple(m for m in rule.match if applies_to_workload(m, spec.gateways, workload))
        if rule.match and not kept:
            continue  # every match item names another workload: the rule does not exist here
        if ports is not None:
            rule_ports = {m.port for m in kept}
            ports = None if not kept or 0 in rule_ports else ports | rule_ports
        routes.append(
            CompiledRoute(
                name=rule.name,
                index=index,
                matchers=tuple(_request_matcher(m) for m in kept),
                spec=rule,
                targets=_targets(rule, resource.namespace, workload.domain),
            )
        )
    return VirtualHost(host, resource, tuple(routes), None if ports is None else frozenset(ports))


def labels_subset(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Are ``selector``'s labels all carried by ``labels`` (``labels.Instance.SubsetOf``)?"""
    return all(labels.get(key) == value for key, value in selector.items())
