"""Sidecar validation: Istio's webhook rules and the CRD's selector bounds."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from meshlib.config import read_yaml

DOCUMENT = """\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: sc, namespace: shop}}
spec:
{spec}
"""

Expected = tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Case:
    """A Sidecar spec and the (path, message fragment) of each error and warning."""

    id: str
    spec: str
    errors: Expected = ()
    warnings: Expected = ()


def check(case: Case) -> None:
    """Load the case and compare every error and warning, in order."""
    spec = textwrap.indent(textwrap.dedent(case.spec), "  ")
    found = read_yaml(DOCUMENT.format(spec=spec))
    for expected, problems in ((case.errors, found.errors), (case.warnings, found.warnings)):
        got = [(problem.path, problem.message) for problem in problems]
        assert [path for path, _ in got] == [path for path, _ in expected], got
        for (_, message), (_, fragment) in zip(got, expected, strict=True):
            assert fragment in message


def ingress(listener: str) -> str:
    """A spec with one ingress listener, given in flow-style YAML."""
    return f"ingress: [{listener}]"


HTTPS_PORT = "port: {number: 8443, name: https, protocol: HTTPS}"
SIMPLE_FILES = "mode: SIMPLE, serverCertificate: /c, privateKey: /k"

VALID = [
    Case(
        "egress to the own and the control-plane namespace",
        "egress: [{hosts: [./*, istio-system/*]}]",
    ),
    Case("an outbound traffic policy alone", "outboundTrafficPolicy: {mode: ALLOW_ANY}"),
    Case("an empty outbound traffic policy counts as configuration", "outboundTrafficPolicy: {}"),
    Case("an inbound connection pool alone", "inboundConnectionPool: {tcp: {maxConnections: 10}}"),
    Case(
        "the ~ namespace imports nothing",
        "egress: [{hosts: [~/*]}]",
    ),
    Case(
        "ingress with a default endpoint on loopback and on IPv6 any",
        """
        ingress:
        - {port: {number: 9080, name: http, protocol: HTTP}, defaultEndpoint: 127.0.0.1:8080}
        - {port: {number: 9081, name: grpc, protocol: GRPC}, defaultEndpoint: '[::]:8081'}
        - {port: {number: 9082}, defaultEndpoint: ':8082'}
        - {port: {number: 9083, protocol: TCP}, defaultEndpoint: 'unix:///var/run/app.sock'}
        """,
    ),
    Case(
        "ingress TLS termination with files on an HTTPS port",
        ingress(f"{{{HTTPS_PORT}, defaultEndpoint: '0.0.0.0:8443', tls: {{{SIMPLE_FILES}}}}}"),
    ),
    Case(
        "egress on a unix socket (port 0) and an IP port, then a catch-all last",
        """
        egress:
        - {port: {number: 0, protocol: HTTP}, bind: 'unix:///var/run/out.sock', hosts: [./*]}
        - {port: {number: 9080, name: http, protocol: HTTP}, bind: 10.0.0.1, hosts: [./*]}
        - {hosts: ['*/*']}
        """,
    ),
    Case(
        "egress proxy with ALLOW_ANY",
        """
        outboundTrafficPolicy:
          mode: ALLOW_ANY
          egressProxy: {host: proxy.example.com, subset: v1, port: {number: 3128}}
        """,
    ),
    Case(
        "a TCP idle timeout of 0s disables it",
        "inboundConnectionPool: {tcp: {idleTimeout: 0s}}",
    ),
    Case(
        "HTTP pool settings on an HTTP port",
        ingress(
            "{port: {number: 80, name: web, protocol: HTTP},"
            " connectionPool: {http: {maxRetries: 3}}}"
        ),
    ),
]


@pytest.mark.parametrize("case", VALID, ids=lambda case: case.id)
def test_valid(case: Case) -> None:
    """Configurations Istio accepts load with no error and no warning."""
    check(case)


INVALID = [
    Case("no configuration", "{}", errors=(("spec", "sidecar: empty configuration provided"),)),
    Case(
        "empty lists are no configuration, and hide the selector warning",
        "{workloadSelector: {}, egress: [], ingress: []}",
        errors=(("spec", "sidecar: empty configuration provided"),),
    ),
    Case(
        "a wildcard label value stops validation",
        "{workloadSelector: {labels: {app: 'web*'}}, egress: [{hosts: [bad]}]}",
        errors=(
            (
                "spec.workloadSelector.labels.app",
                'wildcard is not supported in selector: "app=web*"',
            ),
        ),
    ),
    Case(
        "an empty label key",
        "{workloadSelector: {labels: {'': web}}, egress: [{hosts: [./*]}]}",
        errors=(
            ('spec.workloadSelector.labels[""]', 'empty key is not supported in selector: "=web"'),
        ),
    ),
    Case(
        "a label value longer than 63 (the CRD's maxLength)",
        f"{{workloadSelector: {{labels: {{app: {'a' * 64}}}}}, egress: [{{hosts: [./*]}}]}}",
        errors=(("spec.workloadSelector.labels.app", "may not be longer than 63 characters"),),
    ),
    Case(
        "a null ingress listener",
        "ingress: [null]",
        errors=(("spec.ingress[0]", "sidecar: ingress may not be null"),),
    ),
    Case(
        "an ingress listener without a port",
        ingress("{defaultEndpoint: 127.0.0.1:80}"),
        errors=(("spec.ingress[0].port", "sidecar: port is required for ingress listeners"),),
    ),
    Case(
        "ingress port fields",
        ingress("{port: {number: 0, name: Web_1, protocol: kafka, targetPort: 80}}"),
        errors=(
            ("spec.ingress[0].port.targetPort", "targetPort has no impact on Sidecars"),
            ("spec.ingress[0].port.name", "invalid port name: Web_1"),
            ("spec.ingress[0].port.protocol", "unsupported protocol: kafka"),
            ("spec.ingress[0].port.number", "port number 0 must be in the range 1..65535"),
        ),
    ),
    Case(
        "an ingress bind that is a socket",
        ingress("{port: {number: 80}, bind: 'unix:///s'}"),
        errors=(("spec.ingress[0].bind", "unix:///s is not a valid IP"),),
    ),
    Case(
        "duplicate ingress ports",
        "ingress: [{port: {number: 80}}, {port: {number: 80}}]",
        errors=(
            ("spec.ingress[1].port.number", "sidecar: ports on IP bound listeners must be unique"),
        ),
    ),
    Case(
        "a default endpoint on another host",
        ingress("{port: {number: 80}, defaultEndpoint: 'localhost:8080'}"),
        errors=(
            (
                "spec.ingress[0].defaultEndpoint",
                (
                    "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,"
                    "[::1]:port,[::]:port,unix://filepath or unset"
                ),
            ),
        ),
    ),
    Case(
        "a default endpoint without a port",
        ingress("{port: {number: 80}, defaultEndpoint: 127.0.0.1}"),
        errors=(
            ("spec.ingress[0].defaultEndpoint", "address 127.0.0.1: missing port in address"),
            (
                "spec.ingress[0].defaultEndpoint",
                (
                    'sidecar: defaultEndpoint port () is not a number: strconv.Atoi: parsing "": '
                    "invalid syntax"
                ),
            ),
        ),
    ),
    Case(
        "an unbracketed IPv6 default endpoint",
        ingress("{port: {number: 80}, defaultEndpoint: '::1:8080'}"),
        errors=(
            ("spec.ingress[0].defaultEndpoint", "address ::1:8080: too many colons in address"),
            ("spec.ingress[0].defaultEndpoint", "defaultEndpoint port () is not a number"),
        ),
    ),
    Case(
        "a default endpoint port out of range",
        ingress("{port: {number: 80}, defaultEndpoint: '127.0.0.1:70000'}"),
        errors=(("spec.ingress[0].defaultEndpoint", "port number 70000 must be in the range"),),
    ),
    Case(
        "a default endpoint socket that is a directory",
        ingress("{port: {number: 80}, defaultEndpoint: 'unix:///var/run/'}"),
        errors=(
            ("spec.ingress[0].defaultEndpoint", "/var/run/ is not an absolute path to a file"),
        ),
    ),
    Case(
        "ingress TLS features a sidecar does not support",
        ingress(
            f"{{{HTTPS_PORT}, tls: {{mode: ISTIO_MUTUAL, httpsRedirect: true,"
            " subjectAltNames: [a]}}"
        ),
        errors=(
            (
                "spec.ingress[0].tls.subjectAltNames",
                "sidecar: subjectAltNames is not supported in ingress tls",
            ),
            ("spec.ingress[0].tls.httpsRedirect", "sidecar: httpsRedirect is not supported"),
            (
                "spec.ingress[0].tls.mode",
                "configuration is invalid: cannot set mode to ISTIO_MUTUAL in sidecar ingress tls",
            ),
        ),
    ),
    Case(
        "ingress TLS credentials a sidecar cannot fetch",
        ingress(f"{{{HTTPS_PORT}, tls: {{mode: SIMPLE, credentialName: c}}}}"),
        errors=(
            (
                "spec.ingress[0].tls.credentialName",
                "sidecar: credentialName is not currently supported",
            ),
        ),
    ),
    Case(
        "ingress TLS credential lists",
        ingress(
            f"{{{HTTPS_PORT}, tls: {{mode: SIMPLE, credentialNames: [c],"
            " tlsCertificates: [{serverCertificate: /c, privateKey: /k}]}}"
        ),
        errors=(
            (
                "spec.ingress[0].tls.credentialNames",
                "sidecar: credentialNames is not currently supported",
            ),
            (
                "spec.ingress[0].tls.tlsCertificates",
                "sidecar: tls_certificates is not currently supported",
            ),
            ("spec.ingress[0].tls", "only one of credential_name, credential_names"),
        ),
    ),
    Case(
        "ingress TLS on a plain-text port, and the shared TLS rules",
        ingress(
            "{port: {number: 80, protocol: HTTP}, tls: {mode: MUTUAL, serverCertificate: /c}}"
        ),
        errors=(
            ("spec.ingress[0].tls", "server cannot have TLS settings for non HTTPS/TLS ports"),
            ("spec.ingress[0].tls.caCertificates", "MUTUAL TLS requires a client CA bundle"),
            ("spec.ingress[0].tls.privateKey", "MUTUAL TLS requires a private key"),
        ),
    ),
    Case(
        "an ingress connection pool with no settings",
        ingress("{port: {number: 80}, connectionPool: {}}"),
        errors=(
            ("spec.ingress[0].connectionPool", "connection pool must have at least one field"),
        ),
    ),
    Case(
        "inbound connection pool limits and durations",
        """
        inboundConnectionPool:
          http:
            http1MaxPendingRequests: -1
            http2MaxRequests: -1
            maxRequestsPerConnection: -1
            maxRetries: -1
            idleTimeout: 0s
            h2UpgradePolicy: UPGRADE
            useClientProtocol: true
            maxConcurrentStreams: -1
          tcp:
            maxConnections: -1
            connectTimeout: 1500us
            maxConnectionDuration: 0.5ms
            idleTimeout: 2500us
            tcpKeepalive: {time: 0s, interval: 1.5ms}
        """,
        errors=(
            (
                "spec.inboundConnectionPool.http.http1MaxPendingRequests",
                "http1 max pending requests must be non-negative",
            ),
            (
                "spec.inboundConnectionPool.http.http2MaxRequests",
                "http2 max requests must be non-negative",
            ),
            (
                "spec.inboundConnectionPool.http.maxRequestsPerConnection",
                "max requests per connection must be non-negative",
            ),
            ("spec.inboundConnectionPool.http.maxRetries", "max retries must be non-negative"),
            ("spec.inboundConnectionPool.http.idleTimeout", "duration must be greater than 1ms"),
            (
                "spec.inboundConnectionPool.http",
                "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
            ),
            (
                "spec.inboundConnectionPool.http.maxConcurrentStreams",
                "max concurrent streams must be non-negative",
            ),
            (
                "spec.inboundConnectionPool.tcp.maxConnections",
                "max connections must be non-negative",
            ),
            (
                "spec.inboundConnectionPool.tcp.connectTimeout",
                "only durations to ms precision are supported",
            ),
            (
                "spec.inboundConnectionPool.tcp.maxConnectionDuration",
                "duration must be greater than 1ms",
            ),
            (
                "spec.inboundConnectionPool.tcp.idleTimeout",
                "only durations to ms precision are supported",
            ),
            (
                "spec.inboundConnectionPool.tcp.tcpKeepalive.time",
                "duration must be greater than 1ms",
            ),
            (
                "spec.inboundConnectionPool.tcp.tcpKeepalive.interval",
                "only durations to ms precision",
            ),
        ),
    ),
    Case(
        "a null egress listener",
        "egress: [null]",
        errors=(("spec.egress[0]", "egress listener may not be null"),),
    ),
    Case(
        "a catch-all egress listener before another",
        "egress: [{hosts: [./*]}, {port: {number: 80}, hosts: [./*]}]",
        errors=(
            (
                "spec.egress[0]",
                (
                    "sidecar: the egress listener with empty port should be the last listener in "
                    "the list"
                ),
            ),
        ),
    ),
    Case(
        "an egress listener without hosts",
        "egress: [{port: {number: 80}}]",
        errors=(
            ("spec.egress[0].hosts", "sidecar: egress listener must contain at least one host"),
        ),
    ),
    Case(
        "egress hosts need a namespace, a valid one, and an FQDN",
        "egress: [{hosts: [reviews.shop.svc.cluster.local, Bad_ns/a.b, ns/reviews, 'ns/a*.b']}]",
        errors=(
            ("spec.egress[0].hosts[0]", "host must be of form namespace/dnsName"),
            ("spec.egress[0].hosts[1]", 'invalid namespace value "Bad_ns" in sidecar'),
            ("spec.egress[0].hosts[2]", "short names (non FQDN) are not allowed"),
            ("spec.egress[0].hosts[3]", 'domain name "a*.b" invalid (label "a*" invalid)'),
            ("spec.egress[0].hosts[3]", 'partial wildcard "a*.b" not allowed'),
        ),
    ),
    Case(
        "an egress IP host is a bad DNS name for sidecars",
        "egress: [{hosts: [ns/10.0.0.1]}]",
        errors=(
            (
                "spec.egress[0].hosts[0]",
                'domain name "0.0.1" invalid (top level domain "1" cannot be all-numeric)',
            ),
        ),
    ),
    Case(
        "egress port fields on an IP listener",
        "egress: [{port: {number: 70000, name: a.b, protocol: kafka, targetPort: 1},"
        " bind: x, hosts: [./*]}]",
        errors=(
            ("spec.egress[0].port.targetPort", "targetPort has no impact on Sidecars"),
            ("spec.egress[0].port.name", "invalid port name: a.b"),
            ("spec.egress[0].port.protocol", "unsupported protocol: kafka"),
            ("spec.egress[0].port.number", "port number 70000 must be in the range"),
            ("spec.egress[0].bind", "x is not a valid IP"),
        ),
    ),
    Case(
        "port 0 needs a unix socket bind",
        "egress: [{port: {number: 0}, bind: 10.0.0.1, hosts: [./*]}]",
        errors=(
            (
                "spec.egress[0].bind",
                "sidecar: ports with 0 value must have a unix domain socket bind address",
            ),
        ),
    ),
    Case(
        "a unix socket listener cannot use iptables capture",
        "egress: [{port: {number: 0}, bind: 'unix://@out', captureMode: IPTABLES, hosts: [./*]}]",
        errors=(
            (
                "spec.egress[0].captureMode",
                "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
            ),
        ),
    ),
    Case(
        "a relative unix socket bind",
        "egress: [{port: {number: 0}, bind: 'unix://out.sock', hosts: [./*]}]",
        errors=(("spec.egress[0].bind", "out.sock is not an absolute path to a file"),),
    ),
    Case(
        "duplicate unix sockets and duplicate egress ports",
        """
        egress:
        - {port: {number: 0}, bind: 'unix:///a', hosts: [./*]}
        - {port: {number: 0}, bind: 'unix:///a', hosts: [./*]}
        - {port: {number: 80}, hosts: [./*]}
        - {port: {number: 80}, hosts: [./*]}
        """,
        errors=(
            (
                "spec.egress[1].bind",
                "sidecar: unix domain socket values for listeners must be unique",
            ),
            ("spec.egress[3].port.number", "sidecar: ports on IP bound listeners must be unique"),
        ),
    ),
    Case(
        "an egress proxy needs ALLOW_ANY",
        "outboundTrafficPolicy: {egressProxy: {host: proxy.example.com, port: {number: 3128}}}",
        errors=(
            (
                "spec.outboundTrafficPolicy.egressProxy",
                (
                    "sidecar: egress_proxy must be set only with ALLOW_ANY "
                    "outbound_traffic_policy mode"
                ),
            ),
        ),
    ),
    Case(
        "an egress proxy needs a port",
        "outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: proxy.example.com}}",
        errors=(
            (
                "spec.outboundTrafficPolicy.egressProxy",
                "sidecar: egress_proxy port must be non-nil",
            ),
        ),
    ),
    Case(
        "egress proxy host, subset and port",
        "outboundTrafficPolicy:"
        " {mode: ALLOW_ANY, egressProxy: {host: '*', subset: v_1, port: {}}}",
        errors=(
            (
                "spec.outboundTrafficPolicy.egressProxy.host",
                'domain name "*" invalid (label "*" invalid)',
            ),
            ("spec.outboundTrafficPolicy.egressProxy.host", "invalid destination host *"),
            ("spec.outboundTrafficPolicy.egressProxy.subset", "subset name is invalid: v_1"),
            (
                "spec.outboundTrafficPolicy.egressProxy.port.number",
                "port number 0 must be in the range",
            ),
        ),
    ),
]


@pytest.mark.parametrize("case", INVALID, ids=lambda case: case.id)
def test_invalid(case: Case) -> None:
    """Each Sidecar rule reports Istio's message on the field concerned."""
    check(case)


WARNINGS = [
    Case(
        "a selector without labels applies to the whole namespace",
        "{workloadSelector: {}, egress: [{hosts: [./*]}]}",
        warnings=(
            (
                "spec.workloadSelector",
                (
                    "sidecar: workload selector specified without labels, will be applied to all "
                    "services in namespace"
                ),
            ),
        ),
    ),
    Case(
        "hosts covered by an earlier wildcard, with . meaning the own namespace",
        "egress: [{hosts: [shop/*, ./a.example.com, other/a.b, other/a.b, other/*]}]",
        warnings=(
            ("spec.egress[0].hosts[1]", "duplicated egress host: ./a.example.com"),
            ("spec.egress[0].hosts[3]", "duplicated egress host: other/a.b"),
            ("spec.egress[0].hosts[4]", "duplicated egress host: other/*"),
        ),
    ),
    Case(
        "*/* with other namespaces",
        "egress: [{hosts: ['*/*', shop/a.b]}]",
        warnings=(
            (
                "spec.egress[0].hosts",
                "`*/*` host select all resources, no other hosts can be added",
            ),
        ),
    ),
    Case(
        "HTTP pool settings on a TCP port",
        ingress(
            "{port: {number: 9000, name: db, protocol: TCP},"
            " connectionPool: {http: {maxRetries: 1}}}"
        ),
        warnings=(
            (
                "spec.ingress[0].connectionPool.http",
                (
                    "sidecar: HTTP connection pool settings are configured for port 9000 "
                    '("db") but its protocol is not HTTP (TCP); only TCP settings will apply'
                ),
            ),
        ),
    ),
    Case(
        "ingress TLS keeps the Gateway TLS warnings",
        ingress(f"{{{HTTPS_PORT}, tls: {{{SIMPLE_FILES}, cipherSuites: [nope]}}}}"),
        warnings=(("spec.ingress[0].tls.cipherSuites", "ignoring invalid cipher suites: [nope]"),),
    ),
]


@pytest.mark.parametrize("case", WARNINGS, ids=lambda case: case.id)
def test_warnings(case: Case) -> None:
    """Istio's Sidecar warnings are kept as warnings: the Sidecar still loads."""
    check(case)
