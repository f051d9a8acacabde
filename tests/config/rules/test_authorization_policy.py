"""AuthorizationPolicy validation: Istio's webhook rules and the CRD's rules."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping

import pytest
import yaml

from meshlib.config import AuthorizationPolicy, read_yaml
from meshlib.config._context import ResourceContext
from meshlib.config._problems import Report, format_path
from meshlib.config._rules._authorization_policy import validate_authorization_policy
from meshlib.config._schema import decode_message

DOCUMENT = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: ap, namespace: shop}}
spec:
{spec}
"""

Problems = list[tuple[str, str]]
DENY_TCP = (
    "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to "
    "the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify "
    "the port"
)


def load(spec: str) -> tuple[Problems, Problems]:
    """The (path, message) of every error and every warning for ``spec``."""
    found = read_yaml(DOCUMENT.format(spec=textwrap.indent(textwrap.dedent(spec), "  ")))
    return (
        [(problem.path, problem.message) for problem in found.errors],
        [(problem.path, problem.message) for problem in found.warnings],
    )


def rule(body: str) -> str:
    """A spec with a single ALLOW rule, given in flow-style YAML."""
    return f"rules: [{body}]"


def source(fields: str) -> str:
    """A spec with one rule whose single source has ``fields``."""
    return rule(f"{{from: [{{source: {{{fields}}}}}]}}")


def operation(fields: str) -> str:
    """A spec with one rule whose single operation has ``fields``."""
    return rule(f"{{to: [{{operation: {{{fields}}}}}]}}")


def condition(fields: str) -> str:
    """A spec with one rule whose single condition has ``fields``."""
    return rule(f"{{when: [{{{fields}}}]}}")


FULL = """
selector: {matchLabels: {app: shop}}
rules:
- from:
  - source:
      principals: [cluster.local/ns/web/sa/frontend, '*', 'prefix*', '*suffix']
      requestPrincipals: [issuer.example.com/alice]
      ipBlocks: [10.0.0.0/8, 192.168.1.7, '2001:db8::/32', 10.1.2.3/8]
      notRemoteIpBlocks: ['::1', 'fe80::1%eth0']
  - source:
      {serviceAccounts: [web/frontend, backend], requestPrincipals: ['*'], ipBlocks: [10.0.0.1]}
  to:
  - operation:
      ports: ['0', '8080', '65535']
      methods: [GET, anything]
      paths: [/api/*, '/api/{*}/items/{**}', '/v1/{**}/tail', '*']
      hosts: [shop.example.com, '*.example.com']
  when:
  - {key: 'request.headers[x-user]', values: [alice]}
  - {key: 'request.auth.claims[groups][admin]', notValues: [x]}
  - {key: source.ip, values: [10.0.0.0/16]}
  - {key: remote.ip, notValues: ['2001:db8::1']}
  - {key: destination.port, values: ['443']}
  - {key: connection.sni, values: ['*.example.com']}
  - {key: source.serviceAccount, values: [web/frontend]}
  - {key: 'experimental.envoy.filters.net[key]', values: [v]}
  - {key: 'request.experimental.inline.headers[x]', values: [v]}
"""


@pytest.mark.parametrize(
    "spec",
    [
        "{}",
        "action: ALLOW",
        "rules: []",
        "rules: [{}]",
        FULL,
        "{action: DENY, rules: [{to: [{operation: {ports: ['22'], methods: [GET]}}]}]}",
        "{action: DENY, rules: [{from: [{source: {namespaces: [dev]}}]}]}",
        "{action: DENY, rules: [{when: [{key: request.auth.principal, values: [x]}]}]}",
        "{action: AUDIT}",
        """
        action: CUSTOM
        provider: {name: ext-authz}
        rules: [{from: [{source: {ipBlocks: [10.0.0.0/8]}}], to: [{operation: {paths: [/a]}}]}]
        """,
        "targetRef: {kind: Service, name: shop}",
        "targetRef: {group: core, kind: Service, name: shop}",
        """
        targetRefs:
        - {group: gateway.networking.k8s.io, kind: Gateway, name: edge}
        - {group: gateway.networking.k8s.io, kind: GatewayClass, name: istio}
        - {group: networking.istio.io, kind: ServiceEntry, name: external}
        """,
    ],
)
def test_valid(spec: str) -> None:
    """Policies Istio accepts, including every attribute shape it supports, load cleanly."""
    assert load(spec) == ([], [])


TARGETS = [
    (
        "{selector: {matchLabels: {app: a}}, targetRef: {kind: Service, name: a}}",
        [("spec", "only one of targetRefs or workloadSelector can be set")],
    ),
    (
        "{targetRef: {kind: Service, name: a}, targetRefs: [{kind: Service, name: b}]}",
        [("spec", "only one of targetRefs or workloadSelector can be set")],
    ),
    (
        "{selector: {matchLabels: {app: a}}, targetRefs: []}",
        [("spec", "only one of targetRefs or selector can be set")],
    ),
    ("targetRef: {kind: Service}", [("spec.targetRef.name", "targetRef name must be set")]),
    (
        "targetRef: {kind: Service, name: a, namespace: other}",
        [
            (
                "spec.targetRef.namespace",
                (
                    "targetRef namespace must not be set; cross namespace referencing is not "
                    "supported"
                ),
            )
        ],
    ),
    (
        "targetRefs: [{kind: Service, name: a}, {kind: Deployment, group: apps, name: a}]",
        [
            (
                "spec.targetRefs[1]",
                (
                    "targetRef must be to one of [core/v1/Service "
                    "networking.istio.io/v1/ServiceEntry gateway.networking.k8s.io/v1/Gateway "
                    "gateway.networking.k8s.io/v1/GatewayClass] but was apps/Deployment"
                ),
            )
        ],
    ),
    (
        "targetRef: {kind: Gateway, name: edge}",
        [("spec.targetRef", "targetRef must be to one of [core/v1/Service")],
    ),
    (
        f"targetRef: {{kind: Service, name: {'n' * 254}}}",
        [("spec.targetRef.name", "may not be longer than 253 characters")],
    ),
    (
        "targetRefs: [" + ", ".join(["{kind: Service, name: s}"] * 17) + "]",
        [("spec.targetRefs", "must have at most 16 items")],
    ),
    ("targetRefs: [null]", [("spec.targetRefs[0]", "must be an object, not null")]),
    (
        "selector: {matchLabels: {'': a, b: '*'}}",
        [
            ('spec.selector.matchLabels[""]', 'empty key is not supported in selector: "=a"'),
            ("spec.selector.matchLabels.b", 'wildcard is not supported in selector: "b=*"'),
        ],
    ),
]

ACTIONS = [
    (
        "action: CUSTOM",
        [
            (
                "spec",
                (
                    "CUSTOM action without `rules` is meaningless as it will "
                    "never be triggered, add "
                    "an empty rule `{}` if you want it be triggered for every request"
                ),
            )
        ],
    ),
    ("{action: CUSTOM, rules: [{}]}", [("spec.provider", "`provider.name` must not be empty")]),
    (
        "{action: CUSTOM, provider: {}, rules: [{}]}",
        [("spec.provider.name", "`provider.name` must not be empty")],
    ),
    (
        """
        action: CUSTOM
        provider: {name: ext}
        rules:
        - from:
          - source:
              namespaces: [a]
              notNamespaces: [b]
              principals: [c]
              notPrincipals: [d]
              requestPrincipals: [e]
              notRequestPrincipals: [f]
          when:
          - {key: source.principal, values: [x]}
          - {key: 'request.auth.claims[iss]', values: [x]}
          - {key: source.namespace, values: [x]}
        - from: [{source: {serviceAccounts: [sa], notServiceAccounts: [sb]}}]
        """,
        [
            (
                "spec.rules[0].from[0].source.namespaces",
                "From.Namespaces is currently not supported with CUSTOM action",
            ),
            (
                "spec.rules[0].from[0].source.notNamespaces",
                "From.NotNamespaces is currently not supported with CUSTOM action",
            ),
            (
                "spec.rules[0].from[0].source.principals",
                "From.Principals is currently not supported with CUSTOM action",
            ),
            (
                "spec.rules[0].from[0].source.notPrincipals",
                "From.NotPrincipals is currently not supported with CUSTOM action",
            ),
            (
                "spec.rules[0].from[0].source.requestPrincipals",
                "From.RequestPrincipals is currently not supported with CUSTOM action",
            ),
            (
                "spec.rules[0].from[0].source.notRequestPrincipals",
                "From.NotRequestPrincipals is currently not supported with CUSTOM action",
            ),
            (
                "spec.rules[0].when[0].key",
                "source.principal is currently not supported with CUSTOM action",
            ),
            (
                "spec.rules[0].when[1].key",
                "request.auth.claims[iss] is currently not supported with CUSTOM action",
            ),
            (
                "spec.rules[0].when[2].key",
                "source.namespace is currently not supported with CUSTOM action",
            ),
            (
                "spec.rules[1].from[0].source.serviceAccounts",
                "From.ServiceAccounts is currently not supported with CUSTOM action",
            ),
            (
                "spec.rules[1].from[0].source.notServiceAccounts",
                "From.NotServiceAccounts is currently not supported with CUSTOM action",
            ),
        ],
    ),
    (
        "{action: CUSTOM, provider: {name: ext}, rules: [{when: [null]}]}",
        [
            ("spec.rules[0].when[0]", "when field cannot be nil"),
            ("spec.rules[0].when[0]", "`key` must not be empty"),
        ],
    ),
    (
        "{action: DENY, provider: {name: ext}, rules: [{to: [{operation: {ports: ['1']}}]}]}",
        [("spec.provider", "`provider` must not be with non CUSTOM action, found DENY")],
    ),
    (
        "action: DENY",
        [
            (
                "spec",
                (
                    "DENY action without `rules` is meaningless as it will never "
                    "be triggered, add "
                    "an empty rule `{}` if you want it be triggered for every request"
                ),
            )
        ],
    ),
    ("{action: DENY, rules: []}", [("spec", "DENY action without `rules` is meaningless")]),
]

RULES = [
    ("rules: [{}, null]", [("spec.rules[1]", "`rule` must not be nil, found at rule 1")]),
    ("rules: [" + ", ".join(["{}"] * 513) + "]", [("spec.rules", "must have at most 512 items")]),
    (
        rule("{from: [" + ", ".join(["{source: {namespaces: [a]}}"] * 513) + "]}"),
        [("spec.rules[0].from", "must have at most 512 items")],
    ),
    (
        rule("{from: [null]}"),
        [("spec.rules[0].from[0]", "`from` must not be nil, found at rule 0")],
    ),
    (
        rule("{from: [{}]}"),
        [("spec.rules[0].from[0]", "`from.source` must not be nil, found at rule 0")],
    ),
    (rule("{to: [null]}"), [("spec.rules[0].to[0]", "`to` must not be nil, found at rule 0")]),
    (
        rule("{to: [{}]}"),
        [("spec.rules[0].to[0]", "`to.operation` must not be nil, found at rule 0")],
    ),
    (
        source("principals: []"),
        [("spec.rules[0].from[0].source", "`from.source` must not be empty, found at rule 0")],
    ),
    (
        operation(""),
        [("spec.rules[0].to[0].operation", "`to.operation` must not be empty, found at rule 0")],
    ),
]

SOURCES = [
    (
        source("serviceAccounts: [a], namespaces: [b]"),
        [
            (
                "spec.rules[0].from[0].source",
                "cannot set serviceAccounts with namespaces or principals, found at rule 0",
            )
        ],
    ),
    (
        source("notServiceAccounts: [a], principals: [], ipBlocks: [10.0.0.1]"),
        [
            (
                "spec.rules[0].from[0].source",
                "Cannot set serviceAccounts with namespaces or principals",
            )
        ],
    ),
    (
        source("principals: [a, '', '']"),
        [
            (
                "spec.rules[0].from[0].source.principals[1]",
                "empty value not allowed, found in Principals",
            )
        ],
    ),
    (
        source("notRequestPrincipals: ['']"),
        [
            (
                "spec.rules[0].from[0].source.notRequestPrincipals[0]",
                "empty value not allowed, found in NotRequestPrincipals",
            )
        ],
    ),
    (
        source("ipBlocks: [10.0.0.256, 10.0.0.0/33, 10.0.0.0/08, 'fe80::1%eth0/64', x/8]"),
        [
            ("spec.rules[0].from[0].source.ipBlocks[0]", "bad IP address (10.0.0.256)"),
            (
                "spec.rules[0].from[0].source.ipBlocks[1]",
                (
                    "bad CIDR range (10.0.0.0/33): "
                    'netip.ParsePrefix("10.0.0.0/33"): prefix length '
                    "out of range"
                ),
            ),
            (
                "spec.rules[0].from[0].source.ipBlocks[2]",
                'netip.ParsePrefix("10.0.0.0/08"): bad bits after slash: "08"',
            ),
            (
                "spec.rules[0].from[0].source.ipBlocks[3]",
                "IPv6 zones cannot be present in a prefix",
            ),
            ("spec.rules[0].from[0].source.ipBlocks[4]", 'ParseAddr("x"): unable to parse IP'),
        ],
    ),
    (
        source("remoteIpBlocks: ['']"),
        [
            ("spec.rules[0].from[0].source.remoteIpBlocks[0]", "bad IP address ()"),
            (
                "spec.rules[0].from[0].source.remoteIpBlocks[0]",
                "empty value not allowed, found in RemoteIpBlocks",
            ),
        ],
    ),
    (
        source("serviceAccounts: [ok, 'ns/*']"),
        [
            (
                "spec.rules[0].from[0].source.serviceAccounts[1]",
                "wildcard not allowed, found in ServiceAccounts",
            )
        ],
    ),
    (
        source("serviceAccounts: [a/b/c, /sa]"),
        [
            (
                "spec.rules[0].from[0].source.serviceAccounts[0]",
                (
                    "expected format 'serviceAccount' or "
                    "'namespace/serviceAccount', found \"a/b/c\" "
                    "in ServiceAccounts"
                ),
            )
        ],
    ),
    (
        source("serviceAccounts: [/sa]"),
        [
            (
                "spec.rules[0].from[0].source.serviceAccounts[0]",
                'found empty namespace "/sa" in ServiceAccounts',
            )
        ],
    ),
    (
        source("notServiceAccounts: [ns/]"),
        [
            (
                "spec.rules[0].from[0].source.notServiceAccounts[0]",
                'found empty serviceAccount "ns/" in NotServiceAccounts',
            )
        ],
    ),
    (
        source(f"serviceAccounts: [{'s' * 321}]"),
        [
            (
                "spec.rules[0].from[0].source.serviceAccounts[0]",
                "value cannot exceed 320 characters",
            )
        ],
    ),
    (
        source("serviceAccounts: [" + ", ".join(["sa"] * 17) + "]"),
        [("spec.rules[0].from[0].source.serviceAccounts", "may not have more than 16 values")],
    ),
]

OPERATIONS = [
    (
        operation("ports: [http, '70000', '99999999999']"),
        [
            (
                "spec.rules[0].to[0].operation.ports[0]",
                'bad port (http): strconv.ParseUint: parsing "http": invalid syntax',
            ),
            ("spec.rules[0].to[0].operation.ports[1]", "bad port (70000): <nil>"),
            (
                "spec.rules[0].to[0].operation.ports[2]",
                'parsing "99999999999": value out of range',
            ),
        ],
    ),
    (
        operation("notPorts: ['']"),
        [
            ("spec.rules[0].to[0].operation.notPorts[0]", "bad port ()"),
            (
                "spec.rules[0].to[0].operation.notPorts[0]",
                "empty value not allowed, found in NotPorts",
            ),
        ],
    ),
    (
        operation("methods: [GET, ''], notHosts: ['']"),
        [
            (
                "spec.rules[0].to[0].operation.methods[1]",
                "empty value not allowed, found in Methods",
            ),
            (
                "spec.rules[0].to[0].operation.notHosts[0]",
                "empty value not allowed, found in NotHosts",
            ),
        ],
    ),
    (
        operation("paths: ['/a/{**}/b/{*}']"),
        [
            (
                "spec.rules[0].to[0].operation.paths[0]",
                (
                    "invalid or unsupported path a/{**}/b/{*}, found in Paths. "
                    "{**} is not the last "
                    "operator"
                ),
            )
        ],
    ),
    (
        operation("notPaths: [/ok, '/a/{id}']"),
        [
            (
                "spec.rules[0].to[0].operation.notPaths[1]",
                (
                    "invalid or unsupported path a/{id}, found in NotPaths. "
                    "Contains '{' or '}' beyond "
                    "a supported path template"
                ),
            )
        ],
    ),
    (
        operation("paths: ['/a/b*/{*}']"),
        [
            (
                "spec.rules[0].to[0].operation.paths[0]",
                "Contains segment b* with invalid string literal",
            )
        ],
    ),
]

CONDITIONS = [
    (condition("values: [a]"), [("spec.rules[0].when[0].key", "`key` must not be empty")]),
    (condition("key: ''"), [("spec.rules[0].when[0].key", "`key` must not be empty")]),
    (
        condition("key: source.ip"),
        [
            (
                "spec.rules[0].when[0]",
                "at least one of `values` or `notValues` must be set for key source.ip",
            )
        ],
    ),
    (
        condition("key: color, notValues: [red]"),
        [
            (
                "spec.rules[0].when[0].key",
                "invalid `value` for `key` color: unknown attribute: color",
            )
        ],
    ),
    (
        condition("key: destination.namespace, values: [a]"),
        [
            (
                "spec.rules[0].when[0].key",
                "attribute destination.namespace is replaced by the metadata.namespace",
            )
        ],
    ),
    (
        condition("key: 'destination.labels[app]', values: [a]"),
        [("spec.rules[0].when[0].key", "is replaced by the workload selector")],
    ),
    (
        condition("key: destination.user, values: [a]"),
        [
            (
                "spec.rules[0].when[0].key",
                "deprecated attribute destination.user: only supported in v1alpha1",
            )
        ],
    ),
    (
        condition("key: request.headers, values: [a]"),
        [("spec.rules[0].when[0].key", "bad key (request.headers): should have format a[b]")],
    ),
    (
        condition("key: 'request.auth.claims[]', values: [a]"),
        [
            (
                "spec.rules[0].when[0].key",
                "bad key (request.auth.claims[]): should have format a[b]",
            )
        ],
    ),
    (
        condition("key: destination.ip, values: [10.0.0.1, nope], notValues: [10.0.0.0/40]"),
        [
            (
                "spec.rules[0].when[0].values[1]",
                "invalid `value` for `key` destination.ip: bad IP address (nope)",
            ),
            (
                "spec.rules[0].when[0].notValues[0]",
                "invalid `notValue` for `key` destination.ip: bad CIDR range",
            ),
        ],
    ),
    (
        condition("key: destination.port, notValues: [http]"),
        [
            (
                "spec.rules[0].when[0].notValues[0]",
                "invalid `notValue` for `key` destination.port: bad port (http)",
            )
        ],
    ),
    (
        condition("key: source.serviceAccount, values: ['*']"),
        [
            (
                "spec.rules[0].when[0].values[0]",
                (
                    "invalid `value` for `key` source.serviceAccount: wildcard "
                    "not allowed, found in "
                    "source.serviceAccount"
                ),
            )
        ],
    ),
    (
        condition("key: source.ip, values: [nope, '']"),
        [
            (
                "spec.rules[0].when[0].values[1]",
                "invalid `value` for `key` source.ip: empty value not allowed, found in source.ip",
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("spec", "errors"), TARGETS + ACTIONS + RULES + SOURCES + OPERATIONS + CONDITIONS
)
def test_invalid(spec: str, errors: Problems) -> None:
    """Each AuthorizationPolicy rule reports Istio's message on the field concerned."""
    got, _ = load(spec)
    assert [path for path, _ in got] == [path for path, _ in errors], got
    for (_, message), (_, fragment) in zip(got, errors, strict=True):
        assert fragment in message


@pytest.mark.parametrize(
    ("spec", "warnings"),
    [
        ("selector: {}", [("spec.selector", "workload selector specified without labels")]),
        (
            "{action: DENY, rules: [{to: [{operation: {methods: [POST]}}]}]}",
            [("spec.rules[0]", DENY_TCP)],
        ),
        (
            "{action: DENY, rules: [{from: [{source: {requestPrincipals: ['*']}}]}]}",
            [("spec.rules[0]", DENY_TCP)],
        ),
        (
            """
            action: DENY
            rules:
            - from: [{source: {namespaces: [dev]}}]
              to: [{operation: {paths: [/admin]}}]
            - to: [{operation: {ports: ['8080'], paths: [/admin]}}]
            """,
            [("spec.rules[0]", DENY_TCP)],
        ),
    ],
)
def test_warnings(spec: str, warnings: Problems) -> None:
    """Istio's warnings (empty selector, HTTP-only DENY rules) leave the policy valid."""
    assert load(spec) == ([], warnings)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("rules: [{from: []}]", id="from"),
        pytest.param("rules: [{to: []}]", id="to"),
    ],
)
def test_empty_from_and_to_lists_read_as_absent(spec: str) -> None:
    """Istio's Go decoder reads ``from: []`` / ``to: []`` as unset, so the rule is valid."""
    assert load(spec) == ([], [])


@dataclasses.dataclass(frozen=True)
class AnnotatedContext(ResourceContext):
    """A context that carries annotations, as the loader may pass them."""

    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)


def validate_with(dry_run: str, spec: str) -> list[tuple[str, str]]:
    """Validate ``spec`` with the ``istio.io/dry-run`` annotation set to ``dry_run``."""
    report = Report()
    decoded = decode_message(AuthorizationPolicy, yaml.safe_load(spec), ("spec",), report)
    context = AnnotatedContext("AuthorizationPolicy", "ap", "shop", {"istio.io/dry-run": dry_run})
    validate_authorization_policy(decoded, context, report, ("spec",))
    return [(format_path(path), message) for path, message in report.errors]


def test_dry_run_accepts_go_booleans_for_allow_and_deny() -> None:
    """``istio.io/dry-run`` takes any Go boolean spelling on ALLOW and DENY policies."""
    assert (
        validate_with("True", "{action: DENY, rules: [{to: [{operation: {ports: ['1']}}]}]}") == []
    )
    assert validate_with("0", "rules: [{}]") == []


def test_dry_run_rejects_other_values_and_stops() -> None:
    """A bad dry-run value is the only error: Istio validates nothing else."""
    errors = validate_with("yes", "provider: {name: ext}")
    assert errors == [
        (
            'metadata.annotations["istio.io/dry-run"]',
            (
                "shop/ap has annotation istio.io/dry-run with invalid value (yes): "
                'strconv.ParseBool: parsing "yes": invalid syntax'
            ),
        )
    ]


def test_dry_run_only_for_allow_and_deny() -> None:
    """AUDIT and CUSTOM policies may not be dry-run."""
    assert validate_with("true", "action: AUDIT") == [
        (
            'metadata.annotations["istio.io/dry-run"]',
            (
                "the annotation istio.io/dry-run currently only supports action ALLOW/DENY, found "
                "action AUDIT in shop/ap"
            ),
        )
    ]
