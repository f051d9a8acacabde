"""Clusters and hosts: the runtime state that outlives a configuration snapshot.

A cluster is Istio's ``outbound|<port>|<subset>|<host>``: one subset of one service on one
port. Its hosts are the endpoints the subset selects. Load-balancer counters, ejections
and connection-pool counts live here, outside the frozen routing table, so that they
survive :meth:`meshlib.Mesh.apply` for clusters whose identity is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshlib._endpoints import Endpoint

__all__ = ["ClusterKey", "HostState"]


@dataclass(frozen=True, slots=True)
class ClusterKey:
    """The identity of a cluster: FQDN, subset (``""`` for none) and service port."""

    host: str
    subset: str
    port: int
    name: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Named once: the name goes into every attempt's MeshInfo and inner transport key.
        object.__setattr__(self, "name", f"outbound|{self.port}|{self.subset}|{self.host}")

    def __str__(self) -> str:
        return self.name


@dataclass(slots=True, eq=False)
class HostState:
    """One endpoint of a cluster and the counters the mesh keeps about it.

    ``address`` and ``port`` are where connections go; ``active`` counts requests in
    flight (least-request balancing), ``connections`` the connections they hold
    (circuit breaking); the outlier fields follow Envoy's detector.
    """

    endpoint: Endpoint
    address: str
    port: int
    active: int = 0
    connections: int = 0
    ejected_until: float | None = None
    ejected_at: float = 0.0
    ejections: int = 0
    consecutive_5xx: int = 0
    consecutive_gateway: int = 0
    consecutive_local: int = 0
    added_at: float = 0.0

    @property
    def name(self) -> str:
        """``address:port``, as Envoy names an upstream host."""
        if ":" in self.address and not self.address.startswith("["):
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"

    @property
    def weight(self) -> int:
        """The endpoint's load-balancing weight (at least 1)."""
        return self.endpoint.effective_weight
