"""Istio's validation of Gateway (``pkg/config/validation`` and the CRD schema).

The webhook's ``ValidateGateway``, ``validateServer``, ``validateServerPort``,
``validateServerBind`` and ``validateTLSOptions``, plus the CRD's ``ServerTLSSettings``
list bounds. The server-TLS checks and the ``namespace/host`` checks are shared with
Sidecar (``ingress[].tls`` and ``egress[].hosts``), which imports them from here.

The CRD's three ``ServerTLSSettings`` CEL rules (one credential source among
``credentialName``, ``credentialNames``, ``tlsCertificates``; the third rule repeats the
first by an upstream slip, so ``credentialName`` + ``tlsCertificates`` passes the CRD)
are all covered by the webhook's stricter "only one of credential_name, ..." rule, which
is reported instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from meshlib.config._context import ResourceContext
from meshlib.config._gateway import Gateway, Port, Server, ServerTLSMode, ServerTLSSettings
from meshlib.config._problems import Path, Report
from meshlib.config._rules._common import (
    go_quote,
    is_dns1123_label,
    is_valid_ip,
    validate_port,
    validate_wildcard_domain,
)

__all__ = [
    "context_annotations",
    "is_http_protocol",
    "is_known_protocol",
    "is_tls_protocol",
    "namespace_host_problems",
    "unix_address_problem",
    "validate_gateway",
    "validate_ip_address",
    "validate_server_tls",
]

_GATEWAY_SEMANTICS = "internal.istio.io/gateway-semantics"
_UNIX = "unix://"
_PROTOCOLS = frozenset(
    {"tcp", "udp", "grpc", "grpc-web", "http", "http_proxy", "http2", "https", "tls"}
    | {"mongo", "redis", "mysql"}
)
_HTTP_PROTOCOLS = frozenset({"http", "http2", "http_proxy", "grpc", "grpc-web"})
_TLS_PROTOCOLS = frozenset({"https", "tls"})
_CIPHER_SUITES = frozenset(
    {
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-SHA",
        "AES256-SHA",
        "DES-CBC3-SHA",
    }
)
_PASSTHROUGH_MODES = (ServerTLSMode.PASSTHROUGH, ServerTLSMode.AUTO_PASSTHROUGH)
_CERTIFICATE_MODES = (ServerTLSMode.SIMPLE, ServerTLSMode.MUTUAL, ServerTLSMode.OPTIONAL_MUTUAL)
_MAX_SERVER_CERTIFICATES = 2  # the CRD's maxItems on credentialNames and tlsCertificates


def context_annotations(context: ResourceContext) -> Mapping[str, str]:
    """The resource's annotations, when the loader passes them in the context."""
    found = getattr(context, "annotations", None)
    return found if isinstance(found, Mapping) else {}


# ------------------------------------------------------------------------- protocols


def is_known_protocol(name: str) -> bool:
    """``protocol.Parse(name) != Unsupported`` (case-insensitive; ``""`` is unsupported)."""
    return name.lower() in _PROTOCOLS


def is_http_protocol(name: str) -> bool:
    """``protocol.Parse(name).IsHTTP()``: HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC-Web."""
    return name.lower() in _HTTP_PROTOCOLS


def is_tls_protocol(name: str) -> bool:
    """``protocol.Parse(name).IsTLS()``: HTTPS, TLS."""
    return name.lower() in _TLS_PROTOCOLS


# --------------------------------------------------------------------- addresses, hosts


def validate_ip_address(address: str, report: Report, path: Path) -> None:
    """``agent.ValidateIPAddress``: an IPv4 or IPv6 address, no CIDR."""
    if not is_valid_ip(address):
        report.error(path, f"{address} is not a valid IP")


def unix_address_problem(address: str) -> str | None:
    """``ValidateUnixAddress``: an absolute file path or an abstract socket (``@name``)."""
    if not address:
        return "unix address must not be empty"
    if address.startswith("@"):
        return None
    if not address.startswith("/") or address.endswith("/"):
        return f"{address} is not an absolute path to a file"
    return None


def _host_part_problems(hostname: str, *, gateway: bool) -> list[str]:
    """``validateSidecarOrGatewayHostnamePart`` (Istio's repeated sidecar error kept once)."""
    problems: list[str] = []
    if hostname != "*" and "." not in hostname:
        problems.append("short names (non FQDN) are not allowed")
    domain_problem = validate_wildcard_domain(hostname)
    if domain_problem and not (gateway and is_valid_ip(hostname)):
        problems.append(domain_problem)
    if "*" in hostname and len(hostname) != 1 and not hostname.startswith("*."):
        problems.append(f"partial wildcard {go_quote(hostname)} not allowed")
    return problems


def namespace_host_problems(
    host: str, *, gateway: bool, gateway_semantics: bool = False
) -> list[str]:
    """``agent.ValidateNamespaceSlashWildcardHostname`` for a Gateway or Sidecar host."""
    namespace, slash, name = host.partition("/")
    if not slash:
        if gateway:
            return _host_part_problems(host, gateway=True)
        return ["host must be of form namespace/dnsName"]
    problems: list[str] = []
    if not namespace or not name:
        problems.append("config namespace and dnsName in host entry cannot be empty")
    allowed = {"*", "."} | ({"~"} if gateway_semantics or not gateway else set())
    if namespace not in allowed and not is_dns1123_label(namespace):
        where = "gateway" if gateway else "sidecar"
        problems.append(f"invalid namespace value {go_quote(namespace)} in {where}")
    return problems + _host_part_problems(name, gateway=gateway)


# ------------------------------------------------------------------------ server TLS


def _is_valid_cipher_suite(suite: str) -> bool:
    """``security.IsValidCipherSuite``: a known suite, ``ALL``, or an operator entry."""
    if suite in ("", "ALL") or not suite[0].isalnum():
        return True
    return suite in _CIPHER_SUITES


def _go_string_list(values: set[str]) -> str:
    return "[" + " ".join(sorted(values)) + "]"


def _check_cipher_suites(tls: ServerTLSSettings, report: Report, path: Path) -> None:
    invalid: set[str] = set()
    duplicate: set[str] = set()
    seen: set[str] = set()
    for suite in tls.cipher_suites:
        if not _is_valid_cipher_suite(suite):
            invalid.add(suite)
        elif suite in seen:
            duplicate.add(suite)
        else:
            seen.add(suite)
    where = (*path, "cipherSuites")
    if invalid:
        report.warn(where, f"ignoring invalid cipher suites: {_go_string_list(invalid)}")
    if duplicate:
        report.warn(where, f"ignoring duplicate cipher suites: {_go_string_list(duplicate)}")


def _check_istio_mutual(tls: ServerTLSSettings, report: Report, path: Path) -> None:
    """ISTIO_MUTUAL uses the mesh's certificates: no certificate field may be set."""
    fields = (
        ("serverCertificate", bool(tls.server_certificate), "server certificate"),
        ("privateKey", bool(tls.private_key), "private key"),
        ("caCertificates", bool(tls.ca_certificates), "CA bundle"),
        ("tlsCertificates", bool(tls.tls_certificates), "tlsCertificates"),
        ("credentialName", bool(tls.credential_name), "credentialName"),
        ("credentialNames", bool(tls.credential_names), "credentialNames"),
    )
    for key, present, what in fields:
        if present:
            report.error((*path, key), f"ISTIO_MUTUAL TLS cannot have associated {what}")


def _check_list_bounds(tls: ServerTLSSettings, report: Report, path: Path) -> bool:
    """The CRD's minItems 1 / maxItems 2 on ``credentialNames`` and ``tlsCertificates``."""
    ok = True
    for key, items in (
        ("credentialNames", tls.credential_names),
        ("tlsCertificates", tls.tls_certificates),
    ):
        where = (*path, key)
        if where in report.empty:
            report.error(where, "should have at least 1 items")
            ok = False
        elif len(items) > _MAX_SERVER_CERTIFICATES:
            report.error(where, f"must have at most {_MAX_SERVER_CERTIFICATES} items")
            ok = False
    for index in range(len(tls.tls_certificates)):
        if (*path, "tlsCertificates", index) in report.nulls:
            report.error((*path, "tlsCertificates", index), "must be an object, not null")
            ok = False
    return ok


def validate_server_tls(tls: ServerTLSSettings | None, report: Report, path: Path) -> None:
    """``validateTLSOptions`` plus the CRD list bounds of ``ServerTLSSettings``."""
    if tls is None:
        return
    crd_ok = _check_list_bounds(tls, report, path)
    mode = tls.mode
    if tls.min_protocol_version.name in ("TLSV1_0", "TLSV1_1") and not tls.cipher_suites:
        report.warn(
            path,
            "TLS version below TLSV1_2 require setting compatible ciphers as by default they "
            "no longer include compatible ciphers.",
        )
    _check_cipher_suites(tls, report, path)
    if mode is ServerTLSMode.ISTIO_MUTUAL:
        _check_istio_mutual(tls, report, path)
        return
    if mode in _PASSTHROUGH_MODES and _has_certificates(tls):
        report.warn(path, f"{mode.name} mode does not use certificates, they will be ignored")
    sources = (
        int(bool(tls.server_certificate and tls.private_key))
        + int(bool(tls.credential_name))
        + int(bool(tls.credential_names))
        + int(bool(tls.tls_certificates))
    )
    if sources > 1:
        report.error(
            path,
            "only one of credential_name, credential_names, server_certificate/private_key, "
            "tls_certificates should be specified",
        )
    if mode in _CERTIFICATE_MODES and (tls.credential_name or tls.credential_names):
        return
    if mode in _CERTIFICATE_MODES:
        _check_certificates(tls, report, path, warn_count=crd_ok)
    if tls.ca_crl:
        if tls.credential_name:
            report.error(
                (*path, "caCrl"),
                "CRL is not supported with credentialName. CRL has to be specified in the "
                "credential",
            )
        if mode is ServerTLSMode.SIMPLE:
            report.error((*path, "caCrl"), "CRL is not supported with SIMPLE TLS")


def _has_certificates(tls: ServerTLSSettings) -> bool:
    return bool(
        tls.ca_crl
        or tls.server_certificate
        or tls.private_key
        or tls.ca_certificates
        or tls.tls_certificates
        or tls.credential_names
        or tls.credential_name
    )


def _check_certificates(
    tls: ServerTLSSettings, report: Report, path: Path, *, warn_count: bool
) -> None:
    """SIMPLE / MUTUAL / OPTIONAL_MUTUAL with files: certificate, key (and client CA)."""
    prefix = "SIMPLE TLS" if tls.mode is ServerTLSMode.SIMPLE else "MUTUAL TLS"
    if tls.mode is not ServerTLSMode.SIMPLE and not tls.ca_certificates:
        report.error((*path, "caCertificates"), "MUTUAL TLS requires a client CA bundle")
    if warn_count and len(tls.tls_certificates) > _MAX_SERVER_CERTIFICATES:
        report.warn(
            (*path, "tlsCertificates"), f"{prefix} can support up to 2 server certificates"
        )
    pairs: list[tuple[Path, str, str]]
    if tls.tls_certificates:
        pairs = [
            ((*path, "tlsCertificates", index), cert.server_certificate, cert.private_key)
            for index, cert in enumerate(tls.tls_certificates)
        ]
    else:
        pairs = [(path, tls.server_certificate, tls.private_key)]
    for where, certificate, key in pairs:
        if not certificate:
            report.error((*where, "serverCertificate"), f"{prefix} requires a server certificate")
        if not key:
            report.error((*where, "privateKey"), f"{prefix} requires a private key")


# --------------------------------------------------------------------------- Gateway


def validate_gateway(spec: Gateway, context: ResourceContext, report: Report, path: Path) -> None:
    """``ValidateGateway``: the name, every server, and unique port names."""
    semantics = context_annotations(context).get(_GATEWAY_SEMANTICS) == "gateway"
    if context.name and not is_dns1123_label(context.name) and not semantics:
        report.error(
            (*path[:-1], "metadata", "name"), f"invalid gateway name: {go_quote(context.name)}"
        )
    servers_path = (*path, "servers")
    if not spec.servers:
        report.error(servers_path, "gateway must have at least one server")
    port_names: set[str] = set()
    for index, server in enumerate(spec.servers):
        where = (*servers_path, index)
        if where in report.nulls:
            report.error(where, "server may not be nil")
            continue
        _validate_server(server, report, where, gateway_semantics=semantics)
        if server.port is None:
            continue
        if server.port.name in port_names:
            report.error(
                (*where, "port", "name"),
                f"port names in servers must be unique: duplicate name {server.port.name}",
            )
        port_names.add(server.port.name)
        if server.tls and server.tls.https_redirect and not is_http_protocol(server.port.protocol):
            report.warn(
                (*where, "tls", "httpsRedirect"),
                "tls.httpsRedirect should only be used with http servers",
            )


def _validate_server(
    server: Server, report: Report, path: Path, *, gateway_semantics: bool
) -> None:
    """``validateServer``: hosts, port, bind, TLS options, and TLS against the protocol."""
    if not server.hosts:
        report.error((*path, "hosts"), "server config must contain at least one host")
    for index, host in enumerate(server.hosts):
        for problem in namespace_host_problems(
            host, gateway=True, gateway_semantics=gateway_semantics
        ):
            report.error((*path, "hosts", index), problem)
    port_ok = _validate_server_port(server.port, server.bind, report, path)
    _validate_server_bind(server.port, server.bind, report, path)
    validate_server_tls(server.tls, report, (*path, "tls"))
    if not port_ok or server.port is None:
        return
    protocol = server.port.protocol
    tls = server.tls
    if is_tls_protocol(protocol) and tls is None:
        report.error(path, "server must have TLS settings for HTTPS/TLS protocols")
    elif not is_tls_protocol(protocol) and tls is not None:
        if is_http_protocol(protocol):
            if (
                tls.mode not in _PASSTHROUGH_MODES
                or tls.ca_certificates
                or tls.private_key
                or tls.server_certificate
            ):
                report.error(
                    (*path, "tls"), "server cannot have TLS settings for plain text HTTP ports"
                )
        else:
            report.error((*path, "tls"), "server cannot have TLS settings for non HTTPS/TLS ports")


def _port_text(port: Port) -> str:
    """Go's ``%v`` of a Port message (proto text format, unset fields left out)."""
    parts = []
    if port.number:
        parts.append(f"number:{port.number}")
    if port.protocol:
        parts.append(f"protocol:{go_quote(port.protocol)}")
    if port.name:
        parts.append(f"name:{go_quote(port.name)}")
    if port.target_port:
        parts.append(f"target_port:{port.target_port}")
    return " ".join(parts)


def _validate_server_port(port: Port | None, bind: str, report: Report, path: Path) -> bool:
    """``validateServerPort``; returns whether the port is free of errors."""
    where = (*path, "port")
    if port is None:
        report.error(where, "port is required")
        return False
    before = len(report.errors)
    if not is_known_protocol(port.protocol):
        report.error(
            (*where, "protocol"),
            f"invalid protocol {go_quote(port.protocol)}, supported protocols are HTTP, HTTP2, "
            "GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP",
        )
    if port.number > 0 or not bind.startswith(_UNIX):
        validate_port(port.number, report, (*where, "number"))
    if port.target_port > 0:
        report.error((*where, "targetPort"), "targetPort has no impact on Gateways")
    if not port.name:
        report.error((*where, "name"), f"port name must be set: {_port_text(port)}")
    return len(report.errors) == before


def _validate_server_bind(port: Port | None, bind: str, report: Report, path: Path) -> None:
    """``validateServerBind``: a unix socket (with port number 0) or an IP address."""
    if bind.startswith(_UNIX):
        problem = unix_address_problem(bind[len(_UNIX) :])
        if problem:
            report.error((*path, "bind"), problem)
        if port is not None and port.number != 0:
            report.error(path, f"port number must be 0 for unix domain socket: {_port_text(port)}")
    elif bind:
        validate_ip_address(bind, report, (*path, "bind"))
