"""Sidecar: Istio's ``networking/v1alpha3/sidecar.proto`` as frozen data.

For meshlib the relevant parts are scoping (which hosts a workload imports) and
``outboundTrafficPolicy`` (ALLOW_ANY or REGISTRY_ONLY). See ``istio-api.md`` §3.3.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from meshlib.config._destination_rule import ConnectionPoolSettings
from meshlib.config._gateway import ServerTLSSettings
from meshlib.config._schema import UInt32
from meshlib.config._selectors import LabelSelector
from meshlib.config._virtual_service import Destination

__all__ = [
    "CaptureMode",
    "IstioEgressListener",
    "IstioIngressListener",
    "OutboundTrafficPolicy",
    "OutboundTrafficPolicyMode",
    "Sidecar",
    "SidecarPort",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SidecarPort:
    """``SidecarPort``."""

    number: UInt32 = 0
    protocol: str = ""
    name: str = ""
    target_port: UInt32 = 0


class CaptureMode(enum.Enum):
    """``CaptureMode``."""

    DEFAULT = 0
    IPTABLES = 1
    NONE = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class IstioIngressListener:
    """``IstioIngressListener``."""

    port: SidecarPort | None = None
    bind: str = ""
    capture_mode: CaptureMode = CaptureMode.DEFAULT
    default_endpoint: str = ""
    tls: ServerTLSSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IstioEgressListener:
    """``IstioEgressListener``: the hosts a workload imports, as ``namespace/host``."""

    port: SidecarPort | None = None
    bind: str = ""
    capture_mode: CaptureMode = CaptureMode.DEFAULT
    hosts: tuple[str, ...] = ()


class OutboundTrafficPolicyMode(enum.Enum):
    """``OutboundTrafficPolicy.Mode``: the proto default is REGISTRY_ONLY, the mesh's ALLOW_ANY."""

    REGISTRY_ONLY = 0
    ALLOW_ANY = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundTrafficPolicy:
    """``OutboundTrafficPolicy``: what happens to hosts the registry does not know."""

    mode: OutboundTrafficPolicyMode = OutboundTrafficPolicyMode.REGISTRY_ONLY
    egress_proxy: Destination | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sidecar:
    """``Sidecar``: the scope and outbound policy of the workloads it selects."""

    workload_selector: LabelSelector | None = None
    ingress: tuple[IstioIngressListener, ...] = ()
    egress: tuple[IstioEgressListener, ...] = ()
    inbound_connection_pool: ConnectionPoolSettings | None = None
    outbound_traffic_policy: OutboundTrafficPolicy | None = None
