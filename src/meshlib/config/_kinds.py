"""The Istio kinds meshlib reads, their API versions, and how each is validated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshlib.config._context import ResourceContext
from meshlib.config._destination_rule import DestinationRule
from meshlib.config._gateway import Gateway
from meshlib.config._problems import Path, Report
from meshlib.config._rules._authorization_policy import validate_authorization_policy
from meshlib.config._rules._destination_rule import validate_destination_rule
from meshlib.config._rules._gateway import validate_gateway
from meshlib.config._rules._peer_authentication import validate_peer_authentication
from meshlib.config._rules._service_entry import validate_service_entry
from meshlib.config._rules._sidecar import validate_sidecar
from meshlib.config._rules._virtual_service import validate_virtual_service
from meshlib.config._rules._workload_entry import validate_workload_entry
from meshlib.config._security import AuthorizationPolicy, PeerAuthentication
from meshlib.config._service_entry import ServiceEntry, WorkloadEntry
from meshlib.config._sidecar import Sidecar
from meshlib.config._virtual_service import VirtualService

__all__ = ["KINDS", "KindInfo", "ResourceContext", "Validator", "kind_of", "supported_versions"]

NETWORKING = "networking.istio.io"
SECURITY = "security.istio.io"
# istio-api.md §0.2: one schema is served under every version of a group.
VERSIONS = {NETWORKING: ("v1", "v1beta1", "v1alpha3"), SECURITY: ("v1", "v1beta1")}


#: ``validate(spec, context, report, path)``: report every rule the spec breaks.
Validator = Callable[[Any, ResourceContext, Report, Path], None]


@dataclass(frozen=True, slots=True)
class KindInfo:
    """A kind meshlib models: its group, spec class and validator."""

    group: str
    kind: str
    spec_type: type[Any]
    validate: Validator


def _info(group: str, spec_type: type[Any], validate: Validator) -> KindInfo:
    return KindInfo(group, spec_type.__name__, spec_type, validate)


KINDS: dict[str, KindInfo] = {
    info.kind: info
    for info in (
        _info(NETWORKING, VirtualService, validate_virtual_service),
        _info(NETWORKING, DestinationRule, validate_destination_rule),
        _info(NETWORKING, ServiceEntry, validate_service_entry),
        _info(NETWORKING, WorkloadEntry, validate_workload_entry),
        _info(NETWORKING, Gateway, validate_gateway),
        _info(NETWORKING, Sidecar, validate_sidecar),
        _info(SECURITY, PeerAuthentication, validate_peer_authentication),
        _info(SECURITY, AuthorizationPolicy, validate_authorization_policy),
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
