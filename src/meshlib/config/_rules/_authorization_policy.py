"""Istio's validation of AuthorizationPolicy (``pkg/config/validation`` and the CRD schema)."""

from __future__ import annotations

from meshlib.config._context import ResourceContext
from meshlib.config._problems import Path, Report
from meshlib.config._security import AuthorizationPolicy

__all__ = ["validate_authorization_policy"]


def validate_authorization_policy(
    spec: AuthorizationPolicy, context: ResourceContext, report: Report, path: Path
) -> None:
    """Report every rule of Istio's AuthorizationPolicy validation that ``spec`` breaks."""
