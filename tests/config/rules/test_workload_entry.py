"""WorkloadEntry rules: ``ValidateWorkloadEntry`` and the CRD's schema and CEL rules.

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
kind: WorkloadEntry
metadata: {name: w, namespace: shop}
"""


def _load(spec: str) -> tuple[Problems, Problems]:
    found = read_yaml(HEAD + "spec:\n" + textwrap.indent(textwrap.dedent(spec), "  "))
    return (
        [(p.path, p.message) for p in found.errors],
        [(p.path, p.message) for p in found.warnings],
    )


INVALID: list[tuple[str, str, Problems]] = [
    ("no address", "{}", [("spec.address", "address is required")]),
    (
        "no address stops the other checks",
        "ports: {'bad_name': 0}\nlabels: {'a b': c}",
        [("spec.address", "address is required")],
    ),
    (
        "address with a port",
        "address: example.com:9443",
        [
            (
                "spec.address",
                'endpoint address "example.com:9443" is not a valid FQDN or an IP address',
            )
        ],
    ),
    (
        "wildcard address",
        "address: '*.example.com'",
        [
            (
                "spec.address",
                'endpoint address "*.example.com" is not a valid FQDN or an IP address',
            )
        ],
    ),
    (
        "IP-looking name with a numeric top-level label",
        "address: 1.2.3.999",
        [("spec.address", 'endpoint address "1.2.3.999" is not a valid FQDN or an IP address')],
    ),
    (
        "empty unix path",
        "address: 'unix://'",
        [("spec.address", "unix address must not be empty")],
    ),
    (
        "relative unix path",
        "address: unix://run/app.sock",
        [("spec.address", "run/app.sock is not an absolute path to a file")],
    ),
    (
        "unix directory",
        "address: unix:///run/",
        [("spec.address", "/run/ is not an absolute path to a file")],
    ),
    (
        "abstract socket named like a directory (CRD)",
        "address: unix://@app/",
        [("spec.address", "UDS may not be a dir")],
    ),
    (
        "unix endpoint with ports",
        "address: unix:///run/app.sock\nports: {http: 80}",
        [("spec.ports", "unix endpoint unix:///run/app.sock must not include ports")],
    ),
    (
        "unix endpoint with an empty ports map (CRD)",
        "address: unix://@app\nports: {}",
        [("spec.ports", "UDS may not include ports")],
    ),
    (
        "bad port name and number",
        "address: 10.0.0.1\nports: {'@': 80, http: 0, grpc: 65536}",
        [
            ('spec.ports["@"]', "invalid port name: @"),
            ("spec.ports.http", "port number 0 must be in the range 1..65535"),
            ("spec.ports.grpc", "port number 65536 must be in the range 1..65535"),
        ],
    ),
    (
        "port name of 63 characters (CRD: under 63)",
        f"address: 10.0.0.1\nports: {{{'p' * 63}: 80}}",
        [(f"spec.ports.{'p' * 63}", "port name must be valid")],
    ),
    (
        "bad labels",
        "address: 10.0.0.1\nlabels: {'-a': b, c: 'd e'}",
        [
            ('spec.labels["-a"]', 'invalid tag key: "-a"'),
            ("spec.labels.c", 'invalid tag value: "d e"'),
        ],
    ),
    (
        "lengths (CRD)",
        (
            f"address: unix:///{'a' * 250}\nlocality: {'l' * 2049}\nnetwork: {'n' * 2049}\n"
            f"serviceAccount: {'s' * 254}"
        ),
        [
            ("spec.address", "may not be longer than 256 characters"),
            ("spec.locality", "may not be longer than 2048 characters"),
            ("spec.network", "may not be longer than 2048 characters"),
            ("spec.serviceAccount", "may not be longer than 253 characters"),
        ],
    ),
]

VALID: list[tuple[str, str]] = [
    ("IPv4", "address: 192.168.3.4\nports: {http: 8000}"),
    ("IPv6 with a zone", "address: 'fe80::1%eth0'"),
    ("short name", "address: backend"),
    ("FQDN with a trailing dot", "address: backend.example.com."),
    ("upper-case FQDN", "address: Backend.Example.COM"),
    ("unix path", "address: unix:///run/app.sock"),
    ("abstract socket", "address: unix://@app"),
    (
        "upper-case port name and empty label value",
        "address: 10.0.0.1\nports: {HTTP: 1}\nlabels: {v: ''}",
    ),
    ("port name of 62 characters", f"address: 10.0.0.1\nports: {{{'p' * 62}: 80}}"),
    (
        "free-form fields",
        "address: 10.0.0.1\nweight: 0\nlocality: a/b/c/d\nserviceAccount: Any_Thing",
    ),
]


@pytest.mark.parametrize(("spec", "errors"), [pytest.param(s, e, id=i) for i, s, e in INVALID])
def test_invalid_entries_report_istios_errors(spec: str, errors: Problems) -> None:
    """Each broken rule is reported on its field with Istio's message, and nothing else."""
    found, _ = _load(spec)
    assert found == errors


@pytest.mark.parametrize("spec", [pytest.param(s, id=i) for i, s in VALID])
def test_valid_edge_cases_pass_cleanly(spec: str) -> None:
    """Addresses and fields Istio accepts load with no error and no warning."""
    assert _load(spec) == ([], [])


def test_network_without_address_is_a_warning() -> None:
    """An entry reachable only through its network's gateway is valid, with a warning."""
    assert _load("network: net-2\nports: {http: 80}") == (
        [],
        [("spec", 'address is unset with network "net-2"')],
    )


def test_spec_is_required() -> None:
    """The CRD requires ``spec`` on a WorkloadEntry."""
    found = read_yaml(HEAD)
    assert [(p.path, p.message) for p in found.errors] == [("spec", "spec is required")]


def test_too_many_ports_and_labels() -> None:
    """The CRD caps ``ports`` at 128 entries and ``labels`` at 256."""
    ports = ", ".join(f"p{n}: {n + 1}" for n in range(129))
    labels = ", ".join(f"l{n}: v" for n in range(257))
    errors, _ = _load(f"address: 10.0.0.1\nports: {{{ports}}}\nlabels: {{{labels}}}")
    assert errors == [
        ("spec.ports", "must have at most 128 properties"),
        ("spec.labels", "must have at most 256 properties"),
    ]
