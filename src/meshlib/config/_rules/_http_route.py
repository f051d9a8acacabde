"""One ``http`` rule of a VirtualService (``virtualservice.go`` ``validateHTTPRoute``)."""

from __future__ import annotations

import enum

from meshlib.config._problems import Path, Report
from meshlib.config._rules._common import (
    go_quote,
    is_dns1123_label,
    validate_duration,
    validate_labels,
    validate_port,
    validate_regex,
)
from meshlib.config._rules._destinations import (
    validate_destination,
    validate_gateway_names,
    validate_route_destinations,
)
from meshlib.config._rules._headers import (
    is_authority_header,
    validate_cors_header_name,
    validate_header_operations,
    validate_match_header_name,
)
from meshlib.config._rules._route_actions import (
    validate_direct_response,
    validate_fault,
    validate_redirect,
    validate_retries,
    validate_rewrite,
)
from meshlib.config._virtual_service import (
    CorsPolicy,
    HTTPMatchRequest,
    HTTPRoute,
    StringMatch,
)

__all__ = ["RouteKind", "validate_http_route", "validate_string_match"]

_CORS_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*"}
)
_SECOND = 1_000_000_000


class RouteKind(enum.Enum):
    """``getHTTPRouteType``: where a rule sits in a delegation chain."""

    INDEPENDENT = "independent"
    ROOT = "root"  # the rule hands over to a delegate VirtualService
    DELEGATE = "delegate"  # the rule belongs to a delegate VirtualService (no hosts)


def validate_http_route(route: HTTPRoute, kind: RouteKind, report: Report, path: Path) -> None:
    """Every check Istio runs on one HTTP rule, all problems reported."""
    _validate_conflicts(route, kind, report, path)
    _validate_matches(route, report, path)
    validate_header_operations(route.headers, report, (*path, "headers"))
    _validate_cors(route.cors_policy, report, (*path, "corsPolicy"))
    validate_fault(route.fault, report, (*path, "fault"))
    _validate_mirror_percentages(route, report, path)
    validate_destination(route.mirror, report, (*path, "mirror"))
    _validate_mirrors(route, report, path)
    validate_redirect(route, report, path)
    validate_direct_response(route.direct_response, report, (*path, "directResponse"))
    validate_retries(route.retries, report, (*path, "retries"))
    validate_rewrite(route.rewrite, report, (*path, "rewrite"))
    _validate_authority_rewrite(route, report, path)
    validate_route_destinations(route.route, report, (*path, "route"))
    validate_duration(route.timeout, report, (*path, "timeout"))


def _validate_conflicts(route: HTTPRoute, kind: RouteKind, report: Report, path: Path) -> None:
    """``validateHTTPRouteConflict``: exactly one action among route, redirect, directResponse."""
    if kind is RouteKind.ROOT:
        if route.redirect is not None:
            report.error(path, f"root HTTP route {route.name} must not specify redirect")
        if route.route:
            report.error(path, f"root HTTP route {route.name} must not specify route")
        return
    if kind is RouteKind.DELEGATE and route.delegate is not None:
        report.error(path, "delegate HTTP route cannot contain delegate")
    if route.redirect is not None:
        _exclusive(route, "redirect", report, path)
    elif route.direct_response is not None:
        _exclusive(route, "direct_response", report, path)
    elif not route.route:
        report.error(path, "HTTP route, redirect or direct_response is required")
    if route.mirror is not None and route.mirrors:
        report.error(path, "HTTP route cannot contain both mirror and mirrors")


def _exclusive(route: HTTPRoute, action: str, report: Report, path: Path) -> None:
    if route.route:
        report.error(path, f"HTTP route cannot contain both route and {action}")
    if route.fault is not None:
        report.error(path, f"HTTP route cannot contain both fault and {action}")
    if route.rewrite is not None:
        report.error(path, f"HTTP route rule cannot contain both rewrite and {action}")
    if action == "redirect" and route.direct_response is not None:
        report.error(path, "HTTP route rule cannot contain both direct_response and redirect")


def validate_string_match(
    match: StringMatch | None,
    where: str,
    report: Report,
    path: Path,
    *,
    empty_prefix: bool = False,
) -> None:
    """``validateStringMatch``: no empty prefix (except for ``uri``), valid non-empty RE2."""
    if match is None or match.exact is not None:
        return
    if match.prefix is not None:
        if not match.prefix and not empty_prefix:
            report.error(path, f"{go_quote(where)}: prefix string match should not be empty")
    elif match.regex is not None:
        if not match.regex:
            report.error(path, f"{go_quote(where)}: regex string match should not be empty")
        else:
            validate_regex(match.regex, where, report, path)


def _validate_matches(route: HTTPRoute, report: Report, path: Path) -> None:
    """``validateHTTPRouteMatchRequest``: string matches first, then workload selectors."""
    for index, match in enumerate(route.match):
        _validate_match_values(match, report, (*path, "match", index))
    for index, match in enumerate(route.match):
        where = (*path, "match", index)
        if match.port:
            validate_port(match.port, report, (*where, "port"))
        validate_labels(match.source_labels, report, (*where, "sourceLabels"))
        validate_gateway_names(match.gateways, report, (*where, "gateways"), warn_legacy=False)
        if match.source_namespace and not is_dns1123_label(match.source_namespace):
            report.error(
                (*where, "sourceNamespace"),
                f"sourceNamespace match {match.source_namespace} is invalid",
            )


def _validate_match_values(match: HTTPMatchRequest, report: Report, path: Path) -> None:
    for name, header in match.headers.items():
        where = (*path, "headers", name)
        if where in report.nulls:
            report.error(where, f"header match {name} cannot be null")
        validate_match_header_name(name, report, where)
        validate_string_match(header, "headers", report, where)
    for name, header in match.without_headers.items():
        where = (*path, "withoutHeaders", name)
        validate_match_header_name(name, report, where)
        if header.regex != "*":
            validate_string_match(header, "withoutHeaders", report, where)
    validate_string_match(match.uri, "uri", report, (*path, "uri"), empty_prefix=True)
    for field in ("scheme", "method", "authority"):
        value: StringMatch | None = getattr(match, field)
        validate_string_match(value, field, report, (*path, field))
    for name, value in match.query_params.items():
        validate_string_match(value, "queryParams", report, (*path, "queryParams", name))


def _validate_cors(policy: CorsPolicy | None, report: Report, path: Path) -> None:
    """``validateCORSPolicy``."""
    if policy is None:
        return
    for index, origin in enumerate(policy.allow_origins):
        where = (*path, "allowOrigins", index)
        if origin.exact is None and origin.prefix is None and origin.regex is None:
            report.error(where, "'' is not a valid match type for CORS allow origins")
        elif origin.regex is not None:
            validate_string_match(origin, "corsPolicy.allowOrigins", report, where)
    for index, method in enumerate(policy.allow_methods):
        if method not in _CORS_METHODS:
            where = (*path, "allowMethods", index)
            report.error(where, f"{go_quote(method)} is not a supported HTTP method")
    for field in ("allowHeaders", "exposeHeaders"):
        names = policy.allow_headers if field == "allowHeaders" else policy.expose_headers
        for index, name in enumerate(names):
            validate_cors_header_name(name, report, (*path, field, index))
    if policy.max_age is not None:
        validate_duration(policy.max_age, report, (*path, "maxAge"))
        if policy.max_age.nanos % _SECOND:
            report.error(
                (*path, "maxAge"), "max_age duration is accurate only to seconds precision"
            )


def _validate_mirror_percentages(route: HTTPRoute, report: Report, path: Path) -> None:
    if route.mirror_percent is not None:
        where = (*path, "mirrorPercent")
        if route.mirror_percent > 100:
            report.error(
                where,
                f"mirror_percent must have a max value of 100 (it has {route.mirror_percent})",
            )
        report.warn(
            where, 'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead'
        )
    if route.mirror_percentage is not None:
        _mirror_range(
            "mirror_percentage", route.mirror_percentage.value, report, path, "mirrorPercentage"
        )


def _mirror_range(label: str, value: float, report: Report, path: Path, field: str) -> None:
    if value > 100:
        report.error((*path, field), f"{label} must have a max value of 100 (it has {value:f})")
    elif value < 0:
        report.error((*path, field), f"{label} must have a min value of 0 (it has {value:f})")


def _validate_mirrors(route: HTTPRoute, report: Report, path: Path) -> None:
    """``validateHTTPMirrors``."""
    for index, mirror in enumerate(route.mirrors):
        where = (*path, "mirrors", index)
        if where in report.nulls:
            report.error(where, "mirror cannot be null")
            continue
        if mirror.destination is None:
            report.error((*where, "destination"), "destination is required for mirrors")
            continue
        validate_destination(mirror.destination, report, (*where, "destination"))
        if mirror.percentage is not None:
            _mirror_range(
                "mirror percentage", mirror.percentage.value, report, where, "percentage"
            )


def _validate_authority_rewrite(route: HTTPRoute, report: Report, path: Path) -> None:
    """``validateAuthorityRewrite``: the authority may be rewritten in one place only."""
    current = route.rewrite.authority if route.rewrite else ""
    request = route.headers.request if route.headers else None
    if request is None:
        return
    for operation, values in (("set", request.set), ("add", request.add)):
        for name, value in values.items():
            if not is_authority_header(name):
                continue
            if current:
                report.error(
                    (*path, "headers", "request", operation, name),
                    "authority header cannot be set multiple times: have "
                    f"{go_quote(current)}, attempting to set {go_quote(value)}",
                )
                return
            current = value
