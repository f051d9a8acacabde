"""Istio's validation of Sidecar (``pkg/config/validation`` and the CRD schema).

The webhook's ``ValidateSidecar`` with its helpers (ingress and egress listeners, the
outbound traffic policy), plus the CRD's ``workloadSelector.labels`` bounds. Server-TLS
and ``namespace/host`` checks come from the Gateway rules, connection pools from the
DestinationRule rules (Istio's ``validateConnectionPool`` serves both).
"""

from __future__ import annotations

import re

from meshlib.config._context import ResourceContext
from meshlib.config._gateway import ServerTLSMode
from meshlib.config._problems import Path, Report
from meshlib.config._rules._common import (
    go_quote,
    is_dns1123_label,
    validate_fqdn,
    validate_port,
    validate_wildcard_domain,
)
from meshlib.config._rules._destination_rule import validate_connection_pool
from meshlib.config._rules._gateway import (
    is_http_protocol,
    is_known_protocol,
    is_tls_protocol,
    namespace_host_problems,
    unix_address_problem,
    validate_ip_address,
    validate_server_tls,
)
from meshlib.config._selectors import LabelSelector
from meshlib.config._sidecar import (
    CaptureMode,
    IstioEgressListener,
    IstioIngressListener,
    OutboundTrafficPolicy,
    OutboundTrafficPolicyMode,
    Sidecar,
    SidecarPort,
)

__all__ = ["validate_sidecar"]

_UNIX = "unix://"
_LOOPBACK_OR_ANY = frozenset({"127.0.0.1", "0.0.0.0", "::1", "::"})
_MAX_SELECTOR_LABELS = 256  # the CRD's maxProperties on workloadSelector.labels
_MAX_LABEL_VALUE = 63  # the CRD's maxLength on workloadSelector.labels values
_INT64 = 2**63 - 1
_ATOI = re.compile(r"[+-]?[0-9]+\Z")


def validate_sidecar(spec: Sidecar, context: ResourceContext, report: Report, path: Path) -> None:
    """``ValidateSidecar``: selector, ingress, inbound pool, egress, outbound policy."""
    selector_path = (*path, "workloadSelector")
    if not _validate_selector(spec.workload_selector, report, selector_path):
        return  # Istio stops at a bad selector
    if (
        not spec.egress
        and not spec.ingress
        and spec.outbound_traffic_policy is None
        and spec.inbound_connection_pool is None
    ):
        report.error(path, "sidecar: empty configuration provided")
        return
    if spec.workload_selector is not None and not spec.workload_selector.labels:
        report.warn(
            selector_path,
            "sidecar: workload selector specified without labels, will be applied to all "
            "services in namespace",
        )
    ingress_ports: set[int] = set()
    for index, ingress in enumerate(spec.ingress):
        where = (*path, "ingress", index)
        if where in report.nulls:
            report.error(where, "sidecar: ingress may not be null")
            continue
        _validate_ingress(ingress, report, where, ingress_ports)
    validate_connection_pool(
        spec.inbound_connection_pool, report, (*path, "inboundConnectionPool")
    )
    _validate_egress_listeners(spec.egress, context.namespace, report, (*path, "egress"))
    _validate_outbound_policy(
        spec.outbound_traffic_policy, report, (*path, "outboundTrafficPolicy")
    )


# ------------------------------------------------------------------------- selector


def _validate_selector(selector: LabelSelector | None, report: Report, path: Path) -> bool:
    """``ValidateAlphaWorkloadSelector`` and the CRD's ``labels`` bounds; False if invalid."""
    if selector is None:
        return True
    before = len(report.errors)
    labels_path = (*path, "labels")
    if len(selector.labels) > _MAX_SELECTOR_LABELS:
        report.error(labels_path, f"must have at most {_MAX_SELECTOR_LABELS} items")
    for key, value in selector.labels.items():
        pair = go_quote(f"{key}={value}")
        if not key:
            report.error((*labels_path, key), f"empty key is not supported in selector: {pair}")
        if "*" in key or "*" in value:
            report.error((*labels_path, key), f"wildcard is not supported in selector: {pair}")
        if len(value) > _MAX_LABEL_VALUE:
            report.error(
                (*labels_path, key), f"may not be longer than {_MAX_LABEL_VALUE} characters"
            )
    return len(report.errors) == before


# -------------------------------------------------------------------------- ingress


def _validate_port_name_and_protocol(port: SidecarPort, report: Report, path: Path) -> None:
    """``ValidatePortName`` (when set) and ``ValidateProtocol`` (empty means sniffing)."""
    if port.name and not is_dns1123_label(port.name):
        report.error((*path, "name"), f"invalid port name: {port.name}")
    if port.protocol and not is_known_protocol(port.protocol):
        report.error((*path, "protocol"), f"unsupported protocol: {port.protocol}")


def _validate_ingress(
    ingress: IstioIngressListener, report: Report, path: Path, ports: set[int]
) -> None:
    """One ``ingress`` listener: port, bind, default endpoint, TLS and connection pool."""
    port = ingress.port
    if port is None:
        report.error((*path, "port"), "sidecar: port is required for ingress listeners")
        return
    port_path = (*path, "port")
    if port.target_port > 0:
        report.error((*port_path, "targetPort"), "targetPort has no impact on Sidecars")
    _validate_port_name_and_protocol(port, report, port_path)
    validate_port(port.number, report, (*port_path, "number"))
    if ingress.bind:
        validate_ip_address(ingress.bind, report, (*path, "bind"))
    if port.number in ports:
        report.error((*port_path, "number"), "sidecar: ports on IP bound listeners must be unique")
    ports.add(port.number)
    if ingress.default_endpoint:
        _validate_default_endpoint(ingress.default_endpoint, report, (*path, "defaultEndpoint"))
    if ingress.tls is not None:
        _validate_ingress_tls(ingress, port, report, (*path, "tls"))
    pool = ingress.connection_pool
    validate_connection_pool(pool, report, (*path, "connectionPool"))
    if pool is not None and pool.http is not None and not is_http_protocol(port.protocol):
        report.warn(
            (*path, "connectionPool", "http"),
            f"sidecar: HTTP connection pool settings are configured for port {port.number} "
            f"({go_quote(port.name)}) but its protocol is not HTTP ({port.protocol}); only TCP "
            "settings will apply",
        )


def _validate_ingress_tls(
    ingress: IstioIngressListener, port: SidecarPort, report: Report, path: Path
) -> None:
    """What a sidecar's inbound TLS does not support, then ``validateTLSOptions``."""
    tls = ingress.tls
    if tls is None:
        return
    if tls.subject_alt_names:
        report.error(
            (*path, "subjectAltNames"), "sidecar: subjectAltNames is not supported in ingress tls"
        )
    if tls.https_redirect:
        report.error((*path, "httpsRedirect"), "sidecar: httpsRedirect is not supported")
    if tls.credential_name:
        report.error(
            (*path, "credentialName"), "sidecar: credentialName is not currently supported"
        )
    if tls.credential_names:
        report.error(
            (*path, "credentialNames"), "sidecar: credentialNames is not currently supported"
        )
    if tls.tls_certificates:
        report.error(
            (*path, "tlsCertificates"), "sidecar: tls_certificates is not currently supported"
        )
    if tls.mode in (ServerTLSMode.ISTIO_MUTUAL, ServerTLSMode.AUTO_PASSTHROUGH):
        report.error(
            (*path, "mode"),
            f"configuration is invalid: cannot set mode to {tls.mode.name} in sidecar ingress tls",
        )
    if not is_tls_protocol(port.protocol):
        report.error(path, "server cannot have TLS settings for non HTTPS/TLS ports")
    validate_server_tls(tls, report, path)


def _split_host_port(address: str) -> tuple[str, str, str | None]:
    """Go's ``net.SplitHostPort``: host, port, and the error text if it fails."""

    def fail(why: str) -> tuple[str, str, str | None]:
        return "", "", f"address {address}: {why}"

    colon = address.rfind(":")
    if colon < 0:
        return fail("missing port in address")
    start, end = 0, 0
    if address.startswith("["):
        close = address.find("]")
        if close < 0:
            return fail("missing ']' in address")
        if close + 1 == len(address):
            return fail("missing port in address")
        if close + 1 != colon:
            if address[close + 1] == ":":
                return fail("too many colons in address")
            return fail("missing port in address")
        host = address[1:close]
        start, end = 1, close + 1
    else:
        host = address[:colon]
        if ":" in host:
            return fail("too many colons in address")
    if "[" in address[start:]:
        return fail("unexpected '[' in address")
    if "]" in address[end:]:
        return fail("unexpected ']' in address")
    return host, address[colon + 1 :], None


def _atoi_problem(text: str) -> str | None:
    """Go's ``strconv.Atoi`` error text for ``text``, or None when it parses."""
    if not _ATOI.match(text):
        return f"strconv.Atoi: parsing {go_quote(text)}: invalid syntax"
    if abs(int(text)) > _INT64 + (1 if text.startswith("-") else 0):
        return f"strconv.Atoi: parsing {go_quote(text)}: value out of range"
    return None


def _validate_default_endpoint(endpoint: str, report: Report, path: Path) -> None:
    """``defaultEndpoint``: ``127.0.0.1:<port>``, ``0.0.0.0:<port>``, IPv6 forms or a socket."""
    if endpoint.startswith(_UNIX):
        problem = unix_address_problem(endpoint[len(_UNIX) :])
        if problem:
            report.error(path, problem)
        return
    host, port, split_error = _split_host_port(endpoint)
    if split_error:
        report.error(path, split_error)
    if host and host not in _LOOPBACK_OR_ANY:
        report.error(
            path,
            "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,"
            "[::1]:port,[::]:port,unix://filepath or unset",
        )
    number_problem = _atoi_problem(port)
    if number_problem:
        report.error(
            path, f"sidecar: defaultEndpoint port ({port}) is not a number: {number_problem}"
        )
    else:
        validate_port(int(port), report, path)


# --------------------------------------------------------------------------- egress


def _validate_egress_listeners(
    listeners: tuple[IstioEgressListener, ...], namespace: str, report: Report, path: Path
) -> None:
    """Every ``egress`` listener; one catch-all (portless) listener, and only last."""
    ports: set[int] = set()
    sockets: set[str] = set()
    for index, egress in enumerate(listeners):
        where = (*path, index)
        if where in report.nulls:
            report.error(where, "egress listener may not be null")
            continue
        port = egress.port
        if port is None:
            if index != len(listeners) - 1:
                report.error(
                    where,
                    "sidecar: the egress listener with empty port should be the last listener "
                    "in the list",
                )
        else:
            _validate_egress_port(egress, port, report, where)
            if port.number == 0:
                if egress.bind in sockets:
                    report.error(
                        (*where, "bind"),
                        "sidecar: unix domain socket values for listeners must be unique",
                    )
                sockets.add(egress.bind)
            else:
                if port.number in ports:
                    report.error(
                        (*where, "port", "number"),
                        "sidecar: ports on IP bound listeners must be unique",
                    )
                ports.add(port.number)
        _validate_egress_hosts(egress.hosts, namespace, report, (*where, "hosts"))


def _validate_egress_port(
    egress: IstioEgressListener, port: SidecarPort, report: Report, path: Path
) -> None:
    """``validateSidecarEgressPortBindAndCaptureMode``; port 0 means a unix socket."""
    port_path = (*path, "port")
    if port.target_port > 0:
        report.error((*port_path, "targetPort"), "targetPort has no impact on Sidecars")
    _validate_port_name_and_protocol(port, report, port_path)
    bind = egress.bind
    if port.number == 0:
        if not bind.startswith(_UNIX):
            report.error(
                (*path, "bind"),
                "sidecar: ports with 0 value must have a unix domain socket bind address",
            )
        else:
            problem = unix_address_problem(bind[len(_UNIX) :])
            if problem:
                report.error((*path, "bind"), problem)
        if egress.capture_mode is CaptureMode.IPTABLES:
            report.error(
                (*path, "captureMode"),
                "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
            )
        return
    validate_port(port.number, report, (*port_path, "number"))
    if bind:
        validate_ip_address(bind, report, (*path, "bind"))


def _validate_egress_hosts(
    hosts: tuple[str, ...], namespace: str, report: Report, path: Path
) -> None:
    """``egress[].hosts``: ``namespace/dnsName`` entries; overlapping entries warn."""
    if not hosts:
        report.error(path, "sidecar: egress listener must contain at least one host")
        return
    services: dict[str, set[str]] = {}
    for index, host in enumerate(hosts):
        where = (*path, index)
        scope, slash, service = host.partition("/")
        if slash:
            scope = namespace if scope == "." else scope
            known = services.setdefault(scope, set())
            if (service != "*" and (service in known or "*" in known)) or (
                service == "*" and known
            ):
                report.warn(where, f"duplicated egress host: {host}")
            known.add(service)
        for problem in dict.fromkeys(namespace_host_problems(host, gateway=False)):
            report.error(where, problem)
    if "*" in services.get("*", set()) and len(services) != 1:
        report.warn(path, "`*/*` host select all resources, no other hosts can be added")


# ------------------------------------------------------------------ outbound policy


def _validate_outbound_policy(
    policy: OutboundTrafficPolicy | None, report: Report, path: Path
) -> None:
    """``validateSidecarOutboundTrafficPolicy``: an egress proxy needs ALLOW_ANY and a port."""
    if policy is None or policy.egress_proxy is None:
        return
    proxy = policy.egress_proxy
    proxy_path = (*path, "egressProxy")
    if policy.mode is not OutboundTrafficPolicyMode.ALLOW_ANY:
        report.error(
            proxy_path,
            "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode",
        )
        return
    host_path = (*proxy_path, "host")
    fqdn_problem = validate_fqdn(proxy.host)
    if fqdn_problem:
        report.error(host_path, fqdn_problem)
    if proxy.port is None:
        report.error(proxy_path, "sidecar: egress_proxy port must be non-nil")
        return
    # validateDestination; a host error already reported by the FQDN check is not repeated.
    host_problem = (
        "invalid destination host *" if proxy.host == "*" else validate_wildcard_domain(proxy.host)
    )
    if host_problem and host_problem != fqdn_problem:
        report.error(host_path, host_problem)
    if proxy.subset and not is_dns1123_label(proxy.subset):
        report.error((*proxy_path, "subset"), f"subset name is invalid: {proxy.subset}")
    validate_port(proxy.port.number, report, (*proxy_path, "port", "number"))
