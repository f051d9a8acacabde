"""Istio's validation of WorkloadEntry (``pkg/config/validation`` and the CRD schema)."""

from __future__ import annotations

from meshlib.config._context import ResourceContext
from meshlib.config._problems import Path, Report
from meshlib.config._service_entry import WorkloadEntry

__all__ = ["validate_workload_entry"]


def validate_workload_entry(
    spec: WorkloadEntry, context: ResourceContext, report: Report, path: Path
) -> None:
    """Report every rule of Istio's WorkloadEntry validation that ``spec`` breaks."""
