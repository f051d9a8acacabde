"""Route destinations, weights and gateway names of a VirtualService (``validation.go``)."""

from __future__ import annotations

from collections.abc import Sequence

from meshlib.config._problems import Path, Report
from meshlib.config._rules._common import (
    go_quote,
    is_dns1123_label,
    validate_fqdn,
    validate_port,
    validate_wildcard_domain,
)
from meshlib.config._rules._headers import validate_header_operations
from meshlib.config._virtual_service import Destination, HTTPRouteDestination, RouteDestination

__all__ = ["validate_destination", "validate_gateway_names", "validate_route_destinations"]


def validate_destination(destination: Destination | None, report: Report, path: Path) -> None:
    """``validateDestination``: host (``*`` alone is not a host), subset name, port."""
    if destination is None:
        return
    if destination.host == "*":
        report.error((*path, "host"), f"invalid destination host {destination.host}")
    else:
        problem = validate_wildcard_domain(destination.host)
        if problem:
            report.error((*path, "host"), problem)
    if destination.subset and not is_dns1123_label(destination.subset):
        report.error((*path, "subset"), f"subset name is invalid: {destination.subset}")
    if destination.port is not None:
        validate_port(destination.port.number, report, (*path, "port", "number"))


def validate_route_destinations(
    routes: Sequence[HTTPRouteDestination | RouteDestination], report: Report, path: Path
) -> None:
    """``validateHTTPRouteDestinations``: relative weights, not all zero when several."""
    total = 0
    for index, route in enumerate(routes):
        where = (*path, index)
        if where in report.nulls:
            report.error(where, "weight may not be nil")
            continue
        if route.destination is None:
            report.error((*where, "destination"), "destination is required")
        if isinstance(route, HTTPRouteDestination):
            validate_header_operations(route.headers, report, (*where, "headers"))
        validate_destination(route.destination, report, (*where, "destination"))
        if route.weight < 0:
            report.error((*where, "weight"), f"weight {route.weight} < 0")
        total += route.weight
    if len(routes) > 1 and total == 0:
        report.error(path, "total destination weight = 0")


def validate_gateway_names(
    names: Sequence[str], report: Report, path: Path, *, warn_legacy: bool = True
) -> None:
    """``validateGatewayNames``: ``namespace/name``, or a (legacy) FQDN.

    Istio stops at the first name without a ``/`` (names after it go unchecked); meshlib
    does the same so that it judges such lists as Istio does.
    """
    for index, name in enumerate(names):
        where = (*path, index)
        namespace, slash, gateway = name.partition("/")
        if not slash:
            if "." in name and warn_legacy:
                labels = name.split(".")
                report.warn(
                    where,
                    f"using legacy gatewayName format {go_quote(name)}; prefer the "
                    f"<namespace>/<name> format: {go_quote(labels[1] + '/' + labels[0])}",
                )
            problem = validate_fqdn(name)
            if problem:
                report.error(where, problem)
            return
        if not namespace or not gateway:
            report.error(where, "config namespace and gateway name cannot be empty")
        if not is_dns1123_label(namespace):
            report.error(where, f"invalid value for namespace: {go_quote(namespace)}")
        if not is_dns1123_label(gateway):
            report.error(where, f"invalid value for gateway name: {go_quote(gateway)}")
