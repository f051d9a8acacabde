"""The service registry: hosts, ports and endpoints from ServiceEntries, WorkloadEntries
and code.

Follows ``pilot/pkg/serviceregistry/serviceentry/conversion.go`` (``istio-api.md`` §3,
§5.3): every host of a ServiceEntry is a service; inline ``endpoints`` or the
WorkloadEntries its ``workloadSelector`` picks (same namespace) are its endpoints; a DNS
ServiceEntry without endpoints has one endpoint, the host itself. When several
namespaces declare a host, the workload's own namespace wins, then the oldest; entries in
one namespace merge. Endpoints set in code replace those from YAML for their host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshlib._compile._precedence import creation_order, exported_to
from meshlib._endpoints import Endpoint
from meshlib._labels import selects
from meshlib.config import (
    Location,
    Resolution,
    Resource,
    ServiceEntry,
    ServicePort,
    WorkloadEntry,
)

__all__ = ["Service", "build_services"]


@dataclass(frozen=True, slots=True)
class Service:
    """A host in the registry.

    ``resolution`` says how ``endpoints`` are reached: STATIC (addresses as given), DNS
    (host names resolved, every address an endpoint), DNS_ROUND_ROBIN (one name,
    resolved per connection), NONE (the address the caller asked for).
    """

    host: str
    namespace: str
    ports: tuple[ServicePort, ...] = ()
    resolution: Resolution = Resolution.STATIC
    location: Location = Location.MESH_INTERNAL
    endpoints: tuple[Endpoint, ...] = ()
    subject_alt_names: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    source: Resource[ServiceEntry] | None = None

    def port(self, number: int) -> ServicePort | None:
        """The declared port ``number``, if the service declares it."""
        for port in self.ports:
            if port.number == number:
                return port
        return None


def _endpoint(entry: WorkloadEntry, extra_labels: Mapping[str, str] | None = None) -> Endpoint:
    labels = {**(extra_labels or {}), **entry.labels}
    return Endpoint(
        address=entry.address,
        labels=labels,
        locality=entry.locality,
        weight=entry.weight,
        network=entry.network,
        service_account=entry.service_account,
        ports=dict(entry.ports),
    )


def _selected_workloads(
    entry: Resource[ServiceEntry], workloads: Iterable[Resource[WorkloadEntry]]
) -> tuple[Endpoint, ...]:
    selector = entry.spec.workload_selector
    if selector is None:
        return ()
    found = []
    for workload in workloads:
        labels = {**workload.metadata.labels, **workload.spec.labels}
        if workload.namespace == entry.namespace and selects(selector.labels, labels):
            found.append(_endpoint(workload.spec, workload.metadata.labels))
    return tuple(found)


def _endpoints_of(
    entry: Resource[ServiceEntry], host: str, workloads: list[Resource[WorkloadEntry]]
) -> tuple[Endpoint, ...]:
    spec = entry.spec
    if spec.endpoints:
        return tuple(_endpoint(e) for e in spec.endpoints)
    selected = _selected_workloads(entry, workloads)
    if selected or spec.workload_selector is not None:
        return selected
    if spec.resolution in (Resolution.DNS, Resolution.DNS_ROUND_ROBIN):
        return (Endpoint(address=host),)
    return ()


def build_services(
    entries: list[Resource[Any]],
    workloads: list[Resource[Any]],
    namespace: str,
    code_endpoints: Mapping[str, tuple[Endpoint, ...]],
    default_namespace_of: Any,
) -> dict[str, Service]:
    """Every host the workload in ``namespace`` can see, with its endpoints."""
    visible = [r for r in creation_order(entries) if exported_to(r, namespace)]
    visible.sort(key=lambda r: r.namespace != namespace)
    services: dict[str, Service] = {}
    for entry in visible:
        spec: ServiceEntry = entry.spec
        for written in spec.hosts:
            host = written.lower()
            service = Service(
                host=host,
                namespace=entry.namespace,
                ports=spec.ports,
                resolution=spec.resolution,
                location=spec.location,
                endpoints=_endpoints_of(entry, host, workloads),
                subject_alt_names=spec.subject_alt_names,
                addresses=spec.addresses,
                source=entry,
            )
            known = services.get(host)
            if known is None:
                services[host] = service
            elif known.namespace == entry.namespace:
                services[host] = _merged(known, service)
    for host, endpoints in code_endpoints.items():
        known = services.get(host)
        services[host] = Service(
            host=host,
            namespace=known.namespace if known else default_namespace_of(host),
            ports=known.ports if known else (),
            resolution=Resolution.STATIC,
            location=known.location if known else Location.MESH_INTERNAL,
            endpoints=endpoints,
            subject_alt_names=known.subject_alt_names if known else (),
            addresses=known.addresses if known else (),
            source=known.source if known else None,
        )
    return services


def _merged(first: Service, second: Service) -> Service:
    """Two ServiceEntries of one namespace declaring the same host: ports and endpoints add up."""
    numbers = {p.number for p in first.ports}
    return Service(
        host=first.host,
        namespace=first.namespace,
        ports=first.ports + tuple(p for p in second.ports if p.number not in numbers),
        resolution=first.resolution,
        location=first.location,
        endpoints=first.endpoints + second.endpoints,
        subject_alt_names=first.subject_alt_names + second.subject_alt_names,
        addresses=first.addresses + second.addresses,
        source=first.source,
    )
