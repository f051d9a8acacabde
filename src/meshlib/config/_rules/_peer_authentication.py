"""Istio's validation of PeerAuthentication (``pkg/config/validation`` and the CRD schema).

The webhook's ``ValidatePeerAuthentication`` and ``validateWorkloadSelector``, plus the
CRD's ``selector.matchLabels`` bounds and ``portLevelMtls`` rules. The selector check is
shared with AuthorizationPolicy, which imports it from here.
"""

from __future__ import annotations

import re

from meshlib.config._context import ResourceContext
from meshlib.config._problems import Path, Report
from meshlib.config._rules._common import go_quote
from meshlib.config._security import PeerAuthentication
from meshlib.config._selectors import WorkloadSelector

__all__ = ["validate_match_labels", "validate_peer_authentication"]

_MAX_MATCH_LABELS = 4096  # the CRD's maxProperties on matchLabels
_MAX_LABEL_VALUE = 63  # the CRD's maxLength on matchLabels values
_DIGITS = re.compile(r"[0-9]+\Z")


def validate_match_labels(selector: WorkloadSelector | None, report: Report, path: Path) -> None:
    """``validateWorkloadSelector`` plus the CRD's ``matchLabels`` bounds.

    Keys may not be empty, keys and values may not hold ``*``; an empty selector selects
    every workload of the namespace and is only worth a warning.
    """
    if selector is None:
        return
    labels_path = (*path, "matchLabels")
    labels = selector.match_labels
    if len(labels) > _MAX_MATCH_LABELS:
        report.error(labels_path, f"must have at most {_MAX_MATCH_LABELS} items")
    for key, value in labels.items():
        pair = go_quote(f"{key}={value}")
        if not key:
            report.error((*labels_path, key), f"empty key is not supported in selector: {pair}")
        if "*" in key or "*" in value:
            report.error((*labels_path, key), f"wildcard is not supported in selector: {pair}")
        if len(value) > _MAX_LABEL_VALUE:
            report.error(
                (*labels_path, key), f"may not be longer than {_MAX_LABEL_VALUE} characters"
            )
    if not labels:
        report.warn(path, "workload selector specified without labels")


def validate_peer_authentication(
    spec: PeerAuthentication,
    context: ResourceContext,  # noqa: ARG001 (the rules do not depend on the resource's name)
    report: Report,
    path: Path,
) -> None:
    """``ValidatePeerAuthentication`` and the CRD's ``portLevelMtls`` rules.

    Port-level modes need a selector with labels (webhook; the CRD's "portLevelMtls
    requires selector" when the map is written empty), the map may not be written empty
    (webhook; the CRD's minProperties), and every key is a port number 1..65535 (the
    webhook reads the keys as uint32; the CRD rule ``0 < int(key) <= 65535``).
    """
    levels_path = (*path, "portLevelMtls")
    written_empty = levels_path in report.empty
    no_selector = spec.selector is None or not spec.selector.match_labels
    if no_selector and spec.port_level_mtls:
        report.error(path, "mesh/namespace peer authentication cannot have port level mTLS")
    elif no_selector and written_empty:
        report.error(path, "portLevelMtls requires selector")
    if written_empty:
        report.error(levels_path, "port level mTLS, if defined, must have at least one element")
    for key in spec.port_level_mtls:
        if not _DIGITS.match(key):
            report.error((*levels_path, key), f"port {go_quote(key)} is not a port number")
        elif not 1 <= int(key) <= 65535:
            report.error((*levels_path, key), "port must be in range 1..65535")
    validate_match_labels(spec.selector, report, (*path, "selector"))
