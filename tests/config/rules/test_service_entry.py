"""ServiceEntry rules: ``ValidateServiceEntry`` and the CRD's schema and CEL rules.

Each row is a ``spec`` written as YAML and Istio's verdict: the exact errors (field path
and message), the exact warnings of a valid entry, or nothing at all.
"""

from __future__ import annotations

import textwrap

import pytest

from meshlib.config import read_yaml

Problems = list[tuple[str, str]]

HEAD = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: s, namespace: shop}
"""
HTTP = "ports: [{number: 80, name: http, protocol: HTTP}]\n"


def _load(spec: str) -> tuple[Problems, Problems]:
    found = read_yaml(HEAD + "spec:\n" + textwrap.indent(textwrap.dedent(spec), "  "))
    return (
        [(p.path, p.message) for p in found.errors],
        [(p.path, p.message) for p in found.warnings],
    )


INVALID: list[tuple[str, str, Problems]] = [
    # hosts
    ("no hosts", "{}", [("spec.hosts", "service entry must have at least one host")]),
    ("empty hosts", "hosts: []", [("spec.hosts", "service entry must have at least one host")]),
    ("catch-all host", "hosts: ['*']\n" + HTTP, [("spec.hosts[0]", "invalid host *")]),
    (
        "wildcard after the first letter",
        "hosts: [foo*.com]\n" + HTTP,
        [("spec.hosts[0]", 'domain name "foo*.com" invalid (label "foo*" invalid)')],
    ),
    (
        "IP address as a host",
        "hosts: [1.2.3.4]\n" + HTTP,
        [
            (
                "spec.hosts[0]",
                'domain name "2.3.4" invalid (top level domain "4" cannot be all-numeric)',
            )
        ],
    ),
    # addresses
    (
        "bad addresses",
        "hosts: [a.com]\naddresses: [10.0.0.0/33, 1.2.3, '', 010.1.1.1]\n" + HTTP,
        [
            ("spec.addresses[0]", "10.0.0.0/33 is not a valid CIDR block"),
            ("spec.addresses[1]", "1.2.3 is not a valid IP"),
            ("spec.addresses[2]", " is not a valid IP"),
            ("spec.addresses[3]", "010.1.1.1 is not a valid IP"),
        ],
    ),
    (
        "address longer than 64 characters (CRD)",
        f"hosts: [a.com]\naddresses: ['fe80::1%{'e' * 60}']\n" + HTTP,
        [("spec.addresses[0]", "may not be longer than 64 characters")],
    ),
    (
        "CIDR block with DNS resolution",
        "hosts: [a.com]\naddresses: [10.0.0.0/8]\nresolution: DNS\n" + HTTP,
        [("spec", "CIDR addresses are allowed only for NONE/STATIC resolution types")],
    ),
    # ports
    (
        "null port",
        "hosts: [a.com]\naddresses: [10.0.0.1]\nports: [null]",
        [("spec.ports[0]", "service entry port may not be null")],
    ),
    (
        "duplicate port name and number",
        """
        hosts: [a.com]
        ports:
        - {number: 80, name: a, protocol: HTTP}
        - {number: 80, name: a, protocol: HTTP}
        """,
        [
            ("spec.ports[1].name", 'service entry port name "a" already defined'),
            ("spec.ports[1].number", "service entry port 80 already defined"),
        ],
    ),
    (
        "bad port fields",
        """
        hosts: [a.com]
        addresses: [10.0.0.1]
        ports:
        - {number: 0, name: http_1, protocol: h2c, targetPort: 65536}
        - {number: 1, protocol: TCP}
        """,
        [
            ("spec.ports[0].targetPort", "port number 65536 must be in the range 1..65535"),
            ("spec.ports[0].name", "invalid port name: http_1"),
            ("spec.ports[0].protocol", "unsupported protocol: h2c"),
            ("spec.ports[0].number", "port number 0 must be in the range 1..65535"),
            ("spec.ports[1].name", "invalid port name: "),
        ],
    ),
    # resolution NONE
    (
        "endpoints with resolution NONE",
        "hosts: [a.com]\nendpoints: [{address: 10.0.0.1}]\n" + HTTP,
        [("spec.endpoints", "no endpoints should be provided for resolution type none")],
    ),
    (
        "an empty endpoints list with resolution NONE (CRD)",
        "hosts: [a.com]\nresolution: NONE\nendpoints: []\n" + HTTP,
        [("spec.endpoints", "NONE mode cannot set endpoints")],
    ),
    # selector
    (
        "selector with endpoints",
        "hosts: [a.com]\nresolution: STATIC\nworkloadSelector: {labels: {app: a}}\n"
        "endpoints: [{address: 10.0.0.1}]\n" + HTTP,
        [("spec", "only one of WorkloadSelector or Endpoints is allowed in Service Entry")],
    ),
    (
        "selector with an empty endpoints list (CRD)",
        "hosts: [a.com]\nresolution: DNS\nworkloadSelector: {labels: {app: a}}\nendpoints: []\n"
        + HTTP,
        [("spec", "only one of WorkloadSelector or Endpoints can be set")],
    ),
    (
        "selector errors stop the other checks",
        "hosts: ['*']\nworkloadSelector: {labels: {'': a, b: '*'}}",
        [
            ('spec.workloadSelector.labels[""]', 'empty key is not supported in selector: "=a"'),
            ("spec.workloadSelector.labels.b", 'wildcard is not supported in selector: "b=*"'),
        ],
    ),
    (
        "selector value too long (CRD)",
        f"hosts: [a.com]\nresolution: DNS\nworkloadSelector: {{labels: {{app: {'a' * 64}}}}}\n"
        + HTTP,
        [("spec.workloadSelector.labels.app", "may not be longer than 63 characters")],
    ),
    # resolution STATIC
    (
        "static endpoint problems",
        """
        hosts: [a.com]
        resolution: STATIC
        ports: [{number: 80, name: http, protocol: HTTP}]
        endpoints:
        - address: a.com
        - null
        - {address: 10.0.0.2, ports: {grpc: 8080}}
        - {locality: r/z}
        - {address: 10.0.0.3, ports: {http: 65536}, labels: {'a b': c}}
        """,
        [
            ("spec.endpoints[0].address", 'endpoint address "a.com" is not a valid IP address'),
            ("spec.endpoints[1]", "endpoint cannot be nil"),
            (
                "spec.endpoints[2].ports.grpc",
                "endpoint port 8080 is not defined by the service entry",
            ),
            ("spec.endpoints[3].address", "address is required"),
            ("spec.endpoints[4].ports.http", "port number 65536 must be in the range 1..65535"),
            ('spec.endpoints[4].labels["a b"]', 'invalid tag key: "a b"'),
        ],
    ),
    (
        "unix endpoint needs exactly one service port",
        """
        hosts: [a.com]
        resolution: STATIC
        addresses: [10.0.0.1]
        endpoints: [{address: 'unix:///a.sock'}]
        ports:
        - {number: 80, name: http, protocol: HTTP}
        - {number: 81, name: grpc, protocol: GRPC}
        """,
        [("spec.endpoints[0]", "exactly 1 service port required for unix endpoints")],
    ),
    (
        "static endpoint schema (CRD)",
        f"""
        hosts: [a.com]
        resolution: STATIC
        ports: [{{number: 80, name: {"p" * 63}, protocol: HTTP}}]
        endpoints:
        - {{address: 10.0.0.1, ports: {{{"p" * 63}: 80}}}}
        - {{address: 'unix://@a/'}}
        """,
        [
            ("spec.endpoints[0].ports." + "p" * 63, "port name must be valid"),
            ("spec.endpoints[1].address", "UDS may not be a dir"),
        ],
    ),
    # resolution DNS and DNS_ROUND_ROBIN
    (
        "wildcard host without endpoints (first bad host only)",
        "hosts: ['*.a.com', '*.b.com']\nresolution: DNS\n" + HTTP,
        [
            (
                "spec.hosts[0]",
                (
                    "hosts must be FQDN or contain only prefix wildcards if no endpoints are "
                    'provided for resolution mode DNS, domain name "*.a.com" invalid (label "*" '
                    "invalid)"
                ),
            )
        ],
    ),
    (
        "two endpoints with DNS round robin",
        """
        hosts: [a.com]
        resolution: DNS_ROUND_ROBIN
        endpoints: [{address: b.com}, {address: c.com}]
        ports: [{number: 80, name: http, protocol: HTTP}]
        """,
        [
            (
                "spec.endpoints",
                "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN",
            )
        ],
    ),
    (
        "DNS endpoint problems",
        """
        hosts: [a.com]
        resolution: DNS
        ports: [{number: 80, name: http, protocol: HTTP}]
        endpoints:
        - {address: 'unix:///a.sock'}
        - {network: n1}
        - {address: b.com, ports: {grpc: 81, Bad_Name: 82}, labels: {k: 'v v'}}
        - null
        """,
        [
            (
                "spec.endpoints[0].address",
                'endpoint address "unix:///a.sock" is not a valid FQDN or an IP address',
            ),
            (
                "spec.endpoints[1].address",
                'endpoint address "" is not a valid FQDN or an IP address',
            ),
            ("spec.endpoints[2].labels.k", 'invalid tag value: "v v"'),
            (
                "spec.endpoints[2].ports.grpc",
                "endpoint port 81 is not defined by the service entry",
            ),
            (
                "spec.endpoints[2].ports.Bad_Name",
                "endpoint port 82 is not defined by the service entry",
            ),
            ("spec.endpoints[2].ports.Bad_Name", "invalid port name: Bad_Name"),
            ("spec.endpoints[3]", "endpoint cannot be nil"),
        ],
    ),
    (
        "several hosts with a TCP port",
        """
        hosts: [a.com, b.com]
        resolution: DNS
        addresses: [10.0.0.1]
        ports:
        - {number: 80, name: http, protocol: HTTP}
        - {number: 1, name: a, protocol: TCP}
        - {number: 2, name: b}
        """,
        [("spec.ports[1]", "multiple hosts provided with non-HTTP, non-TLS ports")],
    ),
    # resolution DYNAMIC_DNS
    (
        "dynamic DNS rules",
        """
        hosts: [a.com, '*.b.com']
        resolution: DYNAMIC_DNS
        addresses: [10.0.0.1]
        endpoints: [{address: 10.0.0.2}]
        ports:
        - {number: 443, name: https, protocol: HTTPS}
        - {number: 80, name: http, protocol: http}
        """,
        [
            ("spec.hosts[0]", "host must be wildcarded for resolution mode DYNAMIC_DNS"),
            (
                "spec.addresses",
                (
                    "addresses cannot be set for resolution type DYNAMIC_DNS. HTTP route domains "
                    "will only be generatedfrom the hosts field values"
                ),
            ),
            (
                "spec.endpoints",
                (
                    "endpoints cannot be set for resolution type DYNAMIC_DNS. Destination IP "
                    "address determined from hostsfield values"
                ),
            ),
            (
                "spec.ports[0].protocol",
                (
                    "only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type "
                    "DYNAMIC_DNS"
                ),
            ),
        ],
    ),
    (
        "dynamic DNS without hosts",
        "resolution: DYNAMIC_DNS\n" + HTTP,
        [
            ("spec.hosts", "service entry must have at least one host"),
            (
                "spec.hosts",
                "at least one wildcard host must be provided for resolution type DYNAMIC_DNS",
            ),
        ],
    ),
    # exportTo (shared rules, ServiceEntry flavour)
    (
        "export to nobody and someone",
        "hosts: [a.com]\nexportTo: ['~', other]\n" + HTTP,
        [("spec.exportTo", "cannot export service entry to no one (~) and someone")],
    ),
]


WARNED: list[tuple[str, str, Problems]] = [
    (
        "partial wildcard",
        "hosts: ['*x.com']\n" + HTTP,
        [("spec.hosts[0]", 'partial wildcard "*x.com" not allowed')],
    ),
    (
        "selector with resolution NONE",
        "hosts: [a.com]\nworkloadSelector: {labels: {app: a}}\n" + HTTP,
        [
            (
                "spec.workloadSelector",
                "workloadSelector should not be set when resolution mode is NONE",
            )
        ],
    ),
    (
        "selector without labels",
        "hosts: [a.com]\nresolution: DNS\nworkloadSelector: {}\n" + HTTP,
        [
            (
                "spec.workloadSelector",
                (
                    "service entry: workload selector specified without labels, will be applied "
                    "to all services in namespace"
                ),
            )
        ],
    ),
    (
        "TCP or unset protocols without addresses",
        (
            "hosts: [a.com]\nports: [{number: 1, name: a, protocol: TCP}, {number: 2, name: b}, "
            "{number: 3, name: c, protocol: tcp}]"
        ),
        [
            (
                "spec.ports[0]",
                (
                    "addresses are required for ports serving TCP (or unset) protocol when IP "
                    "Autoallocation is not enabled"
                ),
            ),
            (
                "spec.ports[1]",
                (
                    "addresses are required for ports serving TCP (or unset) protocol when IP "
                    "Autoallocation is not enabled"
                ),
            ),
        ],
    ),
    (
        "several hosts with an address and a TLS port",
        """
        hosts: [a.com, b.com]
        resolution: DNS
        addresses: [10.0.0.1]
        ports:
        - {number: 80, name: http, protocol: HTTP}
        - {number: 443, name: https, protocol: HTTPS}
        """,
        [
            (
                "spec",
                (
                    "service entry can not have more than one host specified simultaneously with "
                    "address and tcp port"
                ),
            )
        ],
    ),
    (
        "static endpoint on another network",
        "hosts: [a.com]\nresolution: STATIC\nendpoints: [{network: n2}]\n" + HTTP,
        [("spec.endpoints[0]", 'address is unset with network "n2"')],
    ),
]


VALID: list[tuple[str, str]] = [
    (
        "short host names with endpoints",
        """
        hosts: [catalog, catalog.shop.example]
        resolution: DNS
        endpoints: [{address: lb.shop.internal, ports: {http: 8443}}]
        ports: [{number: 80, name: http, protocol: HTTP}]
        """,
    ),
    ("FQDN hosts without endpoints", "hosts: [a.com, B.Example.org.]\nresolution: DNS\n" + HTTP),
    (
        "wildcard host with endpoints",
        """
        hosts: ['*.a.com']
        resolution: DNS
        endpoints: [{address: 1.1.1.1}, {address: b.a.com}]
        ports: [{number: 80, name: http, protocol: HTTP}]
        """,
    ),
    (
        "DNS round robin without endpoints",
        "hosts: [a.com]\nresolution: DNS_ROUND_ROBIN\nendpoints: []\n" + HTTP,
    ),
    ("static without endpoints", "hosts: [a.com]\nresolution: STATIC\n" + HTTP),
    (
        "static with CIDR and endpoints",
        """
        hosts: [a.com]
        resolution: STATIC
        addresses: [192.168.0.0/24, '2001:db8::/32']
        endpoints: [{address: 1.1.1.1, ports: {http: 8080}}]
        ports: [{number: 80, name: http, protocol: HTTP}]
        """,
    ),
    ("CIDR with host bits", "hosts: [a.com]\naddresses: [10.1.2.3/8, '::ffff:1.2.3.4']\n" + HTTP),
    (
        "unix endpoint with one service port",
        """
        hosts: [socket.shop]
        resolution: STATIC
        endpoints: [{address: 'unix:///a.sock'}, {address: 'unix://@b'}]
        ports: [{number: 1, name: grpc, protocol: GRPC}]
        """,
    ),
    (
        "protocol names are case-insensitive",
        """
        hosts: [a.com]
        addresses: [10.0.0.1]
        ports:
        - {number: 1, name: a, protocol: Http}
        - {number: 2, name: b, protocol: GRPC-WEB}
        - {number: 3, name: c, protocol: mongo}
        - {number: 4, name: d, protocol: udp}
        """,
    ),
    (
        "repeated target port",
        """
        hosts: [a.com]
        resolution: DNS
        ports:
        - {number: 80, name: a, protocol: HTTP, targetPort: 8080}
        - {number: 81, name: b, protocol: HTTP, targetPort: 8080}
        """,
    ),
    (
        "several hosts, HTTP and TLS ports",
        """
        hosts: [a.com, b.com]
        resolution: DNS
        ports:
        - {number: 80, name: a, protocol: HTTP2}
        - {number: 443, name: b, protocol: TLS}
        """,
    ),
    (
        "several hosts with TCP and NONE resolution",
        """
        hosts: [a.com, b.com]
        addresses: [10.0.0.1]
        ports: [{number: 1, name: a, protocol: TCP}]
        """,
    ),
    (
        "dynamic DNS",
        """
        hosts: ['*.a.com', '*b.com']
        resolution: DYNAMIC_DNS
        location: MESH_INTERNAL
        ports: [{number: 1, name: a, protocol: grpc}]
        """,
    ),
    ("export to nobody", "hosts: [a.com]\nexportTo: ['~']\n" + HTTP),
    (
        "subject alt names are free-form",
        "hosts: [a.com]\nsubjectAltNames: ['spiffe://x/y', '']\n" + HTTP,
    ),
]


@pytest.mark.parametrize(("spec", "errors"), [pytest.param(s, e, id=i) for i, s, e in INVALID])
def test_invalid_entries_report_istios_errors(spec: str, errors: Problems) -> None:
    """Each broken rule is reported on its field with Istio's message, and nothing else."""
    found, _ = _load(spec)
    assert found == errors


@pytest.mark.parametrize(("spec", "warnings"), [pytest.param(s, w, id=i) for i, s, w in WARNED])
def test_valid_with_warning(spec: str, warnings: Problems) -> None:
    """Istio's warnings are reported as warnings, on their field, and the entry stays valid."""
    assert _load(spec) == ([], warnings)


@pytest.mark.parametrize("spec", [pytest.param(s, id=i) for i, s in VALID])
def test_valid_edge_cases_pass_cleanly(spec: str) -> None:
    """Entries Istio accepts load with no error and no warning."""
    assert _load(spec) == ([], [])


def test_spec_is_required() -> None:
    """The CRD requires ``spec`` on a ServiceEntry."""
    found = read_yaml(HEAD)
    assert [(p.path, p.message) for p in found.errors] == [("spec", "spec is required")]


def test_list_limits() -> None:
    """The CRD caps hosts, addresses and ports at 256 entries, endpoints at 4096."""
    hosts = ", ".join(f"h{n}.com" for n in range(257))
    addresses = ", ".join(f"10.0.{n // 256}.{n % 256}" for n in range(257))
    ports = ", ".join(f"{{number: {n + 1}, name: p{n}, protocol: HTTP}}" for n in range(257))
    endpoints = ", ".join("{address: e.com}" for _ in range(4097))
    errors, _ = _load(
        f"hosts: [{hosts}]\naddresses: [{addresses}]\nports: [{ports}]\n"
        f"resolution: DNS\nendpoints: [{endpoints}]"
    )
    assert errors == [
        ("spec.hosts", "must have at most 256 items"),
        ("spec.addresses", "must have at most 256 items"),
        ("spec.ports", "must have at most 256 items"),
        ("spec.endpoints", "must have at most 4096 items"),
    ]
