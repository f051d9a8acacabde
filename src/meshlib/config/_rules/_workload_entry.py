"""Istio's validation of WorkloadEntry (``pkg/config/validation`` and the CRD schema).

A WorkloadEntry is also the element type of ``ServiceEntry.endpoints``: Istio checks the
endpoints of a STATIC ServiceEntry with the same ``validateWorkloadEntry``, and the CRD
puts the same schema and CEL rules on both. Both halves live here and the ServiceEntry
rules reuse them.
"""

from __future__ import annotations

from collections.abc import Set

from meshlib.config._context import ResourceContext
from meshlib.config._problems import Path, Report
from meshlib.config._rules._common import (
    go_quote,
    is_dns1123_label,
    is_valid_ip,
    validate_fqdn,
    validate_labels,
    validate_port,
)
from meshlib.config._service_entry import WorkloadEntry

__all__ = [
    "validate_endpoint",
    "validate_endpoint_schema",
    "validate_port_name",
    "validate_workload_entry",
]

_UNIX = "unix://"
# CRD limits of a WorkloadEntry (and of a ServiceEntry endpoint).
_MAX_ADDRESS = 256
_MAX_LABELS = 256
_MAX_PORTS = 128
_MAX_PORT_NAME = 62  # CEL: size(key) < 63
_MAX_LOCALITY = 2048
_MAX_NETWORK = 2048
_MAX_SERVICE_ACCOUNT = 253


def validate_workload_entry(
    spec: WorkloadEntry, _context: ResourceContext, report: Report, path: Path
) -> None:
    """``ValidateWorkloadEntry`` (an IP, FQDN or unix address) and the CRD rules."""
    validate_endpoint(spec, None, report, path, allow_fqdn=True)
    validate_endpoint_schema(spec, report, path)


def validate_port_name(name: str, report: Report, path: Path) -> None:
    """``ValidatePortName``: a DNS-1123 label (upper case allowed, at most 63 characters)."""
    if not is_dns1123_label(name):
        report.error(path, f"invalid port name: {name}")


def validate_endpoint(
    entry: WorkloadEntry,
    service_ports: Set[str] | None,
    report: Report,
    path: Path,
    *,
    allow_fqdn: bool,
) -> None:
    """``validateWorkloadEntry``: address, ports, labels.

    ``service_ports`` are the port names of the enclosing ServiceEntry (None for a
    standalone WorkloadEntry); ``allow_fqdn`` is False for STATIC ServiceEntry endpoints,
    whose addresses must be IPs or unix sockets.
    """
    address = entry.address
    if not address:
        if not entry.network:
            report.error((*path, "address"), "address is required")
            return
        report.warn(path, f"address is unset with network {go_quote(entry.network)}")
    unix = address.startswith(_UNIX)
    if unix:
        _unix_address(address[len(_UNIX) :], report, (*path, "address"))
        if entry.ports:
            report.error((*path, "ports"), f"unix endpoint {address} must not include ports")
    elif address and not is_valid_ip(address):
        if not allow_fqdn:
            report.error(
                (*path, "address"),
                f"endpoint address {go_quote(address)} is not a valid IP address",
            )
        elif validate_fqdn(address):
            report.error(
                (*path, "address"),
                f"endpoint address {go_quote(address)} is not a valid FQDN or an IP address",
            )
    _endpoint_ports(entry, service_ports, report, (*path, "ports"))
    validate_labels(entry.labels, report, (*path, "labels"))
    if unix and service_ports is not None and len(service_ports) != 1:
        report.error(path, "exactly 1 service port required for unix endpoints")


def _endpoint_ports(
    entry: WorkloadEntry, service_ports: Set[str] | None, report: Report, path: Path
) -> None:
    """Each endpoint port: declared by the ServiceEntry, a valid name, 1..65535."""
    for name, number in entry.ports.items():
        where = (*path, name)
        if service_ports is not None and name not in service_ports:
            report.error(where, f"endpoint port {number} is not defined by the service entry")
        validate_port_name(name, report, where)
        validate_port(number, report, where)


def _unix_address(socket: str, report: Report, path: Path) -> None:
    """``ValidateUnixAddress``: an absolute file path, or an abstract socket (``@name``)."""
    if not socket:
        report.error(path, "unix address must not be empty")
    elif not socket.startswith("@") and (not socket.startswith("/") or socket.endswith("/")):
        report.error(path, f"{socket} is not an absolute path to a file")


def validate_endpoint_schema(entry: WorkloadEntry, report: Report, path: Path) -> None:
    """The CRD rules of a WorkloadEntry that ``validateWorkloadEntry`` does not repeat.

    Length limits, the UDS rules where they are stricter than Go's (an abstract socket
    ending in ``/``; ``ports: {}`` written out), and the port-name limit of 62 characters.
    """
    address = entry.address
    if len(address) > _MAX_ADDRESS:
        report.error((*path, "address"), _too_long(_MAX_ADDRESS))
    if address.startswith(_UNIX + "@") and address.endswith("/"):
        report.error((*path, "address"), "UDS may not be a dir")
    ports_path = (*path, "ports")
    if address.startswith(_UNIX) and not entry.ports and ports_path in report.empty:
        report.error(ports_path, "UDS may not include ports")
    if len(entry.ports) > _MAX_PORTS:
        report.error(ports_path, f"must have at most {_MAX_PORTS} properties")
    for name in entry.ports:
        if len(name) > _MAX_PORT_NAME and is_dns1123_label(name):
            report.error((*ports_path, name), "port name must be valid")
    if len(entry.labels) > _MAX_LABELS:
        report.error((*path, "labels"), f"must have at most {_MAX_LABELS} properties")
    if len(entry.locality) > _MAX_LOCALITY:
        report.error((*path, "locality"), _too_long(_MAX_LOCALITY))
    if len(entry.network) > _MAX_NETWORK:
        report.error((*path, "network"), _too_long(_MAX_NETWORK))
    if len(entry.service_account) > _MAX_SERVICE_ACCOUNT:
        report.error((*path, "serviceAccount"), _too_long(_MAX_SERVICE_ACCOUNT))


def _too_long(limit: int) -> str:
    """The CRD's ``maxLength`` message."""
    return f"may not be longer than {limit} characters"
