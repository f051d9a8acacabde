"""VirtualService delegation: merge a root rule with its delegate's rules.

Follows ``pilot/pkg/config/kube/.../virtualservice_controller.go`` (``mergeHTTPRoutes``,
``mergeHTTPRoute``, ``mergeHTTPMatchRequests``, ``hasConflict``; ``istio-api.md`` §1.5):

* a delegate is a VirtualService without hosts, in the namespace the root names (the
  root's own by default), exported to the root's namespace; one level only;
* each delegate rule's matches must each fit inside one of the root's matches; a rule with
  a conflicting match is dropped (Istio logs a warning);
* a delegate rule inherits what it leaves unset from the root rule (rewrite, direct
  response, timeout, retries, fault, mirrors, CORS, headers); names join as
  ``root-delegate``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from meshlib._compile._precedence import exported_to
from meshlib.config import HTTPMatchRequest, HTTPRoute, Resource, StringMatch

__all__ = ["expand_delegates"]

logger = logging.getLogger("meshlib.routing")

_INHERITED = (
    "rewrite",
    "direct_response",
    "timeout",
    "retries",
    "fault",
    "mirror",
    "mirror_percent",
    "mirror_percentage",
    "cors_policy",
    "headers",
)


def expand_delegates(
    root: Resource[Any], delegates: Mapping[tuple[str, str], Resource[Any]]
) -> tuple[HTTPRoute, ...]:
    """The root's ``http`` rules with every ``delegate`` rule replaced by the merged rules."""
    rules: list[HTTPRoute] = []
    for rule in root.spec.http:
        if rule.delegate is None:
            rules.append(rule)
            continue
        namespace = rule.delegate.namespace or root.namespace
        delegate = delegates.get((namespace, rule.delegate.name))
        if delegate is None or not exported_to(delegate, root.namespace):
            logger.warning(
                "delegate VirtualService %s/%s of %s is missing or not exported to %s",
                namespace,
                rule.delegate.name,
                root,
                root.namespace,
            )
            continue
        merged = (_merge_rule(rule, sub) for sub in delegate.spec.http)
        rules.extend(m for m in merged if m is not None)
    return tuple(rules)


def _merge_rule(root: HTTPRoute, delegate: HTTPRoute) -> HTTPRoute | None:
    matches = _merge_matches(root.match, delegate.match)
    if matches is None:
        logger.warning("delegate rule %r conflicts with root rule %r", delegate.name, root.name)
        return None
    changes: dict[str, Any] = {"match": matches, "name": _join(root.name, delegate.name)}
    for field in _INHERITED:
        if getattr(delegate, field) is None:
            changes[field] = getattr(root, field)
    if not delegate.mirrors:
        changes["mirrors"] = root.mirrors
    return dataclasses.replace(delegate, **changes)


def _join(root: str, delegate: str) -> str:
    if not delegate:
        return root
    return f"{root}-{delegate}" if root else delegate


def _merge_matches(
    root: Sequence[HTTPMatchRequest], delegate: Sequence[HTTPMatchRequest]
) -> tuple[HTTPMatchRequest, ...] | None:
    """Every delegate match merged with each root match it fits in; None on conflict."""
    if not root:
        return tuple(delegate)
    if not delegate:
        return tuple(root)
    merged: list[HTTPMatchRequest] = []
    for sub in delegate:
        fitting = [_merge_match(parent, sub) for parent in root if not _conflicts(parent, sub)]
        if not fitting:
            return None
        merged.extend(fitting)
    return tuple(merged)


def _merge_match(root: HTTPMatchRequest, leaf: HTTPMatchRequest) -> HTTPMatchRequest:
    return dataclasses.replace(
        leaf,
        name=_join(root.name, leaf.name),
        uri=leaf.uri or root.uri,
        scheme=leaf.scheme or root.scheme,
        method=leaf.method or root.method,
        authority=leaf.authority or root.authority,
        headers={**root.headers, **leaf.headers},
        without_headers={**root.without_headers, **leaf.without_headers},
        query_params={**root.query_params, **leaf.query_params},
        port=leaf.port or root.port,
        source_labels={**root.source_labels, **leaf.source_labels},
        source_namespace=leaf.source_namespace or root.source_namespace,
        gateways=leaf.gateways or root.gateways,
        stat_prefix=leaf.stat_prefix or root.stat_prefix,
    )


def _conflicts(root: HTTPMatchRequest, leaf: HTTPMatchRequest) -> bool:
    """``hasConflict``: can the delegate match ``leaf`` not be inside the root's ``root``?"""
    pairs = (
        (root.uri, leaf.uri),
        (root.scheme, leaf.scheme),
        (root.method, leaf.method),
        (root.authority, leaf.authority),
    )
    if any(_string_conflict(a, b) for a, b in pairs):
        return True
    for mine, theirs in (
        (root.headers, leaf.headers),
        (root.without_headers, leaf.without_headers),
        (root.query_params, leaf.query_params),
    ):
        if any(_string_conflict(mine.get(key), value) for key, value in theirs.items()):
            return True
    return (
        root.ignore_uri_case != leaf.ignore_uri_case
        or (bool(root.port and leaf.port) and root.port != leaf.port)
        or (bool(root.source_namespace) and leaf.source_namespace != root.source_namespace)
        or any(root.source_labels.get(k, v) != v for k, v in leaf.source_labels.items())
        or _gateways_conflict(root.gateways, leaf.gateways)
    )


def _gateways_conflict(root: Sequence[str], leaf: Sequence[str]) -> bool:
    if not root or not leaf:
        return False
    return len(root) < len(leaf) or not set(leaf) <= set(root)


def _string_conflict(root: StringMatch | None, leaf: StringMatch | None) -> bool:
    """``stringMatchConflict``: a regex on either side excludes a match on the other;
    exact matches must be equal; the leaf's prefix or exact must start with the root's
    prefix. Anything else (an empty root match, say) is a conflict."""
    if root is None or leaf is None:
        return False
    if root.regex and (leaf.regex or leaf.prefix or leaf.exact):
        return True
    if leaf.regex and (root.regex or root.prefix or root.exact):
        return True
    if root.exact:
        return bool(leaf.prefix) or leaf.exact != root.exact
    if root.prefix:
        if leaf.prefix:
            return not leaf.prefix.startswith(root.prefix)
        if leaf.exact:
            return not leaf.exact.startswith(root.prefix)
    return True
