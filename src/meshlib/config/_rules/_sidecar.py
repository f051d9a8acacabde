"""Istio's validation of Sidecar (``pkg/config/validation`` and the CRD schema)."""

from __future__ import annotations

from meshlib.config._context import ResourceContext
from meshlib.config._problems import Path, Report
from meshlib.config._sidecar import Sidecar

__all__ = ["validate_sidecar"]


def validate_sidecar(spec: Sidecar, context: ResourceContext, report: Report, path: Path) -> None:
    """Report every rule of Istio's Sidecar validation that ``spec`` breaks."""
