"""Warnings for VirtualService rules that can never match (``analyzeUnreachable*Rules``).

These are warnings, not errors: the configuration is valid, but a rule after a
catch-all, or a match already made by an earlier rule, will never be used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshlib.config._problems import Path, Report
from meshlib.config._rules._common import go_quote
from meshlib.config._virtual_service import (
    HTTPMatchRequest,
    HTTPRoute,
    StringMatch,
    VirtualService,
)

__all__ = ["warn_unreachable_rules"]


def warn_unreachable_rules(spec: VirtualService, report: Report, path: Path) -> None:
    """Warn about unreachable HTTP, TCP and TLS rules."""
    _http_rules(spec.http, report, (*path, "http"))
    for field, routes in (("tcp", spec.tcp), ("tls", spec.tls)):
        _l4_rules([tuple(r.match) for r in routes], report, (*path, field))


def _items(mapping: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(mapping.items())) if mapping else ()


def _match_key(match: HTTPMatchRequest) -> tuple[Any, ...]:
    """A hashable form of a match ignoring its name: Istio compares matches as JSON."""
    return (
        match.uri,
        match.scheme,
        match.method,
        match.authority,
        _items(match.headers),
        match.port,
        _items(match.source_labels),
        match.gateways,
        _items(match.query_params),
        match.ignore_uri_case,
        _items(match.without_headers),
        match.source_namespace,
        match.stat_prefix,
    )


def _l4_key(match: Any) -> tuple[Any, ...]:
    """The same for TCP and TLS matches (hashable apart from their label maps)."""
    values = (getattr(match, field.name) for field in dataclasses.fields(match))
    return tuple(_items(value) if isinstance(value, Mapping) else value for value in values)


def _unused(report: Report, path: Path, rule: str, reason: str) -> None:
    report.warn(path, f"virtualService rule {rule} not used ({reason})")


def _ineffective(report: Report, path: Path, rule: str, match: str, other: str) -> None:
    report.warn(
        path,
        f"virtualService rule {rule} match {match} is not used "
        f"(duplicate/overlapping match in rule {other})",
    )


def _label(name: str, index: int) -> str:
    return go_quote(name) if name else f"#{index}"


@dataclass(frozen=True, slots=True)
class _PrefixMatch:
    """A match on a URI prefix, reduced to what the overlap check compares."""

    rule: str
    match: str
    prefix: str
    port: int
    method: str
    authority: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    without: Mapping[str, str]


def _exact_or_prefix(match: StringMatch | None) -> str:
    if match is None:
        return ""
    if match.exact:
        return "exact:" + match.exact
    return "prefix:" + match.prefix if match.prefix else ""


def _prefix_match(
    route: HTTPRoute, match: HTTPMatchRequest, rule: int, number: int
) -> _PrefixMatch | None:
    if match.uri is None or not match.uri.prefix:
        return None
    return _PrefixMatch(
        rule=_label(route.name, rule),
        match=_label(match.name, number),
        prefix=match.uri.prefix,
        port=match.port,
        method=_exact_or_prefix(match.method) or "exact:GET",
        authority=_exact_or_prefix(match.authority),
        headers={k: _exact_or_prefix(v) for k, v in match.headers.items()},
        query={k: _exact_or_prefix(v) for k, v in match.query_params.items()},
        without={k: _exact_or_prefix(v) for k, v in match.without_headers.items()},
    )


def _same_or_prefix(earlier: str, later: str) -> bool:
    return earlier == later or earlier.startswith(later)


def _maps_covered(earlier: Mapping[str, str], later: Mapping[str, str]) -> bool:
    return len(earlier) == len(later) and all(
        key in later and _same_or_prefix(value, later[key]) for key, value in earlier.items()
    )


def _covered(a: _PrefixMatch, b: _PrefixMatch) -> bool:
    """``coveredValidation``: does the earlier match ``a`` take every request ``b`` would?"""
    return (
        b.prefix.startswith(a.prefix)
        and a.port == b.port
        and _same_or_prefix(a.method, b.method)
        and _same_or_prefix(a.authority, b.authority)
        and _maps_covered(a.headers, b.headers)
        and _maps_covered(a.query, b.query)
        and _maps_covered(a.without, b.without)
    )


def _http_rules(routes: Sequence[HTTPRoute], report: Report, path: Path) -> None:
    seen: dict[Any, int] = {}
    catch_all = -1
    prefixes: list[tuple[Path, _PrefixMatch]] = []
    for rule, route in enumerate(routes):
        where = (*path, rule)
        if where in report.nulls:
            continue
        name = _label(route.name, rule)
        if not route.match:
            if catch_all >= 0:
                _unused(report, where, name, "only the last rule can have no matches")
            catch_all = rule
            continue
        duplicates = 0
        for number, match in enumerate(route.match):
            if catch_all >= 0:
                _unused(report, where, name, "route without matches defined before")
                continue
            key = _match_key(match)
            if key in seen:
                first = seen[key]
                other = _label(routes[first].name, first)
                _ineffective(
                    report, (*where, "match", number), name, _label(match.name, number), other
                )
                duplicates += 1
                continue
            seen[key] = rule
            prefix = _prefix_match(route, match, rule, number)
            if prefix is not None:
                prefixes.append(((*where, "match", number), prefix))
        if duplicates == len(route.match):
            _unused(report, where, name, "all matches used by prior rules")
    _overlaps(prefixes, report)


def _overlaps(prefixes: list[tuple[Path, _PrefixMatch]], report: Report) -> None:
    for index, (_, a) in enumerate(prefixes):
        for where, b in prefixes[index + 1 :]:
            if b.prefix != a.prefix and _covered(a, b):
                _ineffective(
                    report,
                    where,
                    b.rule,
                    f"{b.match} of prefix {b.prefix}",
                    f"{a.match} of prefix {a.prefix} on {a.rule}",
                )


def _l4_rules(rules: Sequence[tuple[Any, ...]], report: Report, path: Path) -> None:
    seen: dict[Any, int] = {}
    catch_all = -1
    for rule, matches in enumerate(rules):
        where = (*path, rule)
        if where in report.nulls:
            continue
        if not matches:
            if catch_all >= 0:
                _unused(report, where, f"#{rule}", "only the last rule can have no matches")
            catch_all = rule
            continue
        duplicates = 0
        for number, match in enumerate(matches):
            if catch_all >= 0:
                _unused(report, where, f"#{rule}", "route without matches defined before")
                continue
            key = _l4_key(match)
            if key in seen:
                _ineffective(
                    report, (*where, "match", number), f"#{rule}", f"#{number}", f"#{seen[key]}"
                )
                duplicates += 1
                continue
            seen[key] = rule
        if duplicates == len(matches):
            _unused(report, where, f"#{rule}", "all matches used by prior rules")
