"""The Istio kinds meshlib reads, their API versions, and how each is validated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshlib.config._destination_rule import DestinationRule
from meshlib.config._gateway import Gateway
from meshlib.config._problems import Path, Report
from meshlib.config._security import AuthorizationPolicy, PeerAuthentication
from meshlib.config._service_entry import ServiceEntry, WorkloadEntry
from meshlib.config._sidecar import Sidecar
from meshlib.config._virtual_service import VirtualService

__all__ = ["KINDS", "KindInfo", "ResourceContext", "Validator", "kind_of"]

NETWORKING = "networking.istio.io"
SECURITY = "security.istio.io"
# istio-api.md §0.2: one schema is served under every version of a group.
VERSIONS = {NETWORKING: ("v1", "v1beta1", "v1alpha3"), SECURITY: ("v1", "v1beta1")}


@dataclass(frozen=True, slots=True)
class ResourceContext:
    """What a validator may need to know about the resource besides its spec."""

    kind: str
    name: str
    namespace: str


#: ``validate(spec, context, report, path)``: report every rule the spec breaks.
Validator = Callable[[Any, ResourceContext, Report, Path], None]


@dataclass(frozen=True, slots=True)
class KindInfo:
    """A kind meshlib models: its group, spec class and validator."""

    group: str
    kind: str
    spec_type: type[Any]
    validate: Validator


def _no_rules(spec: object, context: ResourceContext, report: Report, path: Path) -> None:
    """Placeholder for kinds whose Istio rules are not wired yet."""


def _info(group: str, spec_type: type[Any], validate: Validator = _no_rules) -> KindInfo:
    return KindInfo(group, spec_type.__name__, spec_type, validate)


KINDS: dict[str, KindInfo] = {
    info.kind: info
    for info in (
        _info(NETWORKING, VirtualService),
        _info(NETWORKING, DestinationRule),
        _info(NETWORKING, ServiceEntry),
        _info(NETWORKING, WorkloadEntry),
        _info(NETWORKING, Gateway),
        _info(NETWORKING, Sidecar),
        _info(SECURITY, PeerAuthentication),
        _info(SECURITY, AuthorizationPolicy),
    )
}


def kind_of(api_version: str, kind: str) -> KindInfo | None:
    """The modelled kind for ``apiVersion``/``kind``, or None when meshlib skips it."""
    info = KINDS.get(kind)
    group, _, _ = api_version.partition("/")
    if info is None or group != info.group:
        return None
    return info


def supported_versions(group: str) -> tuple[str, ...]:
    """The API versions Istio serves for ``group``."""
    return VERSIONS.get(group, ())
