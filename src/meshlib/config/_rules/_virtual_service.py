"""Istio's validation of VirtualService (``pkg/config/validation`` and the CRD schema)."""

from __future__ import annotations

from meshlib.config._context import ResourceContext
from meshlib.config._problems import Path, Report
from meshlib.config._virtual_service import VirtualService

__all__ = ["validate_virtual_service"]


def validate_virtual_service(
    spec: VirtualService, context: ResourceContext, report: Report, path: Path
) -> None:
    """Report every rule of Istio's VirtualService validation that ``spec`` breaks."""
