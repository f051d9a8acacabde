"""Gateway validation: Istio's webhook rules and the CRD's server-TLS bounds."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping

import pytest
import yaml

from meshlib.config import Gateway, read_yaml
from meshlib.config._context import ResourceContext
from meshlib.config._problems import Report, format_path
from meshlib.config._rules._gateway import validate_gateway
from meshlib.config._schema import decode_message

DOCUMENT = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: edge}}
spec:
{spec}
"""

#: A valid HTTPS server; cases replace its ``tls`` block.
HTTPS = """\
servers:
- port: {{number: 443, name: https, protocol: HTTPS}}
  hosts: [shop.example.com]
  tls: {tls}
"""

Expected = tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Case:
    """A Gateway spec and the (path, message fragment) of each error and warning."""

    id: str
    spec: str
    errors: Expected = ()
    warnings: Expected = ()
    name: str = "gw"


def https(tls: str) -> str:
    """The HTTPS server above with ``tls`` as its TLS settings (flow-style YAML)."""
    return HTTPS.format(tls=tls)


def check(case: Case) -> None:
    """Load the case and compare every error and warning, in order."""
    spec = textwrap.indent(textwrap.dedent(case.spec), "  ")
    found = read_yaml(DOCUMENT.format(name=case.name, spec=spec))
    for expected, problems in ((case.errors, found.errors), (case.warnings, found.warnings)):
        got = [(problem.path, problem.message) for problem in problems]
        assert [path for path, _ in got] == [path for path, _ in expected], got
        for (_, message), (_, fragment) in zip(got, expected, strict=True):
            assert fragment in message


VALID = [
    Case(
        "http server", "servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]"
    ),
    Case(
        "protocol names are case-insensitive and UDP is known",
        """
        servers:
        - {port: {number: 80, name: a, protocol: http2}, hosts: [a.example.com]}
        - {port: {number: 53, name: b, protocol: udp}, hosts: [b.example.com]}
        """,
    ),
    Case(
        "an IP address is an acceptable gateway host",
        "servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [10.1.2.3]}]",
    ),
    Case(
        "namespace/host forms: name, wildcard and current namespace",
        """
        servers:
        - port: {number: 80, name: http, protocol: HTTP}
          hosts: [prod/a.example.com, '*/b.example.com', ./c.example.com, '*.example.org']
        """,
    ),
    Case(
        "plain HTTP may carry tls.httpsRedirect alone",
        """
        servers:
        - port: {number: 80, name: http, protocol: HTTP}
          hosts: [a.example.com]
          tls: {httpsRedirect: true}
        """,
    ),
    Case(
        "a unix socket bind takes port number 0",
        """
        servers:
        - port: {number: 0, name: uds, protocol: HTTP}
          hosts: [a.example.com]
          bind: unix:///var/run/gw.sock
        """,
    ),
    Case(
        "an abstract unix socket",
        "servers: [{port: {number: 0, name: u, protocol: TCP}, hosts: [a.b.c], bind: 'unix://@gw'}]",
    ),
    Case("SIMPLE with a credential", https("{mode: SIMPLE, credentialName: shop-cert}")),
    Case(
        "SIMPLE with files",
        https("{mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem}"),
    ),
    Case(
        "MUTUAL with files and a client CA",
        https("{mode: MUTUAL, serverCertificate: /c, privateKey: /k, caCertificates: /ca}"),
    ),
    Case("ISTIO_MUTUAL needs nothing", https("{mode: ISTIO_MUTUAL}")),
    Case(
        "two tlsCertificates",
        https(
            "{mode: SIMPLE, tlsCertificates: [{serverCertificate: /a, privateKey: /ak},"
            " {serverCertificate: /b, privateKey: /bk}]}"
        ),
    ),
    Case("two credentialNames", https("{mode: SIMPLE, credentialNames: [rsa, ecdsa]}")),
    Case(
        "a CRL with a credential is not checked for SIMPLE",
        https("{mode: SIMPLE, credentialName: c, caCrl: /crl.pem}"),
    ),
    Case(
        "cipher suite operators and ALL are accepted",
        https(
            "{mode: ISTIO_MUTUAL, cipherSuites: [ALL, '-AES128-SHA', '[ECDHE-RSA-AES128-SHA]']}"
        ),
    ),
    Case(
        "TLS 1.1 with explicit ciphers does not warn",
        https("{mode: ISTIO_MUTUAL, minProtocolVersion: TLSV1_1, cipherSuites: [AES128-SHA]}"),
    ),
    Case(
        "the gateway selector is a free-form map",
        """
        selector: {istio: 'ingress*', '': x}
        servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [a.example.com]}]
        """,
    ),
]


@pytest.mark.parametrize("case", VALID, ids=lambda case: case.id)
def test_valid(case: Case) -> None:
    """Configurations Istio accepts load with no error and no warning."""
    check(case)


INVALID = [
    Case("no servers", "{}", errors=(("spec.servers", "gateway must have at least one server"),)),
    Case(
        "a null server", "servers: [null]", errors=(("spec.servers[0]", "server may not be nil"),)
    ),
    Case(
        "a server without hosts",
        "servers: [{port: {number: 80, name: http, protocol: HTTP}}]",
        errors=(("spec.servers[0].hosts", "server config must contain at least one host"),),
    ),
    Case(
        "a short host name",
        "servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [shop]}]",
        errors=(("spec.servers[0].hosts[0]", "short names (non FQDN) are not allowed"),),
    ),
    Case(
        "a partial wildcard host",
        "servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*shop.com']}]",
        errors=(("spec.servers[0].hosts[0]", 'partial wildcard "*shop.com" not allowed'),),
    ),
    Case(
        "a wildcard inside the host",
        "servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['a.*.com']}]",
        errors=(
            ("spec.servers[0].hosts[0]", 'domain name "*.com" invalid (label "*" invalid)'),
            ("spec.servers[0].hosts[0]", 'partial wildcard "a.*.com" not allowed'),
        ),
    ),
    Case(
        "the ~ namespace needs Gateway API semantics",
        "servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [~/a.example.com]}]",
        errors=(("spec.servers[0].hosts[0]", 'invalid namespace value "~" in gateway'),),
    ),
    Case(
        "an empty namespace before the slash",
        "servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [/a.example.com]}]",
        errors=(
            (
                "spec.servers[0].hosts[0]",
                "config namespace and dnsName in host entry cannot be empty",
            ),
            ("spec.servers[0].hosts[0]", 'invalid namespace value "" in gateway'),
        ),
    ),
    Case(
        "a missing port",
        "servers: [{hosts: [a.example.com]}]",
        errors=(("spec.servers[0].port", "port is required"),),
    ),
    Case(
        "an empty port",
        "servers: [{hosts: [a.example.com], port: {}}]",
        errors=(
            (
                "spec.servers[0].port.protocol",
                (
                    'invalid protocol "", supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, '
                    "MONGO, REDIS, MYSQL, TCP"
                ),
            ),
            ("spec.servers[0].port.number", "port number 0 must be in the range 1..65535"),
            ("spec.servers[0].port.name", "port name must be set: "),
        ),
    ),
    Case(
        "an unknown protocol",
        "servers: [{port: {number: 9092, name: k, protocol: kafka}, hosts: [a.example.com]}]",
        errors=(("spec.servers[0].port.protocol", 'invalid protocol "kafka"'),),
    ),
    Case(
        "a port number beyond 65535",
        "servers: [{port: {number: 70000, name: h, protocol: HTTP}, hosts: [a.example.com]}]",
        errors=(("spec.servers[0].port.number", "port number 70000 must be in the range"),),
    ),
    Case(
        "targetPort on a gateway",
        "servers: [{port: {number: 80, name: h, protocol: HTTP, targetPort: 8}, hosts: [a.b]}]",
        errors=(("spec.servers[0].port.targetPort", "targetPort has no impact on Gateways"),),
    ),
    Case(
        "a port without a name, shown in proto text",
        "servers: [{port: {number: 80, protocol: HTTP}, hosts: [a.example.com]}]",
        errors=(
            ("spec.servers[0].port.name", 'port name must be set: number:80 protocol:"HTTP"'),
        ),
    ),
    Case(
        "a unix socket with a port number",
        "servers: [{port: {number: 80, name: h, protocol: HTTP}, hosts: [a.b.c], bind: 'unix:///s'}]",
        errors=(
            (
                "spec.servers[0]",
                'port number must be 0 for unix domain socket: number:80 protocol:"HTTP" name:"h"',
            ),
        ),
    ),
    Case(
        "a relative unix socket path",
        "servers: [{port: {number: 0, name: h, protocol: HTTP}, hosts: [a.b.c], bind: 'unix://run/s'}]",
        errors=(("spec.servers[0].bind", "run/s is not an absolute path to a file"),),
    ),
    Case(
        "an empty unix socket path",
        "servers: [{port: {number: 0, name: h, protocol: HTTP}, hosts: [a.b.c], bind: 'unix://'}]",
        errors=(("spec.servers[0].bind", "unix address must not be empty"),),
    ),
    Case(
        "a bind that is not an IP",
        "servers: [{port: {number: 80, name: h, protocol: HTTP}, hosts: [a.b], bind: localhost}]",
        errors=(("spec.servers[0].bind", "localhost is not a valid IP"),),
    ),
    Case(
        "HTTPS without TLS settings",
        "servers: [{port: {number: 443, name: h, protocol: HTTPS}, hosts: [a.example.com]}]",
        errors=(("spec.servers[0]", "server must have TLS settings for HTTPS/TLS protocols"),),
    ),
    Case(
        "plain HTTP with TLS termination",
        """
        servers:
        - port: {number: 80, name: h, protocol: HTTP}
          hosts: [a.example.com]
          tls: {mode: SIMPLE, credentialName: c}
        """,
        errors=(
            ("spec.servers[0].tls", "server cannot have TLS settings for plain text HTTP ports"),
        ),
    ),
    Case(
        "plain HTTP with certificate files in passthrough",
        """
        servers:
        - port: {number: 80, name: h, protocol: HTTP}
          hosts: [a.example.com]
          tls: {httpsRedirect: true, serverCertificate: /c}
        """,
        errors=(
            ("spec.servers[0].tls", "server cannot have TLS settings for plain text HTTP ports"),
        ),
        warnings=(("spec.servers[0].tls", "PASSTHROUGH mode does not use certificates"),),
    ),
    Case(
        "TCP with TLS settings",
        "servers: [{port: {number: 31400, name: t, protocol: TCP}, hosts: [a.b.c], tls: {}}]",
        errors=(
            ("spec.servers[0].tls", "server cannot have TLS settings for non HTTPS/TLS ports"),
        ),
    ),
    Case(
        "duplicate port names",
        """
        servers:
        - {port: {number: 80, name: web, protocol: HTTP}, hosts: [a.example.com]}
        - {port: {number: 8080, name: web, protocol: HTTP}, hosts: [b.example.com]}
        """,
        errors=(
            (
                "spec.servers[1].port.name",
                "port names in servers must be unique: duplicate name web",
            ),
        ),
    ),
    Case(
        "a gateway name must be a DNS label, without dots",
        "servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [a.example.com]}]",
        name="edge.gateway",
        errors=(("metadata.name", 'invalid gateway name: "edge.gateway"'),),
    ),
]


@pytest.mark.parametrize("case", INVALID, ids=lambda case: case.id)
def test_invalid_server(case: Case) -> None:
    """Each server rule reports Istio's message on the field concerned."""
    check(case)


TLS = [
    Case(
        "ISTIO_MUTUAL with certificate files",
        https("{mode: ISTIO_MUTUAL, serverCertificate: /c, privateKey: /k, caCertificates: /ca}"),
        errors=(
            (
                "spec.servers[0].tls.serverCertificate",
                "ISTIO_MUTUAL TLS cannot have associated server certificate",
            ),
            (
                "spec.servers[0].tls.privateKey",
                "ISTIO_MUTUAL TLS cannot have associated private key",
            ),
            (
                "spec.servers[0].tls.caCertificates",
                "ISTIO_MUTUAL TLS cannot have associated CA bundle",
            ),
        ),
    ),
    Case(
        "ISTIO_MUTUAL with credentials",
        https(
            "{mode: ISTIO_MUTUAL, credentialName: c, credentialNames: [d], tlsCertificates: [{}]}"
        ),
        errors=(
            (
                "spec.servers[0].tls.tlsCertificates",
                "ISTIO_MUTUAL TLS cannot have associated tlsCertificates",
            ),
            (
                "spec.servers[0].tls.credentialName",
                "ISTIO_MUTUAL TLS cannot have associated credentialName",
            ),
            (
                "spec.servers[0].tls.credentialNames",
                "ISTIO_MUTUAL TLS cannot have associated credentialNames",
            ),
        ),
    ),
    Case(
        "a credential and certificate files",
        https("{mode: SIMPLE, credentialName: c, serverCertificate: /c, privateKey: /k}"),
        errors=(
            (
                "spec.servers[0].tls",
                (
                    "only one of credential_name, credential_names, "
                    "server_certificate/private_key, tls_certificates should be specified"
                ),
            ),
        ),
    ),
    Case(
        "credentialName with tlsCertificates (which the CRD alone would let through)",
        https(
            "{mode: SIMPLE, credentialName: c,"
            " tlsCertificates: [{serverCertificate: /c, privateKey: /k}]}"
        ),
        errors=(("spec.servers[0].tls", "only one of credential_name, credential_names"),),
    ),
    Case(
        "credentialName with credentialNames",
        https("{mode: SIMPLE, credentialName: c, credentialNames: [d]}"),
        errors=(("spec.servers[0].tls", "only one of credential_name, credential_names"),),
    ),
    Case(
        "SIMPLE without files",
        https("{mode: SIMPLE}"),
        errors=(
            ("spec.servers[0].tls.serverCertificate", "SIMPLE TLS requires a server certificate"),
            ("spec.servers[0].tls.privateKey", "SIMPLE TLS requires a private key"),
        ),
    ),
    Case(
        "MUTUAL needs the client CA first",
        https("{mode: MUTUAL, serverCertificate: /c}"),
        errors=(
            ("spec.servers[0].tls.caCertificates", "MUTUAL TLS requires a client CA bundle"),
            ("spec.servers[0].tls.privateKey", "MUTUAL TLS requires a private key"),
        ),
    ),
    Case(
        "OPTIONAL_MUTUAL is held to MUTUAL's rules",
        https("{mode: OPTIONAL_MUTUAL, serverCertificate: /c, privateKey: /k}"),
        errors=(("spec.servers[0].tls.caCertificates", "MUTUAL TLS requires a client CA bundle"),),
    ),
    Case(
        "each tlsCertificates entry needs its key",
        https(
            "{mode: SIMPLE, tlsCertificates: [{serverCertificate: /a, privateKey: /ak},"
            " {serverCertificate: /b}]}"
        ),
        errors=(
            (
                "spec.servers[0].tls.tlsCertificates[1].privateKey",
                "SIMPLE TLS requires a private key",
            ),
        ),
    ),
    Case(
        "more than two tlsCertificates (the CRD's maxItems)",
        https(
            "{mode: SIMPLE, tlsCertificates: [{serverCertificate: /a, privateKey: /a},"
            " {serverCertificate: /b, privateKey: /b}, {serverCertificate: /c, privateKey: /c}]}"
        ),
        errors=(("spec.servers[0].tls.tlsCertificates", "must have at most 2 items"),),
    ),
    Case(
        "more than two credentialNames (the CRD's maxItems)",
        https("{mode: SIMPLE, credentialNames: [a, b, c]}"),
        errors=(("spec.servers[0].tls.credentialNames", "must have at most 2 items"),),
    ),
    Case(
        "credentialNames written empty (the CRD's minItems)",
        https("{mode: SIMPLE, credentialName: c, credentialNames: []}"),
        errors=(("spec.servers[0].tls.credentialNames", "should have at least 1 items"),),
    ),
    Case(
        "a null tlsCertificates entry",
        https("{mode: PASSTHROUGH, tlsCertificates: [null]}"),
        errors=(("spec.servers[0].tls.tlsCertificates[0]", "must be an object, not null"),),
        warnings=(("spec.servers[0].tls", "PASSTHROUGH mode does not use certificates"),),
    ),
    Case(
        "a CRL with SIMPLE files",
        https("{mode: SIMPLE, serverCertificate: /c, privateKey: /k, caCrl: /crl}"),
        errors=(("spec.servers[0].tls.caCrl", "CRL is not supported with SIMPLE TLS"),),
    ),
    Case(
        "a CRL with a credential in passthrough",
        https("{mode: PASSTHROUGH, credentialName: c, caCrl: /crl}"),
        errors=(
            (
                "spec.servers[0].tls.caCrl",
                (
                    "CRL is not supported with credentialName. CRL has to be specified in the "
                    "credential"
                ),
            ),
        ),
        warnings=(
            (
                "spec.servers[0].tls",
                "PASSTHROUGH mode does not use certificates, they will be ignored",
            ),
        ),
    ),
]


@pytest.mark.parametrize("case", TLS, ids=lambda case: case.id)
def test_server_tls(case: Case) -> None:
    """``validateTLSOptions`` and the CRD's list bounds, field by field."""
    check(case)


WARNINGS = [
    Case(
        "httpsRedirect on an HTTPS server",
        https("{mode: ISTIO_MUTUAL, httpsRedirect: true}"),
        warnings=(
            (
                "spec.servers[0].tls.httpsRedirect",
                "tls.httpsRedirect should only be used with http servers",
            ),
        ),
    ),
    Case(
        "AUTO_PASSTHROUGH ignores certificates",
        https("{mode: AUTO_PASSTHROUGH, caCertificates: /ca}"),
        warnings=(("spec.servers[0].tls", "AUTO_PASSTHROUGH mode does not use certificates"),),
    ),
    Case(
        "TLS 1.0 without ciphers",
        https("{mode: ISTIO_MUTUAL, minProtocolVersion: TLSV1_0}"),
        warnings=(
            (
                "spec.servers[0].tls",
                "TLS version below TLSV1_2 require setting compatible ciphers",
            ),
        ),
    ),
    Case(
        "unknown and repeated cipher suites, listed sorted",
        https("{mode: ISTIO_MUTUAL, cipherSuites: [zeta, AES128-SHA, alpha, AES128-SHA, zeta]}"),
        warnings=(
            ("spec.servers[0].tls.cipherSuites", "ignoring invalid cipher suites: [alpha zeta]"),
            ("spec.servers[0].tls.cipherSuites", "ignoring duplicate cipher suites: [AES128-SHA]"),
        ),
    ),
]


@pytest.mark.parametrize("case", WARNINGS, ids=lambda case: case.id)
def test_warnings(case: Case) -> None:
    """Istio's warnings are kept as warnings: the Gateway still loads."""
    check(case)


@dataclasses.dataclass(frozen=True)
class AnnotatedContext(ResourceContext):
    """A context that carries annotations, as the loader may pass them."""

    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)


def validate_with(annotations: Mapping[str, str], name: str, spec: str) -> Report:
    """Decode ``spec`` and validate it with the given resource annotations."""
    report = Report()
    decoded = decode_message(Gateway, yaml.safe_load(spec), ("spec",), report)
    context = AnnotatedContext("Gateway", name, "edge", annotations)
    validate_gateway(decoded, context, report, ("spec",))
    return report


def test_gateway_api_semantics_allow_tilde_hosts_and_dotted_names() -> None:
    """Gateways converted from the Kubernetes Gateway API may use ``~/`` hosts and dots."""
    spec = "servers: [{port: {number: 80, name: h, protocol: HTTP}, hosts: [~/a.example.com]}]"
    semantics = {"internal.istio.io/gateway-semantics": "gateway"}
    assert validate_with(semantics, "edge.gw", spec).errors == []
    errors = validate_with({}, "edge.gw", spec).errors
    assert [format_path(path) for path, _ in errors] == [
        "metadata.name",
        "spec.servers[0].hosts[0]",
    ]
