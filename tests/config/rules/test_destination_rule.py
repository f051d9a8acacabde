"""DestinationRule rules: Istio's webhook checks (``ValidateDestinationRule``) and the CRD's.

Each table row is a ``spec`` written as YAML and what Istio makes of it: the exact errors
(field path and message), or the exact warnings of a valid resource. Valid edge cases that
a naive validator would reject have their own table.
"""

from __future__ import annotations

import textwrap

import pytest

from meshlib.config import read_yaml

Problems = list[tuple[str, str]]

HEAD = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r, namespace: shop}
spec:
"""
TP = "spec.trafficPolicy"
LB = f"{TP}.loadBalancer"
CP = f"{TP}.connectionPool"
OD = f"{TP}.outlierDetection"
LOCALITY = f"{LB}.localityLbSetting"


def _load(spec: str) -> tuple[Problems, Problems]:
    found = read_yaml(HEAD + textwrap.indent(textwrap.dedent(spec), "  "))
    return (
        [(p.path, p.message) for p in found.errors],
        [(p.path, p.message) for p in found.warnings],
    )


def _policy(policy: str) -> str:
    """A DestinationRule for ``reviews`` with ``policy`` as its top-level traffic policy."""
    return "host: reviews\ntrafficPolicy:\n" + textwrap.indent(textwrap.dedent(policy), "  ")


INVALID: list[tuple[str, str, Problems]] = [
    # host
    ("empty host", "host: ''", [("spec.host", "empty domain name not allowed")]),
    (
        "wildcard inside the host",
        "host: foo.*.com",
        [("spec.host", 'domain name "*.com" invalid (label "*" invalid)')],
    ),
    # subsets
    ("null subset", "host: r\nsubsets: [null]", [("spec.subsets[0]", "subset may not be null")]),
    (
        "duplicate subset",
        "host: r\nsubsets: [{name: a}, {name: a}]",
        [("spec.subsets[1].name", "duplicate subset names: a")],
    ),
    (
        "empty subset name",
        "host: r\nsubsets: [{labels: {v: '1'}}]",
        [("spec.subsets[0].name", "subset name cannot be empty")],
    ),
    (
        "subset name with a dot",
        "host: r\nsubsets: [{name: v1.2}]",
        [("spec.subsets[0].name", "subset name is invalid: v1.2")],
    ),
    (
        "subset label value",
        "host: r\nsubsets: [{name: a, labels: {v: 'a b'}}]",
        [("spec.subsets[0].labels.v", 'invalid tag value: "a b"')],
    ),
    (
        "subset policy errors are kept",
        "host: r\nsubsets: [{name: a, trafficPolicy: {connectionPool: {}}}]",
        [
            (
                "spec.subsets[0].trafficPolicy.connectionPool",
                "connection pool must have at least one field",
            )
        ],
    ),
    # traffic policy
    ("empty policy", _policy("{}"), [(TP, "traffic policy must have at least one field")]),
    (
        "an empty portLevelSettings list is no field",
        _policy("portLevelSettings: []"),
        [(TP, "traffic policy must have at least one field")],
    ),
    (
        "tunnel with proxy protocol",
        _policy("tunnel: {targetHost: a.b, targetPort: 1}\nproxyProtocol: {}"),
        [(TP, "tunnel and proxyProtocol must not be set together")],
    ),
    # tunnel
    (
        "tunnel protocol is case-sensitive",
        _policy("tunnel: {protocol: connect, targetHost: a.b, targetPort: 443}"),
        [(f"{TP}.tunnel.protocol", 'tunnel protocol must be "CONNECT" or "POST"')],
    ),
    (
        "tunnel without target",
        _policy("tunnel: {protocol: POST}"),
        [
            (
                f"{TP}.tunnel.targetHost",
                (
                    "tunnel target host must be valid FQDN or IP address: "
                    "empty domain name not allowed;  is not a valid IP"
                ),
            ),
            (
                f"{TP}.tunnel.targetPort",
                "tunnel target port is invalid: port number 0 must be in the range 1..65535",
            ),
        ],
    ),
    (
        "tunnel to a wildcard host",
        _policy("tunnel: {targetHost: '*.b', targetPort: 8080}"),
        [
            (
                f"{TP}.tunnel.targetHost",
                (
                    "tunnel target host must be valid FQDN or IP address: "
                    'domain name "*.b" invalid (label "*" invalid); *.b is not a valid IP'
                ),
            )
        ],
    ),
    # retryBudget (CRD)
    (
        "retry budget above 100",
        _policy("retryBudget: {percent: 150}"),
        [(f"{TP}.retryBudget.percent", "should be less than or equal to 100")],
    ),
    (
        "negative retry budget",
        _policy("retryBudget: {percent: -1}"),
        [(f"{TP}.retryBudget.percent", "should be greater than or equal to 0")],
    ),
    # outlier detection
    (
        "zero base ejection time",
        _policy("outlierDetection: {baseEjectionTime: 0s}"),
        [(f"{OD}.baseEjectionTime", "duration must be greater than 1ms")],
    ),
    (
        "interval below ms precision",
        _policy("outlierDetection: {interval: 1500us}"),
        [(f"{OD}.interval", "only durations to ms precision are supported")],
    ),
    (
        "local origin failures without split",
        _policy("outlierDetection: {consecutiveLocalOriginFailures: 3}"),
        [
            (
                OD,
                (
                    "outlier detection consecutive local origin failures is specified, but split "
                    "external local origin errors is set to false"
                ),
            )
        ],
    ),
    (
        "max ejection percent above 100",
        _policy("outlierDetection: {maxEjectionPercent: 101}"),
        [(f"{OD}.maxEjectionPercent", "percentage 101 is not in range 0..100")],
    ),
    (
        "negative min health percent",
        _policy("outlierDetection: {minHealthPercent: -1}"),
        [(f"{OD}.minHealthPercent", "percentage -1 is not in range 0..100")],
    ),
    (
        "HTTP error codes out of range",
        _policy("outlierDetection: {outlierDetectionHttpErrorCodes: [99, 404, 600]}"),
        [
            (f"{OD}.outlierDetectionHttpErrorCodes[0]", "should be greater than or equal to 100"),
            (f"{OD}.outlierDetectionHttpErrorCodes[2]", "should be less than or equal to 599"),
        ],
    ),
    # connection pool
    (
        "empty pool",
        _policy("connectionPool: {}"),
        [(CP, "connection pool must have at least one field")],
    ),
    (
        "negative HTTP limits",
        _policy(
            """
            connectionPool:
              http: {http1MaxPendingRequests: -1, http2MaxRequests: -1,
                     maxRequestsPerConnection: -1, maxRetries: -1, maxConcurrentStreams: -1}
            """
        ),
        [
            (
                f"{CP}.http.http1MaxPendingRequests",
                "http1 max pending requests must be non-negative",
            ),
            (f"{CP}.http.http2MaxRequests", "http2 max requests must be non-negative"),
            (
                f"{CP}.http.maxRequestsPerConnection",
                "max requests per connection must be non-negative",
            ),
            (f"{CP}.http.maxRetries", "max retries must be non-negative"),
            (f"{CP}.http.maxConcurrentStreams", "max concurrent streams must be non-negative"),
        ],
    ),
    (
        "negative max connections",
        _policy("connectionPool: {tcp: {maxConnections: -1}}"),
        [(f"{CP}.tcp.maxConnections", "max connections must be non-negative")],
    ),
    (
        "HTTP idle timeout 0s is not 'disabled'",
        _policy("connectionPool: {http: {idleTimeout: 0s}}"),
        [(f"{CP}.http.idleTimeout", "duration must be greater than 1ms")],
    ),
    (
        "upgrade with the client protocol",
        _policy("connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}"),
        [(f"{CP}.http", "use client protocol must not be true when H2UpgradePolicy is UPGRADE")],
    ),
    (
        "TCP durations",
        _policy(
            """
            connectionPool:
              tcp: {connectTimeout: 0.5ms, maxConnectionDuration: 0s, idleTimeout: 1500us,
                    tcpKeepalive: {time: 0s, interval: 2.0005s}}
            """
        ),
        [
            (f"{CP}.tcp.connectTimeout", "duration must be greater than 1ms"),
            (f"{CP}.tcp.maxConnectionDuration", "duration must be greater than 1ms"),
            (f"{CP}.tcp.idleTimeout", "only durations to ms precision are supported"),
            (f"{CP}.tcp.tcpKeepalive.time", "duration must be greater than 1ms"),
            (f"{CP}.tcp.tcpKeepalive.interval", "only durations to ms precision are supported"),
        ],
    ),
    (
        "negative TCP idle timeout",
        _policy("connectionPool: {tcp: {idleTimeout: -1s}}"),
        [(f"{CP}.tcp.idleTimeout", "duration must be greater than 1ms")],
    ),
    (
        "HTTP/2 keepalive needs both fields",
        _policy("connectionPool: {http: {http2KeepAlive: {}}}"),
        [
            (f"{CP}.http.http2KeepAlive.interval", "http2 keepalive interval is required"),
            (f"{CP}.http.http2KeepAlive.timeout", "http2 keepalive timeout is required"),
        ],
    ),
    (
        "HTTP/2 keepalive durations",
        _policy("connectionPool: {http: {http2KeepAlive: {interval: 0s, timeout: 1.5ms}}}"),
        [
            (f"{CP}.http.http2KeepAlive.interval", "duration must be greater than 1ms"),
            (f"{CP}.http.http2KeepAlive.timeout", "only durations to ms precision are supported"),
        ],
    ),
    # consistent hash
    (
        "cookie without a name",
        _policy("loadBalancer: {consistentHash: {httpCookie: {ttl: 0s}}}"),
        [(f"{LB}.consistentHash.httpCookie.name", "name required for HttpCookie")],
    ),
    (
        "cookie attributes",
        _policy(
            """
            loadBalancer:
              consistentHash:
                httpCookie:
                  name: c
                  attributes: [{value: x}, {name: Secure}, {name: Secure}]
            """
        ),
        [
            (
                f"{LB}.consistentHash.httpCookie.attributes[0].name",
                "cookie attribute name cannot be empty",
            ),
            (
                f"{LB}.consistentHash.httpCookie.attributes[2].name",
                "duplicate cookie attribute name: Secure",
            ),
        ],
    ),
    (
        "deprecated ring size with ring hash",
        _policy("loadBalancer: {consistentHash: {minimumRingSize: 8, ringHash: {}}}"),
        [
            (
                f"{LB}.consistentHash",
                "only one of MinimumRingSize or Maglev/Ringhash can be specified",
            )
        ],
    ),
    (
        "negative ring sizes",
        _policy(
            """
            loadBalancer:
              consistentHash: {minimumRingSize: -1, ringHash: {minimumRingSize: -2}}
            """
        ),
        [
            (f"{LB}.consistentHash.minimumRingSize", "should be greater than or equal to 0"),
            (
                f"{LB}.consistentHash.ringHash.minimumRingSize",
                "should be greater than or equal to 0",
            ),
        ],
    ),
    (
        "maglev without a table size",
        _policy("loadBalancer: {consistentHash: {maglev: {}}}"),
        [
            (f"{LB}.consistentHash.maglev.tableSize", "tableSize must be set for maglev"),
            (
                f"{LB}.consistentHash.maglev.tableSize",
                "tableSize must be a prime number for maglev",
            ),
        ],
    ),
    (
        "maglev table not prime",
        _policy("loadBalancer: {consistentHash: {maglev: {tableSize: 65535}}}"),
        [(f"{LB}.consistentHash.maglev.tableSize", "tableSize must be a prime number for maglev")],
    ),
    (
        "maglev table too large",
        _policy("loadBalancer: {consistentHash: {maglev: {tableSize: 5000011}}}"),
        [
            (
                f"{LB}.consistentHash.maglev.tableSize",
                "tableSize must be less than 5000011 for maglev",
            )
        ],
    ),
    (
        "maglev table huge and even",
        _policy("loadBalancer: {consistentHash: {maglev: {tableSize: 9223372036854775806}}}"),
        [
            (
                f"{LB}.consistentHash.maglev.tableSize",
                "tableSize must be less than 5000011 for maglev",
            ),
            (
                f"{LB}.consistentHash.maglev.tableSize",
                "tableSize must be a prime number for maglev",
            ),
        ],
    ),
    (
        "negative maglev table",
        _policy("loadBalancer: {consistentHash: {maglev: {tableSize: -7}}}"),
        [(f"{LB}.consistentHash.maglev.tableSize", "should be greater than or equal to 0")],
    ),
    # warm-up
    (
        "warm-up without duration",
        _policy("loadBalancer: {warmup: {aggression: 2}}"),
        [(f"{LB}.warmup.duration", "duration is required")],
    ),
    (
        "warm-up values",
        _policy("loadBalancer: {warmup: {duration: 0s, minimumPercent: -1, aggression: 0.5}}"),
        [
            (f"{LB}.warmup.duration", "duration must be greater than 1ms"),
            (
                f"{LB}.warmup.minimumPercent",
                "minimumPercent value should be greater than or equal to 0",
            ),
            (f"{LB}.warmup.aggression", "aggression should be greater than or equal to 1"),
        ],
    ),
    (
        "warm-up minimum above 100",
        _policy("loadBalancer: {warmup: {duration: 1s, minimumPercent: 100.5}}"),
        [
            (
                f"{LB}.warmup.minimumPercent",
                "minimumPercent value should be less than or equal to 100",
            )
        ],
    ),
    (
        "deprecated warm-up seconds",
        _policy("loadBalancer: {simple: ROUND_ROBIN, warmupDurationSecs: 0s}"),
        [(f"{LB}.warmupDurationSecs", "duration must be greater than 1ms")],
    ),
    # locality
    (
        "distribute and failover",
        _policy(
            """
            loadBalancer:
              localityLbSetting:
                distribute: [{from: a, to: {b: 100}}]
                failover: [{from: a, to: a}]
            """
        ),
        [(LOCALITY, "can not simultaneously specify 'distribute' and 'failover'")],
    ),
    (
        "failover with a topology priority",
        _policy(
            """
            outlierDetection: {}
            loadBalancer:
              localityLbSetting:
                failover: [{from: a, to: b}]
                failoverPriority: [custom, topology.kubernetes.io/zone, topology.istio.io/subzone]
            """
        ),
        [
            (
                f"{LOCALITY}.failoverPriority[1]",
                (
                    "can not simultaneously set 'failover' and topology label "
                    "'topology.kubernetes.io/zone' in 'failover_priority'"
                ),
            )
        ],
    ),
    (
        "locality weight of 0 stops the checks",
        _policy(
            """
            loadBalancer:
              localityLbSetting:
                distribute: [{from: 'a/*', to: {'b/*': 0, c: 100}}, {from: 'a/*', to: {d: 1}}]
            """
        ),
        [(f'{LOCALITY}.distribute[0].to["b/*"]', "locality weight must be in range [1, 100]")],
    ),
    (
        "locality total",
        _policy(
            "loadBalancer: {localityLbSetting: {distribute: [{from: a, to: {b: 60, c: 30}}]}}"
        ),
        [(f"{LOCALITY}.distribute[0].to", "total locality weight 90 != 100")],
    ),
    (
        "null distribute entry",
        _policy("loadBalancer: {localityLbSetting: {distribute: [null]}}"),
        [(f"{LOCALITY}.distribute[0].to", "total locality weight 0 != 100")],
    ),
    (
        "wildcard before the end",
        _policy("loadBalancer: {localityLbSetting: {distribute: [{from: a, to: {'*/z': 100}}]}}"),
        [
            (
                f'{LOCALITY}.distribute[0].to["*/z"]',
                "locality */z wildcard '*' number can not exceed 1 and must be in the end",
            )
        ],
    ),
    (
        "destinations overlap",
        _policy(
            """
            loadBalancer:
              localityLbSetting: {distribute: [{from: a, to: {'r/*': 50, r/z/s: 50}}]}
            """
        ),
        [
            (
                f'{LOCALITY}.distribute[0].to["r/z/s"]',
                "locality r/z/s overlap with previous specified ones",
            )
        ],
    ),
    (
        "sources overlap",
        _policy(
            """
            loadBalancer:
              localityLbSetting:
                distribute: [{from: r/z, to: {a: 100}}, {from: r/z/s, to: {b: 100}}]
            """
        ),
        [
            (
                f"{LOCALITY}.distribute[1].from",
                "locality r/z/s overlap with previous specified ones",
            )
        ],
    ),
    (
        "empty locality part",
        _policy("loadBalancer: {localityLbSetting: {distribute: [{from: r/, to: {a: 100}}]}}"),
        [
            (
                f"{LOCALITY}.distribute[0].from",
                "locality r/ must not contain empty region/zone/subzone info",
            )
        ],
    ),
    (
        "failover checks",
        _policy(
            """
            outlierDetection: {}
            loadBalancer:
              localityLbSetting:
                failover: [{from: r, to: r}, {from: r/z, to: s}, {from: r, to: '*'}]
            """
        ),
        [
            (
                f"{LOCALITY}.failover[0]",
                "locality lb failover settings must specify different regions",
            ),
            (f"{LOCALITY}.failover[1]", "locality lb failover only specify region"),
            (
                f"{LOCALITY}.failover[2]",
                "locality lb failover region should not contain '*' wildcard",
            ),
        ],
    ),
    # TLS
    (
        "insecure SIMPLE with a CA",
        _policy("tls: {mode: SIMPLE, caCertificates: /ca.pem, insecureSkipVerify: true}"),
        [
            (
                f"{TP}.tls",
                (
                    "cannot specify CaCertificates or CredentialName or SubjectAltNames when "
                    "InsecureSkipVerify is set true"
                ),
            )
        ],
    ),
    (
        "insecure MUTUAL with SANs",
        _policy(
            "tls: {mode: MUTUAL, clientCertificate: c, privateKey: k, subjectAltNames: [a], "
            "insecureSkipVerify: true}"
        ),
        [
            (
                f"{TP}.tls",
                (
                    "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify "
                    "is set true"
                ),
            )
        ],
    ),
    (
        "credential name with a certificate",
        _policy("tls: {mode: MUTUAL, credentialName: c, caCrl: /crl.pem}"),
        [
            (
                f"{TP}.tls",
                (
                    "cannot specify client certificates or CA certificate or CA CRL If "
                    "credentialName is set"
                ),
            )
        ],
    ),
    (
        "MUTUAL without certificate and key",
        _policy("tls: {mode: MUTUAL}"),
        [
            (f"{TP}.tls.clientCertificate", "client certificate required for mutual tls"),
            (f"{TP}.tls.privateKey", "private key required for mutual tls"),
        ],
    ),
    (
        "configmap credential in another namespace",
        _policy("tls: {mode: SIMPLE, credentialName: 'configmap://other/ca'}"),
        [
            (
                f"{TP}.tls.credentialName",
                (
                    "invalid configmap:// credentialName: namespace must match the configuration "
                    'namespace "shop"'
                ),
            )
        ],
    ),
    (
        "configmap credential without namespace",
        _policy("tls: {mode: SIMPLE, credentialName: 'configmap://ca'}"),
        [
            (
                f"{TP}.tls.credentialName",
                (
                    'invalid configmap:// credentialName: invalid resource name "configmap://ca". '
                    "Expected namespace and name"
                ),
            )
        ],
    ),
    # port-level settings
    (
        "null port policy",
        _policy("portLevelSettings: [null]"),
        [(f"{TP}.portLevelSettings[0]", "traffic policy may not be null")],
    ),
    (
        "port policy without port or settings",
        _policy("portLevelSettings: [{}]"),
        [
            (f"{TP}.portLevelSettings[0].port", "portTrafficPolicy must have valid port"),
            (f"{TP}.portLevelSettings[0]", "port traffic policy must have at least one field"),
        ],
    ),
    (
        "port policy errors are kept",
        _policy("portLevelSettings: [{port: {number: 80}, outlierDetection: {interval: 0s}}]"),
        [
            (
                f"{TP}.portLevelSettings[0].outlierDetection.interval",
                "duration must be greater than 1ms",
            )
        ],
    ),
    # exportTo (shared rules, DestinationRule flavour)
    (
        "export to nobody",
        "host: r\nexportTo: ['~']",
        [("spec.exportTo[0]", "exportTo ~ (none) is not allowed for Istio configuration objects")],
    ),
    (
        "export with a selector beyond the namespace",
        "host: r\nworkloadSelector: {matchLabels: {app: a}}\nexportTo: [., other]",
        [
            (
                "spec.exportTo",
                "destination rule with workload selector cannot have multiple entries in exportTo",
            )
        ],
    ),
    # workload selector
    (
        "selector key and value rules",
        "host: r\nworkloadSelector: {matchLabels: {'': v, 'a*': b, c: '*'}}",
        [
            (
                'spec.workloadSelector.matchLabels[""]',
                'empty key is not supported in selector: "=v"',
            ),
            (
                'spec.workloadSelector.matchLabels["a*"]',
                'wildcard is not supported in selector: "a*=b"',
            ),
            (
                "spec.workloadSelector.matchLabels.c",
                'wildcard is not supported in selector: "c=*"',
            ),
        ],
    ),
    (
        "selector value too long",
        f"host: r\nworkloadSelector: {{matchLabels: {{app: {'a' * 64}}}}}",
        [("spec.workloadSelector.matchLabels.app", "may not be longer than 63 characters")],
    ),
]


VALID: list[tuple[str, str]] = [
    ("wildcard host", "host: '*.example.com'"),
    ("catch-all host", "host: '*'"),
    ("short upper-case host", "host: Reviews"),
    ("upper-case subset name", "host: r\nsubsets: [{name: V1, labels: {version: ''}}]"),
    ("retry budget alone counts as a field", _policy("retryBudget: {percent: 0}")),
    ("retry budget of 100", _policy("retryBudget: {percent: 100, minRetryConcurrency: 0}")),
    ("empty proxy protocol", _policy("proxyProtocol: {}")),
    (
        "tunnel to an IPv6 address",
        _policy("tunnel: {protocol: CONNECT, targetHost: '2001:db8::1', targetPort: 1}"),
    ),
    ("empty load balancer", _policy("loadBalancer: {}")),
    ("consistent hash without a key", _policy("loadBalancer: {consistentHash: {}}")),
    (
        "maglev table of 1 counts as prime",
        _policy("loadBalancer: {consistentHash: {maglev: {tableSize: 1}}}"),
    ),
    (
        "default maglev table",
        _policy("loadBalancer: {consistentHash: {maglev: {tableSize: 65537}}}"),
    ),
    (
        "largest prime table",
        _policy("loadBalancer: {consistentHash: {maglev: {tableSize: 4999999}}}"),
    ),
    ("empty cookie header name", _policy("loadBalancer: {consistentHash: {httpHeaderName: ''}}")),
    (
        "cookie attribute without value",
        _policy(
            "loadBalancer: {consistentHash: {httpCookie: {name: c, attributes: [{name: Secure}]}}}"
        ),
    ),
    (
        "warm-up bounds",
        _policy("loadBalancer: {warmup: {duration: 1ms, minimumPercent: 100, aggression: 1}}"),
    ),
    (
        "warm-up minimum of 0",
        _policy("loadBalancer: {warmup: {duration: 10s, minimumPercent: 0}}"),
    ),
    ("TCP idle timeout 0s disables it", _policy("connectionPool: {tcp: {idleTimeout: 0s}}")),
    (
        "TCP idle timeout under 1ms disables it",
        _policy("connectionPool: {tcp: {idleTimeout: 500us}}"),
    ),
    ("empty tcp settings", _policy("connectionPool: {tcp: {}}")),
    (
        "client protocol without upgrade",
        _policy(
            "connectionPool: {http: {h2UpgradePolicy: DO_NOT_UPGRADE, useClientProtocol: true}}"
        ),
    ),
    (
        "HTTP/2 keepalive",
        _policy("connectionPool: {http: {http2KeepAlive: {interval: 15s, timeout: 5s}}}"),
    ),
    (
        "percent bounds",
        _policy("outlierDetection: {maxEjectionPercent: 100, minHealthPercent: 0}"),
    ),
    (
        "local origin failures with split",
        _policy(
            """
            outlierDetection:
              splitExternalLocalOriginErrors: true
              consecutiveLocalOriginFailures: 3
            """
        ),
    ),
    (
        "local origin failures of 0",
        _policy("outlierDetection: {consecutiveLocalOriginFailures: 0}"),
    ),
    (
        "HTTP error codes at the bounds",
        _policy("outlierDetection: {outlierDetectionHttpErrorCodes: [100, 599]}"),
    ),
    (
        "distinct localities",
        _policy(
            """
            loadBalancer:
              localityLbSetting:
                distribute:
                - from: us/east/1a
                  to: {'eu/*': 10, 'us/*': 30, ap/tokyo/rack1: 25, ap/osaka: 15, 'sa/rio/*': 20}
                - {from: 'other/*', to: {'*': 100}}
            """
        ),
    ),
    (
        "failover with custom priority labels",
        _policy(
            """
            outlierDetection: {consecutive5xxErrors: 1}
            loadBalancer:
              localityLbSetting:
                failover: [{from: us-east, to: eu-west}]
                failoverPriority: [topology.istio.io/network, my-label=x]
            """
        ),
    ),
    (
        "ISTIO_MUTUAL ignores file fields",
        _policy("tls: {mode: ISTIO_MUTUAL, clientCertificate: c, insecureSkipVerify: true}"),
    ),
    (
        "MUTUAL with a credential and insecure",
        _policy("tls: {mode: MUTUAL, credentialName: c, insecureSkipVerify: true}"),
    ),
    (
        "insecure SIMPLE with an empty SAN list",
        _policy("tls: {mode: SIMPLE, subjectAltNames: [], insecureSkipVerify: true}"),
    ),
    (
        "configmap credential in the own namespace",
        _policy("tls: {mode: SIMPLE, credentialName: 'configmap://shop/ca'}"),
    ),
    ("SIMPLE with only a credential", _policy("tls: {mode: SIMPLE, credentialName: c, sni: a.b}")),
    (
        "port policy with an empty port",
        _policy("portLevelSettings: [{port: {}, loadBalancer: {simple: RANDOM}}]"),
    ),
    (
        "export to the own namespace with a selector",
        "host: r\nworkloadSelector: {matchLabels: {app: a}}\nexportTo: [shop]",
    ),
    ("export to several namespaces", "host: r\nexportTo: [., other, Upper]"),
]


WARNED: list[tuple[str, str, Problems]] = [
    (
        "deprecated consecutive errors",
        _policy("outlierDetection: {consecutiveErrors: -3}"),
        [
            (
                f"{OD}.consecutiveErrors",
                (
                    "outlier detection consecutive errors is deprecated, use "
                    "consecutiveGatewayErrors or consecutive5xxErrors instead"
                ),
            )
        ],
    ),
    (
        "deprecated ring size",
        _policy("loadBalancer: {consistentHash: {minimumRingSize: 1024, useSourceIp: true}}"),
        [
            (
                f"{LB}.consistentHash.minimumRingSize",
                (
                    "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's "
                    "RingHash configuration instead"
                ),
            )
        ],
    ),
    (
        "failover without outlier detection",
        _policy(
            """
            loadBalancer:
              localityLbSetting: {failoverPriority: [topology.kubernetes.io/region]}
            """
        ),
        [(LOCALITY, "outlier detection policy must be provided for failover")],
    ),
    (
        "selector without labels",
        "host: r\nworkloadSelector: {}",
        [("spec.workloadSelector", "workload selector specified without labels")],
    ),
]


# Istio keeps only the errors of subset and port-level policies (``appendErrors``).
DROPPED_WARNINGS: list[tuple[str, str]] = [
    (
        "subset",
        "host: r\nsubsets: [{name: a, trafficPolicy: {outlierDetection: {consecutiveErrors: 5}}}]",
    ),
    (
        "subset failover",
        """
        host: r
        subsets:
        - name: a
          trafficPolicy: {loadBalancer: {localityLbSetting: {failover: [{from: a, to: b}]}}}
        """,
    ),
    (
        "port level",
        _policy(
            """
            portLevelSettings:
            - port: {number: 80}
              loadBalancer: {consistentHash: {minimumRingSize: 4}}
            """
        ),
    ),
]


@pytest.mark.parametrize(("spec", "errors"), [pytest.param(s, e, id=i) for i, s, e in INVALID])
def test_invalid_rules_report_istios_errors(spec: str, errors: Problems) -> None:
    """Each broken rule is reported on its field with Istio's message, and nothing else."""
    found, _ = _load(spec)
    assert found == errors


@pytest.mark.parametrize("spec", [pytest.param(s, id=i) for i, s in VALID])
def test_valid_edge_cases_pass_cleanly(spec: str) -> None:
    """Edge cases Istio accepts load with no error and no warning."""
    assert _load(spec) == ([], [])


@pytest.mark.parametrize(("spec", "warnings"), [pytest.param(s, w, id=i) for i, s, w in WARNED])
def test_valid_with_warning(spec: str, warnings: Problems) -> None:
    """Istio's warnings are reported as warnings, on their field, and the rule stays valid."""
    assert _load(spec) == ([], warnings)


@pytest.mark.parametrize("spec", [pytest.param(s, id=i) for i, s in DROPPED_WARNINGS])
def test_nested_warnings_are_dropped_as_istio_drops_them(spec: str) -> None:
    """Warnings inside subset and port-level policies are dropped, as Istio's webhook does."""
    assert _load(spec) == ([], [])


def test_too_many_port_policies() -> None:
    """The CRD caps ``portLevelSettings`` at 4096 entries."""
    entries = ", ".join(f"{{port: {{number: {n}}}, tls: {{}}}}" for n in range(4097))
    errors, _ = _load(_policy(f"portLevelSettings: [{entries}]"))
    assert errors == [(f"{TP}.portLevelSettings", "must have at most 4096 items")]


def test_too_many_selector_labels() -> None:
    """The CRD caps ``workloadSelector.matchLabels`` at 4096 entries."""
    labels = ", ".join(f"k{n}: v" for n in range(4097))
    errors, _ = _load(f"host: r\nworkloadSelector: {{matchLabels: {{{labels}}}}}")
    assert errors == [("spec.workloadSelector.matchLabels", "must have at most 4096 properties")]


def test_paths_keep_the_prefix_of_list_items() -> None:
    """Inside a ``List``, problems are reported under ``items[n].spec``."""
    text = """\
    apiVersion: v1
    kind: List
    items:
    - apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata: {name: r}
      spec: {host: r, trafficPolicy: {connectionPool: {}}}
    """
    found = read_yaml(textwrap.dedent(text))
    assert [(p.path, p.message) for p in found.errors] == [
        (
            "items[0].spec.trafficPolicy.connectionPool",
            "connection pool must have at least one field",
        )
    ]


def test_exported_to_the_default_namespace() -> None:
    """``.`` stands for the resource's namespace, which defaults to the loader's."""
    found = read_yaml(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\n"
        "spec: {host: r, exportTo: [., default]}",
    )
    assert [(p.path, p.message) for p in found.errors] == [
        ("spec.exportTo[1]", "duplicate entries in exportTo for entry default")
    ]
