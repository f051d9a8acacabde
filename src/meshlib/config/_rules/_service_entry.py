"""Istio's validation of ServiceEntry (``pkg/config/validation`` and the CRD schema)."""

from __future__ import annotations

from meshlib.config._context import ResourceContext
from meshlib.config._problems import Path, Report
from meshlib.config._service_entry import ServiceEntry

__all__ = ["validate_service_entry"]


def validate_service_entry(
    spec: ServiceEntry, context: ResourceContext, report: Report, path: Path
) -> None:
    """Report every rule of Istio's ServiceEntry validation that ``spec`` breaks."""
