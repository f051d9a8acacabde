"""Endpoints: where a service's requests can go, with what an Istio sidecar knows of them.

An endpoint comes from a ServiceEntry (inline ``endpoints``, or WorkloadEntries its
``workloadSelector`` picks), or is set in code with :meth:`meshlib.Mesh.set_endpoints`.
It carries the labels subsets select on, its locality, LB weight, network and service
account, exactly as Istio's ``WorkloadEntry`` (``istio-api.md`` §3.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Endpoint"]

#: The label Istio reads an endpoint's mTLS capability from (auto-mTLS).
TLS_MODE_LABEL = "security.istio.io/tlsMode"
#: Labels that override ``locality`` (``region.zone.subzone``, dots for slashes).
LOCALITY_LABELS = ("topology.istio.io/locality", "istio-locality")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint of a service.

    Args:
        address: an IP address or a host name (resolved when the ServiceEntry says DNS).
        port: the port to connect to; ``None`` means "the service port called", or the
            port ``ports`` gives for that service port's name.
        labels: what subsets select on (``version: v1``).
        locality: ``region/zone/subzone``.
        weight: the load-balancing weight (0 counts as 1, as in Istio).
        network: the network id (kept; meshlib sends on one network).
        service_account: the workload identity; makes the endpoint mTLS-capable.
        ports: service port name to endpoint port, as in a WorkloadEntry.

    >>> Endpoint("10.0.0.5", port=9080, labels={"version": "v1"})
    Endpoint(address='10.0.0.5', port=9080, labels={'version': 'v1'}, ...)
    """

    address: str
    port: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    locality: str = ""
    weight: int = 1
    network: str = ""
    service_account: str = ""
    ports: Mapping[str, int] = field(default_factory=dict)

    def __repr__(self) -> str:
        labels = dict(self.labels)
        return f"Endpoint(address={self.address!r}, port={self.port!r}, labels={labels!r}, ...)"

    @property
    def effective_weight(self) -> int:
        """The weight the load balancer uses: 0 and unset both mean 1."""
        return self.weight or 1

    @property
    def effective_locality(self) -> str:
        """``locality``, unless a topology label overrides it (``a.b`` reads as ``a/b``)."""
        for label in LOCALITY_LABELS:
            value = self.labels.get(label)
            if value:
                return value.replace(".", "/")
        return self.locality

    @property
    def tls_mode(self) -> str:
        """``istio`` when the endpoint takes Istio mTLS (auto-mTLS), else ``disabled``."""
        mode = self.labels.get(TLS_MODE_LABEL)
        if mode:
            return mode
        return "istio" if self.service_account else "disabled"

    def target_port(self, service_port: int, port_name: str = "", target_port: int = 0) -> int:
        """The port to connect to for a call to ``service_port``.

        Istio's precedence (``convertWorkloadInstanceToServiceInstance``): the endpoint's
        ``ports[name]``, then the ServiceEntry port's ``targetPort``, then the port itself.
        """
        if port_name and port_name in self.ports:
            return self.ports[port_name]
        if self.port is not None:
            return self.port
        return target_port or service_port
