"""Compile a VirtualService's ``http`` rules: matchers, targets and cumulative weights."""

from __future__ import annotations

import itertools

from meshlib._compile._table import (
    CompiledRoute,
    RouteTarget,
    VirtualHost,
    WeightedTargets,
    Workload,
)
from meshlib._core._fault import fault_policy
from meshlib._core._match import (
    HeaderCondition,
    MatchKind,
    QueryCondition,
    RequestMatcher,
    StringMatcher,
)
from meshlib._core._retry import retry_policy
from meshlib._hostnames import expand
from meshlib._labels import selects
from meshlib._regex import compile_re2
from meshlib.config import (
    Destination,
    Headers,
    HTTPMatchRequest,
    HTTPRoute,
    Resource,
    StringMatch,
    VirtualService,
)

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
    if not selects(match.source_labels, workload.labels):
        return False
    return not match.source_namespace or match.source_namespace == workload.namespace


def _mirrors(
    rule: HTTPRoute, namespace: str, domain: str
) -> tuple[tuple[RouteTarget, float], ...]:
    """``mirror`` with ``mirrorPercentage`` (absent: 100 %), or each of ``mirrors``."""
    found: list[tuple[RouteTarget, float]] = []
    if rule.mirror is not None:
        if rule.mirror_percentage is not None:
            percent = rule.mirror_percentage.value
        elif rule.mirror_percent is not None:
            percent = float(rule.mirror_percent)
        else:
            percent = 100.0
        found.append((_target(rule.mirror, namespace, domain), percent))
    for mirror in rule.mirrors:
        if mirror.destination is not None:
            percent = mirror.percentage.value if mirror.percentage is not None else 100.0
            found.append((_target(mirror.destination, namespace, domain), percent))
    return tuple(found)


def _target(
    destination: Destination,
    namespace: str,
    domain: str,
    weight: int = 1,
    headers: Headers | None = None,
) -> RouteTarget:
    return RouteTarget(
        host=expand(destination.host, namespace, domain),
        subset=destination.subset,
        port=destination.port.number if destination.port else 0,
        weight=weight,
        headers=headers,
    )


def _targets(rule: HTTPRoute, namespace: str, domain: str) -> WeightedTargets | None:
    destinations = [d for d in rule.route if d.destination is not None]
    if not destinations:
        return None
    if len(destinations) > 1:
        destinations = [d for d in destinations if d.weight > 0]
    single = len(destinations) == 1
    targets = tuple(
        _target(
            d.destination,
            namespace,
            domain,
            max(d.weight, 1) if single else d.weight,
            d.headers,
        )
        for d in destinations
        if d.destination is not None
    )
    return WeightedTargets(targets, tuple(itertools.accumulate(t.weight for t in targets)))


def compile_virtual_host(
    host: str,
    resource: Resource[VirtualService],
    rules: tuple[HTTPRoute, ...],
    workload: Workload,
) -> VirtualHost:
    """Compile the ``rules`` of ``resource`` (delegates merged in) for one host.

    Rules whose every match names another workload (``sourceLabels``,
    ``sourceNamespace``, ``gateways``) do not exist for this workload. Short destination
    hosts expand with the VirtualService's namespace.
    """
    spec = resource.spec
    routes: list[CompiledRoute] = []
    ports: set[int] | None = set()
    for index, rule in enumerate(rules):
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
                mirrors=_mirrors(rule, resource.namespace, workload.domain),
                retry=retry_policy(rule.retries),
                fault=fault_policy(rule.fault),
                timeout=rule.timeout.seconds if rule.timeout else None,
            )
        )
    return VirtualHost(host, resource, tuple(routes), None if ports is None else frozenset(ports))
