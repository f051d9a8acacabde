"""Istio's validation of PeerAuthentication (``pkg/config/validation`` and the CRD schema)."""

from __future__ import annotations

from meshlib.config._context import ResourceContext
from meshlib.config._problems import Path, Report
from meshlib.config._security import PeerAuthentication

__all__ = ["validate_peer_authentication"]


def validate_peer_authentication(
    spec: PeerAuthentication, context: ResourceContext, report: Report, path: Path
) -> None:
    """Report every rule of Istio's PeerAuthentication validation that ``spec`` breaks."""
