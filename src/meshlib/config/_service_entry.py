"""ServiceEntry and WorkloadEntry: the service registry meshlib reads from YAML.

Istio's ``networking/v1alpha3/service_entry.proto`` and ``workload_entry.proto``. A
WorkloadEntry is also the element type of ``ServiceEntry.endpoints``. See ``istio-api.md`` §3.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshlib.config._schema import UInt32
from meshlib.config._selectors import LabelSelector

__all__ = ["Location", "Resolution", "ServiceEntry", "ServicePort", "WorkloadEntry"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadEntry:
    """``WorkloadEntry``: one endpoint with its labels, ports, locality and identity."""

    address: str = ""
    ports: Mapping[str, UInt32] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    network: str = ""
    locality: str = ""
    weight: UInt32 = 0
    service_account: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServicePort:
    """``ServicePort``: a port of the service and its protocol."""

    number: UInt32 = 0
    protocol: str = ""
    name: str = ""
    target_port: UInt32 = 0


class Location(enum.Enum):
    """``ServiceEntry.Location``. A ServiceEntry is MESH_EXTERNAL unless it says otherwise."""

    MESH_EXTERNAL = 0
    MESH_INTERNAL = 1


class Resolution(enum.Enum):
    """``ServiceEntry.Resolution``: how endpoint addresses are found."""

    NONE = 0
    STATIC = 1
    DNS = 2
    DNS_ROUND_ROBIN = 3
    DYNAMIC_DNS = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceEntry:
    """``ServiceEntry``: adds hosts, ports and endpoints to the registry."""

    hosts: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    ports: tuple[ServicePort, ...] = ()
    location: Location = Location.MESH_EXTERNAL
    resolution: Resolution = Resolution.NONE
    endpoints: tuple[WorkloadEntry, ...] = ()
    workload_selector: LabelSelector | None = None
    export_to: tuple[str, ...] = ()
    subject_alt_names: tuple[str, ...] = ()
