"""Compile validated resources into a routing table (see :mod:`._table`)."""

from meshlib._compile._build import compile_table
from meshlib._compile._table import (
    CompiledRoute,
    DestinationPolicy,
    OutboundPolicy,
    RouteTarget,
    RoutingTable,
    Service,
    VirtualHost,
    WeightedTargets,
    Workload,
)

__all__ = [
    "CompiledRoute",
    "DestinationPolicy",
    "OutboundPolicy",
    "RouteTarget",
    "RoutingTable",
    "Service",
    "VirtualHost",
    "WeightedTargets",
    "Workload",
    "compile_table",
]
