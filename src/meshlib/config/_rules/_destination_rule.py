"""Istio's validation of DestinationRule (``pkg/config/validation`` and the CRD schema)."""

from __future__ import annotations

from meshlib.config._context import ResourceContext
from meshlib.config._destination_rule import DestinationRule
from meshlib.config._problems import Path, Report

__all__ = ["validate_destination_rule"]


def validate_destination_rule(
    spec: DestinationRule, context: ResourceContext, report: Report, path: Path
) -> None:
    """Report every rule of Istio's DestinationRule validation that ``spec`` breaks."""
