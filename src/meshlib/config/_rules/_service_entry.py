"""Istio's validation of ServiceEntry (``pkg/config/validation`` and the CRD schema).

The webhook side follows ``ValidateServiceEntry`` (selector first, and nothing else when
the selector is invalid; then hosts, addresses, ports, the resolution-specific rules,
multiple hosts and ``exportTo``); the CRD side adds its size limits and the CEL rules that
tell an explicit ``endpoints: []`` from an absent list. Where both reject the same input,
only the webhook's message is reported.

IP auto-allocation (``PILOT_ENABLE_IP_AUTOALLOCATE``) is off by default, so the warning
about TCP ports without addresses is given as Istio gives it by default.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshlib.config._context import ResourceContext
from meshlib.config._problems import Path, Report
from meshlib.config._rules._common import (
    go_quote,
    is_valid_ip,
    validate_export_to,
    validate_fqdn,
    validate_ip_subnet,
    validate_labels,
    validate_port,
    validate_wildcard_domain,
)
from meshlib.config._rules._destination_rule import validate_selector_labels
from meshlib.config._rules._workload_entry import (
    validate_endpoint,
    validate_endpoint_schema,
    validate_port_name,
)
from meshlib.config._selectors import LabelSelector
from meshlib.config._service_entry import Resolution, ServiceEntry, ServicePort, WorkloadEntry

__all__ = ["validate_service_entry"]

# CRD limits.
_MAX_HOSTS = 256
_MAX_ADDRESSES = 256
_MAX_ADDRESS = 64
_MAX_PORTS = 256
_MAX_ENDPOINTS = 4096
_MAX_SELECTOR_LABELS = 256

# ``protocol.Parse``: case-insensitive names, and the families Istio tests for.
_PROTOCOLS = {
    "tcp": "TCP",
    "udp": "UDP",
    "grpc": "GRPC",
    "grpc-web": "GRPC-Web",
    "http": "HTTP",
    "http_proxy": "HTTP_PROXY",
    "http2": "HTTP2",
    "https": "HTTPS",
    "tls": "TLS",
    "mongo": "Mongo",
    "redis": "Redis",
    "mysql": "MySQL",
}
_HTTP_OR_TLS = frozenset({"HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-Web", "HTTPS", "TLS"})
_TCP_FAMILY = frozenset({"TCP", "HTTPS", "TLS", "Mongo", "Redis", "MySQL"})
_DYNAMIC_DNS_PROTOCOLS = frozenset({"HTTP", "TLS", "GRPC", "HTTP2"})
_DNS_MODES = (Resolution.DNS, Resolution.DNS_ROUND_ROBIN)


def validate_service_entry(
    spec: ServiceEntry, context: ResourceContext, report: Report, path: Path
) -> None:
    """``ValidateServiceEntry`` and the CRD rules of ``spec``."""
    if not _selector(spec.workload_selector, report, (*path, "workloadSelector")):
        return  # Istio reports selector errors alone
    _selector_and_endpoints(spec, report, path)
    _hosts(spec, report, (*path, "hosts"))
    _addresses(spec, report, path)
    _ports(spec, report, (*path, "ports"))
    if len(spec.endpoints) > _MAX_ENDPOINTS:
        report.error((*path, "endpoints"), f"must have at most {_MAX_ENDPOINTS} items")
    resolution = spec.resolution
    if resolution is Resolution.NONE:
        _resolution_none(spec, report, path)
    elif resolution is Resolution.STATIC:
        _static_endpoints(spec, report, path)
    elif resolution in _DNS_MODES:
        _resolution_dns(spec, report, path)
    else:  # DYNAMIC_DNS: the decoder admits no other value
        _resolution_dynamic_dns(spec, report, path)
    _multiple_hosts(spec, report, (*path, "ports"))
    validate_export_to(
        context.namespace, spec.export_to, report, (*path, "exportTo"), service_entry=True
    )


def _parse_protocol(name: str) -> str | None:
    """``protocol.Parse``: the canonical protocol, or None when Istio does not know it."""
    return _PROTOCOLS.get(name.lower())


def _is_null(report: Report, path: Path) -> bool:
    """Whether the list element at ``path`` was written as ``null``."""
    return bool(report.nulls) and path in report.nulls


# ------------------------------------------------------------------------ selector


def _selector(selector: LabelSelector | None, report: Report, path: Path) -> bool:
    """``ValidateAlphaWorkloadSelector`` and the CRD limits; False when it has errors."""
    if selector is None:
        return True
    errors = len(report.errors)
    labels = selector.labels
    if len(labels) > _MAX_SELECTOR_LABELS:
        report.error((*path, "labels"), f"must have at most {_MAX_SELECTOR_LABELS} properties")
    validate_selector_labels(labels, report, (*path, "labels"))
    if len(report.errors) > errors:
        return False
    if not labels:
        report.warn(
            path,
            "service entry: workload selector specified without labels, will be applied to all "
            "services in namespace",
        )
    return True


def _selector_and_endpoints(spec: ServiceEntry, report: Report, path: Path) -> None:
    """Go: not both ``workloadSelector`` and ``endpoints``; CRD: not even ``endpoints: []``."""
    if spec.workload_selector is None:
        return
    if spec.endpoints:
        report.error(path, "only one of WorkloadSelector or Endpoints is allowed in Service Entry")
    elif (*path, "endpoints") in report.empty:
        report.error(path, "only one of WorkloadSelector or Endpoints can be set")


# -------------------------------------------------------------- hosts and addresses


def _hosts(spec: ServiceEntry, report: Report, path: Path) -> None:
    """At least one host; no ``*``; wildcard domains; a warning for partial wildcards."""
    hosts = spec.hosts
    if not hosts:
        report.error(path, "service entry must have at least one host")
    elif len(hosts) > _MAX_HOSTS:
        report.error(path, f"must have at most {_MAX_HOSTS} items")
    dynamic = spec.resolution is Resolution.DYNAMIC_DNS
    for index, host in enumerate(hosts):
        where = (*path, index)
        if host == "*":
            report.error(where, "invalid host *")
            continue
        problem = validate_wildcard_domain(host)
        if problem:
            report.error(where, problem)
        if not dynamic and "*" in host and not host.startswith("*."):
            report.warn(where, f"partial wildcard {go_quote(host)} not allowed")


def _addresses(spec: ServiceEntry, report: Report, path: Path) -> None:
    """Addresses are IPs or CIDR blocks, and CIDR blocks need NONE or STATIC resolution.

    The CRD also caps them at 256 entries of at most 64 characters.
    """
    addresses = spec.addresses
    where = (*path, "addresses")
    if len(addresses) > _MAX_ADDRESSES:
        report.error(where, f"must have at most {_MAX_ADDRESSES} items")
    cidr = False
    for index, address in enumerate(addresses):
        cidr = cidr or "/" in address
        if len(address) > _MAX_ADDRESS:
            report.error((*where, index), f"may not be longer than {_MAX_ADDRESS} characters")
        validate_ip_subnet(address, report, (*where, index))
    if cidr and spec.resolution not in (Resolution.NONE, Resolution.STATIC):
        report.error(path, "CIDR addresses are allowed only for NONE/STATIC resolution types")


# --------------------------------------------------------------------------- ports


def _ports(spec: ServiceEntry, report: Report, path: Path) -> None:
    """Each port: unique name and number, target port, name, protocol, number."""
    if len(spec.ports) > _MAX_PORTS:
        report.error(path, f"must have at most {_MAX_PORTS} items")
    names: set[str] = set()
    numbers: set[int] = set()
    for index, port in enumerate(spec.ports):
        item = (*path, index)
        if _is_null(report, item):
            report.error(item, "service entry port may not be null")
            continue
        if port.name in names:
            report.error(
                (*item, "name"), f"service entry port name {go_quote(port.name)} already defined"
            )
        names.add(port.name)
        if port.number in numbers:
            report.error((*item, "number"), f"service entry port {port.number} already defined")
        numbers.add(port.number)
        if port.target_port != 0:
            validate_port(port.target_port, report, (*item, "targetPort"))
        if not spec.addresses and port.protocol in ("", "TCP"):
            report.warn(
                item,
                "addresses are required for ports serving TCP (or unset) protocol when IP "
                "Autoallocation is not enabled",
            )
        validate_port_name(port.name, report, (*item, "name"))
        if port.protocol and _parse_protocol(port.protocol) is None:
            report.error((*item, "protocol"), f"unsupported protocol: {port.protocol}")
        validate_port(port.number, report, (*item, "number"))


def _port_names(spec: ServiceEntry, report: Report, path: Path) -> set[str]:
    """The names of the non-null ports: what endpoint ports may refer to."""
    return {
        port.name for index, port in enumerate(spec.ports) if not _is_null(report, (*path, index))
    }


def _multiple_hosts(spec: ServiceEntry, report: Report, path: Path) -> None:
    """Several hosts with resolution other than NONE need HTTP or TLS ports (reported once)."""
    if spec.resolution is Resolution.NONE or len(spec.hosts) <= 1:
        return
    for index, port in enumerate(spec.ports):
        if _is_null(report, (*path, index)):
            report.error((*path, index), "ports cannot be nil")
            continue
        if _parse_protocol(port.protocol) not in _HTTP_OR_TLS:
            report.error((*path, index), "multiple hosts provided with non-HTTP, non-TLS ports")
            return


# ---------------------------------------------------------------------- resolution


def _resolution_none(spec: ServiceEntry, report: Report, path: Path) -> None:
    """NONE: no endpoints (CRD: not even ``endpoints: []``); a selector is only warned."""
    where = (*path, "endpoints")
    if spec.endpoints:
        report.error(where, "no endpoints should be provided for resolution type none")
    elif where in report.empty:
        report.error(where, "NONE mode cannot set endpoints")
    if spec.workload_selector is not None:
        report.warn(
            (*path, "workloadSelector"),
            "workloadSelector should not be set when resolution mode is NONE",
        )


def _static_endpoints(spec: ServiceEntry, report: Report, path: Path) -> None:
    """STATIC: each endpoint is a WorkloadEntry with an IP or unix address."""
    service_ports = _port_names(spec, report, (*path, "ports"))
    for index, endpoint in enumerate(spec.endpoints):
        item = (*path, "endpoints", index)
        if _is_null(report, item):
            report.error(item, "endpoint cannot be nil")
            continue
        validate_endpoint(endpoint, service_ports, report, item, allow_fqdn=False)
        validate_endpoint_schema(endpoint, report, item)


def _resolution_dns(spec: ServiceEntry, report: Report, path: Path) -> None:
    """DNS and DNS_ROUND_ROBIN: FQDN hosts without endpoints, FQDN or IP endpoints."""
    mode = spec.resolution.name
    endpoints = spec.endpoints
    if not endpoints:
        for index, host in enumerate(spec.hosts):
            problem = validate_fqdn(host)
            if problem:
                report.error(
                    (*path, "hosts", index),
                    "hosts must be FQDN or contain only prefix wildcards if no endpoints are "
                    f"provided for resolution mode {mode}, {problem}",
                )
                break
    if spec.resolution is Resolution.DNS_ROUND_ROBIN and len(endpoints) > 1:
        report.error(
            (*path, "endpoints"),
            f"there must only be 0 or 1 endpoint for resolution mode {mode}",
        )
    service_ports = _port_names(spec, report, (*path, "ports"))
    for index, endpoint in enumerate(endpoints):
        item = (*path, "endpoints", index)
        if _is_null(report, item):
            report.error(item, "endpoint cannot be nil")
            continue
        _dns_endpoint(endpoint, service_ports, report, item)
        validate_endpoint_schema(endpoint, report, item)
    if spec.addresses:
        _dns_addresses(spec, report, path)


def _dns_endpoint(
    endpoint: WorkloadEntry, service_ports: set[str], report: Report, path: Path
) -> None:
    """A DNS endpoint: an IP or an FQDN, labels, ports declared by the ServiceEntry."""
    address = endpoint.address
    if not is_valid_ip(address) and validate_fqdn(address):
        report.error(
            (*path, "address"),
            f"endpoint address {go_quote(address)} is not a valid FQDN or an IP address",
        )
    validate_labels(endpoint.labels, report, (*path, "labels"))
    for name, number in endpoint.ports.items():
        where = (*path, "ports", name)
        if name not in service_ports:
            report.error(where, f"endpoint port {number} is not defined by the service entry")
        validate_port_name(name, report, where)
        validate_port(number, report, where)


def _dns_addresses(spec: ServiceEntry, report: Report, path: Path) -> None:
    """With addresses, the first TCP-family port warns when there are several hosts."""
    for index, port in enumerate(spec.ports):
        if _is_null(report, (*path, "ports", index)):
            report.error((*path, "ports", index), "ports cannot be nil")
            continue
        if _parse_protocol(port.protocol) in _TCP_FAMILY:
            if len(spec.hosts) > 1:
                report.warn(
                    path,
                    "service entry can not have more than one host specified simultaneously "
                    "with address and tcp port",
                )
            return


def _resolution_dynamic_dns(spec: ServiceEntry, report: Report, path: Path) -> None:
    """DYNAMIC_DNS: wildcard hosts only; no addresses or endpoints; HTTP/TLS/gRPC ports."""
    mode = spec.resolution.name
    if not spec.hosts:
        report.error(
            (*path, "hosts"),
            f"at least one wildcard host must be provided for resolution type {mode}",
        )
    for index, host in enumerate(spec.hosts):
        if not host.startswith("*"):
            report.error(
                (*path, "hosts", index), f"host must be wildcarded for resolution mode {mode}"
            )
    if spec.addresses:
        report.error(
            (*path, "addresses"),
            "addresses cannot be set for resolution type DYNAMIC_DNS. HTTP route domains will "
            "only be generatedfrom the hosts field values",
        )
    if spec.endpoints:
        report.error(
            (*path, "endpoints"),
            "endpoints cannot be set for resolution type DYNAMIC_DNS. Destination IP address "
            "determined from hostsfield values",
        )
    _dynamic_dns_ports(spec.ports, mode, report, (*path, "ports"))


def _dynamic_dns_ports(
    ports: Sequence[ServicePort], mode: str, report: Report, path: Path
) -> None:
    """DYNAMIC_DNS ports must be HTTP, TLS, GRPC or HTTP2."""
    for index, port in enumerate(ports):
        if _is_null(report, (*path, index)):
            report.error((*path, index), "port cannot be nil")
            continue
        if _parse_protocol(port.protocol) not in _DYNAMIC_DNS_PROTOCOLS:
            report.error(
                (*path, index, "protocol"),
                f"only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type "
                f"{mode}",
            )
