"""Istio's validation of Gateway (``pkg/config/validation`` and the CRD schema)."""

from __future__ import annotations

from meshlib.config._context import ResourceContext
from meshlib.config._gateway import Gateway
from meshlib.config._problems import Path, Report

__all__ = ["validate_gateway"]


def validate_gateway(spec: Gateway, context: ResourceContext, report: Report, path: Path) -> None:
    """Report every rule of Istio's Gateway validation that ``spec`` breaks."""
