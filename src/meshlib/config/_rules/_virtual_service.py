"""Istio's validation of VirtualService (``ValidateVirtualService`` and the CRD schema).

The CRD's own constraints for this kind (durations of at least 1 ms, required
destinations, hosts and statuses) are all implied by the webhook rules below, so one set
of checks covers both.
"""

from __future__ import annotations

from meshlib._hostnames import matches, subset_of
from meshlib.config._context import ResourceContext
from meshlib.config._problems import Path, Report
from meshlib.config._rules._common import (
    go_quote,
    is_valid_ip,
    validate_export_to,
    validate_ip_subnet,
    validate_labels,
    validate_port,
    validate_wildcard_domain,
)
from meshlib.config._rules._destinations import (
    validate_gateway_names,
    validate_route_destinations,
)
from meshlib.config._rules._headers import is_jwt_claim
from meshlib.config._rules._http_route import RouteKind, validate_http_route
from meshlib.config._rules._unreachable import warn_unreachable_rules
from meshlib.config._virtual_service import TCPRoute, TLSMatchAttributes, TLSRoute, VirtualService

__all__ = ["validate_virtual_service"]

MESH = "mesh"


def validate_virtual_service(
    spec: VirtualService, context: ResourceContext, report: Report, path: Path
) -> None:
    """Report every rule of Istio's VirtualService validation that ``spec`` breaks."""
    delegate = not spec.hosts
    if delegate:
        _validate_delegate(spec, report, path)
    to_gateways_only = bool(spec.gateways) and MESH not in spec.gateways
    validate_gateway_names(spec.gateways, report, (*path, "gateways"))
    if not to_gateways_only:
        _forbid_jwt_claims(spec, report, path)
    _validate_hosts(spec, to_gateways_only, report, path)
    if not (spec.http or spec.tcp or spec.tls):
        report.error(path, "http, tcp or tls must be provided in virtual service")
    for index, route in enumerate(spec.http):
        where = (*path, "http", index)
        if where in report.nulls:
            report.error(where, "http route may not be null")
            continue
        kind = (
            RouteKind.DELEGATE
            if delegate
            else RouteKind.ROOT
            if route.delegate is not None
            else RouteKind.INDEPENDENT
        )
        validate_http_route(route, kind, report, where)
    for index, tls in enumerate(spec.tls):
        _validate_tls_route(tls, spec, report, (*path, "tls", index))
    for index, tcp in enumerate(spec.tcp):
        _validate_tcp_route(tcp, report, (*path, "tcp", index))
    validate_export_to(context.namespace, spec.export_to, report, (*path, "exportTo"))
    warn_unreachable_rules(spec, report, path)


def _validate_delegate(spec: VirtualService, report: Report, path: Path) -> None:
    """A VirtualService without hosts is a delegate: it has only HTTP rules."""
    if spec.gateways:
        report.error(
            (*path, "gateways"), "delegate virtual service must have no gateways specified"
        )
    if spec.tls:
        report.error((*path, "tls"), "delegate virtual service must have no tls route specified")
    if spec.tcp:
        report.error((*path, "tcp"), "delegate virtual service must have no tcp route specified")


def _forbid_jwt_claims(spec: VirtualService, report: Report, path: Path) -> None:
    """JWT-claim routing (``@request.auth.claims.*`` headers) needs a gateway."""
    shown = "[" + " ".join(spec.gateways) + "]"
    for index, route in enumerate(spec.http):
        for number, match in enumerate(route.match):
            for field, names in (
                ("headers", match.headers),
                ("withoutHeaders", match.without_headers),
            ):
                for name in names:
                    if is_jwt_claim(name):
                        report.error(
                            (*path, "http", index, "match", number, field, name),
                            f"JWT claim based routing (key: {name}) is only supported for "
                            f"gateway, found no gateways: {shown}",
                        )


def _validate_hosts(spec: VirtualService, to_gateways: bool, report: Report, path: Path) -> None:
    """Hosts are DNS names with an optional wildcard label; no ``*`` for mesh; no overlaps."""
    sni = any(match.sni_hosts for tls in spec.tls for match in tls.match)
    all_valid = True
    for index, host in enumerate(spec.hosts):
        where = (*path, "hosts", index)
        problem = (
            _gateway_host_problem(host, sni=sni) if to_gateways else validate_wildcard_domain(host)
        )
        if problem and not is_valid_ip(host):
            report.error(where, problem)
            all_valid = False
        elif not to_gateways and host == "*":
            report.error(
                where,
                "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            )
            all_valid = False
    if not all_valid:
        return
    for i, first in enumerate(spec.hosts):
        for second in spec.hosts[i + 1 :]:
            if matches(first, second):
                report.error(
                    (*path, "hosts"), f"duplicate hosts in virtual service: {first} & {second}"
                )


def _gateway_host_problem(host: str, *, sni: bool) -> str | None:
    """``ValidateWildcardDomainForVirtualServiceBoundToGateway``: Istio's SNI form allowed."""
    if not (sni and host.startswith("outbound_")) or not host:
        return validate_wildcard_domain(host)
    parts = host.split("_")
    if len(parts) < 4:
        return f"domain name {host} invalid, should follow 'outbound_.<PORT>_._.<HOSTNAME>' format"
    port, hostname = parts[1].strip("."), parts[3].strip(".")
    for label, pattern in ((port, str.isdigit), (hostname, str.isalpha)):
        if not any(pattern(char) and char.isascii() for char in label):
            return (
                f"domain name {go_quote(host)} invalid (label {go_quote(label)} invalid). "
                "should follow outbound_.<PORT>_._.<HOSTNAME> format"
            )
    return None


def _validate_tls_route(route: TLSRoute, spec: VirtualService, report: Report, path: Path) -> None:
    """``validateTLSRoute``: SNI matches within the VirtualService's hosts, and a route."""
    if not route.match:
        report.error((*path, "match"), "TLS route must have at least one match condition")
    for index, match in enumerate(route.match):
        _validate_tls_match(match, spec, report, (*path, "match", index))
    if not route.route:
        report.error((*path, "route"), "TLS route is required")
    validate_route_destinations(route.route, report, (*path, "route"))


def _validate_tls_match(
    match: TLSMatchAttributes, spec: VirtualService, report: Report, path: Path
) -> None:
    if path in report.nulls:
        report.error(path, "TLS match may not be null")
        return
    if not match.sni_hosts:
        report.error((*path, "sniHosts"), "TLS match must have at least one SNI host")
    # Istio treats a VirtualService without "mesh" among its gateways (none at all
    # included) as gateway-bound here.
    gateway_bound = MESH not in spec.gateways
    for index, sni in enumerate(match.sni_hosts):
        where = (*path, "sniHosts", index)
        problem = (
            _gateway_host_problem(sni, sni=True)
            if gateway_bound
            else validate_wildcard_domain(sni)
        )
        if problem:
            if is_valid_ip(sni):
                report.warn(
                    where,
                    f"using an IP address ({go_quote(sni)}) goes against SNI spec and most "
                    "clients do not support this",
                )
            else:
                report.error(where, problem)
        elif not any(subset_of(sni, host) for host in spec.hosts):
            report.error(
                where,
                f"SNI host {go_quote(sni)} is not a compatible subset of any of the virtual "
                f"service hosts: [{', '.join(spec.hosts)}]",
            )
    _validate_l4_match_common(match.destination_subnets, match.port, report, path)
    validate_labels(match.source_labels, report, (*path, "sourceLabels"))
    validate_gateway_names(match.gateways, report, (*path, "gateways"))


def _validate_l4_match_common(
    subnets: tuple[str, ...], port: int, report: Report, path: Path
) -> None:
    for index, subnet in enumerate(subnets):
        validate_ip_subnet(subnet, report, (*path, "destinationSubnets", index))
    if port:
        validate_port(port, report, (*path, "port"))


def _validate_tcp_route(route: TCPRoute, report: Report, path: Path) -> None:
    """``validateTCPRoute``: matches are optional, a route is required."""
    for index, match in enumerate(route.match):
        where = (*path, "match", index)
        if where in report.nulls:
            report.error(where, "tcp match may not be nil")
            continue
        _validate_l4_match_common(match.destination_subnets, match.port, report, where)
        validate_labels(match.source_labels, report, (*where, "sourceLabels"))
        validate_gateway_names(match.gateways, report, (*where, "gateways"), warn_legacy=False)
    if not route.route:
        report.error((*path, "route"), "TCP route is required")
    validate_route_destinations(route.route, report, (*path, "route"))
