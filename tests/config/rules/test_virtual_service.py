"""VirtualService rules, one table row per Istio check (``validation.go``, ``virtualservice.go``).

Each row is a rule written as YAML and the verdict Istio gives it: ``None`` for valid, or
the path and the start of the message of the error meshlib must report.
"""

from __future__ import annotations

import textwrap

import pytest

from meshlib.config import read_yaml

HEAD = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r, namespace: shop}
spec:
"""


def _load(spec: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    found = read_yaml(HEAD + textwrap.indent(textwrap.dedent(spec), "  "))
    return (
        [(p.path, p.message) for p in found.errors],
        [(p.path, p.message) for p in found.warnings],
    )


def _rule(rule: str) -> str:
    """A VirtualService for ``reviews`` with one HTTP rule."""
    return "hosts: [reviews]\nhttp:\n- " + textwrap.indent(textwrap.dedent(rule), "  ").lstrip()


ROUTE = "route: [{destination: {host: reviews}}]\n"

RULES = [
    # weights and destinations
    ("route: [{destination: {host: a}, weight: 0}]", None),
    ("route: [{destination: {host: a}, weight: 49}, {destination: {host: b}, weight: 50}]", None),
    ("route: [{destination: {host: a}, weight: 0}, {destination: {host: b}}]",
     ("spec.http[0].route", "total destination weight = 0")),
    ("route: [{destination: {host: a}, weight: -1}]", ("spec.http[0].route[0].weight", "weight -1 < 0")),
    ("route: [{weight: 1}]", ("spec.http[0].route[0].destination", "destination is required")),
    ("route: [null]", ("spec.http[0].route[0]", "weight may not be nil")),
    ("route: [{destination: {host: '*'}}]",
     ("spec.http[0].route[0].destination.host", "invalid destination host *")),
    ("route: [{destination: {host: '*foo.baz'}}]", None),
    ("route: [{destination: {host: foo.*.com}}]",
     ("spec.http[0].route[0].destination.host", 'domain name "*.com" invalid (label "*" invalid)')),
    ("route: [{destination: {host: ''}}]",
     ("spec.http[0].route[0].destination.host", "empty domain name not allowed")),
    ("route: [{destination: {host: a, subset: V1}}]", None),
    ("route: [{destination: {host: a, subset: v_1}}]",
     ("spec.http[0].route[0].destination.subset", "subset name is invalid: v_1")),
    ("route: [{destination: {host: a, port: {}}}]",
     ("spec.http[0].route[0].destination.port.number", "port number 0 must be in the range")),
    # rule actions
    ("match: [{uri: {prefix: /a}}]", ("spec.http[0]", "HTTP route, redirect or direct_response is required")),
    ("redirect: {uri: /b}\n" + ROUTE, ("spec.http[0]", "HTTP route cannot contain both route and redirect")),
    ("redirect: {uri: /b}\nfault: {abort: {httpStatus: 500}}",
     ("spec.http[0]", "HTTP route cannot contain both fault and redirect")),
    ("directResponse: {status: 200}\nrewrite: {uri: /x}",
     ("spec.http[0]", "HTTP route rule cannot contain both rewrite and direct_response")),
    ("redirect: {uri: /b}\ndirectResponse: {status: 200}",
     ("spec.http[0]", "HTTP route rule cannot contain both direct_response and redirect")),
    ("mirror: {host: m}\nmirrors: [{destination: {host: n}}]\n" + ROUTE,
     ("spec.http[0]", "HTTP route cannot contain both mirror and mirrors")),
    ("delegate: {name: d}\n" + ROUTE, ("spec.http[0]", "root HTTP route  must not specify route")),
    ("delegate: {name: d, namespace: other}", None),
    # redirect
    ("redirect: {}", ("spec.http[0].redirect", "redirect must specify URI, authority, scheme, or port")),
    ("redirect: {port: 0}", None),
    ("redirect: {uri: /b, redirectCode: 308}", None),
    ("redirect: {uri: /b, redirectCode: 399}", None),
    ("redirect: {uri: /b, redirectCode: 200}",
     ("spec.http[0].redirect.redirectCode", "200 is not a valid redirect code, must be 3xx")),
    ("redirect: {scheme: HTTPS}",
     ("spec.http[0].redirect.scheme", 'invalid redirect scheme, must be "http" or "https"')),
    ("redirect: {port: 70000}", ("spec.http[0].redirect.port", "port number 70000 must be")),
    ("redirect: {derivePort: FROM_REQUEST_PORT}", None),
    ("match: [{uri: {exact: /a}}]\nredirect: {prefixRewrite: /b}",
     ("spec.http[0].redirect.prefixRewrite", "prefix_rewrite requires prefix URI matches")),
    # direct response
    ("directResponse: {status: 600}", None),
    ("directResponse: {status: 199}", ("spec.http[0].directResponse.status", "HTTP status 199")),
    ("directResponse: {body: {string: hi}}", ("spec.http[0].directResponse.status", "HTTP status 0")),
    # rewrite
    ("rewrite: {}\n" + ROUTE, ("spec.http[0].rewrite", "rewrite must specify at least one of")),
    ("rewrite: {authority: b}\n" + ROUTE, None),
    ("rewrite: {uriRegexRewrite: {match: '^/a(.*)', rewrite: '/b\\1'}}\n" + ROUTE, None),
    ("rewrite: {uriRegexRewrite: {match: '^/a'}}\n" + ROUTE,
     ("spec.http[0].rewrite.uriRegexRewrite", "UriRegexRewrite has errors")),
    ("rewrite: {uriRegexRewrite: {match: '(?=a)', rewrite: x}}\n" + ROUTE,
     ("spec.http[0].rewrite.uriRegexRewrite.match", '"HTTPRewrite.UriRegexRewrite.Match": error')),
    # retries and timeouts
    ("retries: {attempts: 0}\n" + ROUTE, None),
    ("retries: {attempts: -1}\n" + ROUTE, ("spec.http[0].retries.attempts", "attempts cannot be negative")),
    ("retries: {attempts: 0, retryRemoteLocalities: false}\n" + ROUTE,
     ("spec.http[0].retries", "http retry policy configured when attempts are set to 0")),
    ("retries: {attempts: 3, retryOn: '503,reset,retriable-4xx,cancelled,418'}\n" + ROUTE, None),
    ("retries: {attempts: 3, retryOn: '5xx,'}\n" + ROUTE,
     ("spec.http[0].retries.retryOn", '"" is not a valid retryOn policy')),
    ("retries: {attempts: 3, retryOn: '306'}\n" + ROUTE,
     ("spec.http[0].retries.retryOn", '"306" is not a valid retryOn policy')),
    ("retries: {attempts: 2, perTryTimeout: 0.5s, backoff: 10ms}\n" + ROUTE, None),
    ("retries: {attempts: 2, backoff: 100us}\n" + ROUTE,
     ("spec.http[0].retries.backoff", "duration must be greater than 1ms")),
    ("timeout: 1h30m\n" + ROUTE, None),
    ("timeout: 1500us\n" + ROUTE, ("spec.http[0].timeout", "only durations to ms precision")),
    # faults
    ("fault: {abort: {httpStatus: 503}}\n" + ROUTE, None),
    ("fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 0.0001}}}\n" + ROUTE, None),
    ("fault: {abort: {http2Error: CANCEL}}\n" + ROUTE,
     ("spec.http[0].fault.abort.http2Error", "HTTP/2 abort fault injection not supported yet")),
    ("fault: {abort: {percentage: {value: 10}}}\n" + ROUTE, None),
    ("fault: {delay: {fixedDelay: 0s}}\n" + ROUTE,
     ("spec.http[0].fault.delay.fixedDelay", "duration must be greater than 1ms")),
    ("fault: {delay: {percent: 100, fixedDelay: 2s}}\n" + ROUTE, None),
    ("fault: {delay: {fixedDelay: 2s, percentage: {value: -1}}}\n" + ROUTE,
     ("spec.http[0].fault.delay.percentage", "percentage -1 is neither 0.0")),
    # matches
    ("match: [{uri: {prefix: ''}}]\n" + ROUTE, None),
    ("match: [{uri: {regex: ''}}]\n" + ROUTE,
     ("spec.http[0].match[0].uri", '"uri": regex string match should not be empty')),
    ("match: [{uri: {regex: '(a'}}]\n" + ROUTE,
     ("spec.http[0].match[0].uri", '"uri": error parsing regexp: missing ): (a')),
    ("match: [{uri: {regex: '(a)\\1'}}]\n" + ROUTE,
     ("spec.http[0].match[0].uri", '"uri": error parsing regexp: invalid escape sequence')),
    ("match: [{scheme: {prefix: ''}}]\n" + ROUTE,
     ("spec.http[0].match[0].scheme", '"scheme": prefix string match should not be empty')),
    ("match: [{headers: {end-user: {exact: jason}}}]\n" + ROUTE, None),
    ("match: [{headers: {x: {}}}]\n" + ROUTE, None),
    ("match: [{headers: {x: null}}]\n" + ROUTE,
     ("spec.http[0].match[0].headers.x", "header match x cannot be null")),
    ("match: [{headers: {x: {regex: '*'}}}]\n" + ROUTE,
     ("spec.http[0].match[0].headers.x", '"headers": error parsing regexp')),
    ("match: [{withoutHeaders: {x: {regex: '*'}}}]\n" + ROUTE, None),
    ("match: [{headers: {'x y': {exact: a}}}]\n" + ROUTE,
     ('spec.http[0].match[0].headers["x y"]', "header name x y is not a valid header name")),
    ("match: [{headers: {':path': {prefix: /a}}}]\n" + ROUTE, None),
    ("match: [{queryParams: {id: {regex: '\\d+'}}}]\n" + ROUTE, None),
    ("match: [{port: 65536}]\n" + ROUTE,
     ("spec.http[0].match[0].port", "port number 65536 must be in the range 1..65535")),
    ("match: [{sourceLabels: {app: 'a b'}}]\n" + ROUTE,
     ("spec.http[0].match[0].sourceLabels.app", 'invalid tag value: "a b"')),
    ("match: [{gateways: [Bad_Name/x]}]\n" + ROUTE,
     ("spec.http[0].match[0].gateways[0]", 'invalid value for namespace: "Bad_Name"')),
    # CORS
    ("corsPolicy: {allowOrigins: [{exact: 'https://a'}], allowMethods: [GET, '*'], maxAge: 24h}\n"
     + ROUTE, None),
    ("corsPolicy: {allowOrigins: [{}]}\n" + ROUTE,
     ("spec.http[0].corsPolicy.allowOrigins[0]", "'' is not a valid match type for CORS allow")),
    ("corsPolicy: {allowMethods: [get]}\n" + ROUTE,
     ("spec.http[0].corsPolicy.allowMethods[0]", '"get" is not a supported HTTP method')),
    ("corsPolicy: {allowHeaders: ['']}\n" + ROUTE,
     ("spec.http[0].corsPolicy.allowHeaders[0]", "header name cannot be empty")),
    # mirrors
    ("mirror: {host: m}\nmirrorPercentage: {value: 50}\n" + ROUTE, None),
    ("mirrors: [{destination: {host: m}, percentage: {value: -5}}]\n" + ROUTE,
     ("spec.http[0].mirrors[0].percentage", "mirror percentage must have a min value of 0")),
    ("mirrors: [null]\n" + ROUTE, ("spec.http[0].mirrors[0]", "mirror cannot be null")),
    ("mirrors: [{percentage: {value: 5}}]\n" + ROUTE,
     ("spec.http[0].mirrors[0].destination", "destination is required for mirrors")),
    ("mirrorPercent: 101\nmirror: {host: m}\n" + ROUTE,
     ("spec.http[0].mirrorPercent", "mirror_percent must have a max value of 100 (it has 101)")),
    # header manipulation
    ("headers: {request: {set: {x-a: '100%%', x-b: '%HOSTNAME%', x-c: '%REQ(x)%'}}}\n" + ROUTE,
     None),
    ("headers: {request: {set: {x-a: 'abc%def'}}}\n" + ROUTE,
     ("spec.http[0].headers.request.set.x-a",
      "header value configuration: invalid header configuration. Un-terminated variable")),
    ("headers: {request: {set: {x-a: '%'}}}\n" + ROUTE,
     ("spec.http[0].headers.request.set.x-a",
      "header value configuration: invalid header configuration. Un-escaped %")),
    ("headers: {request: {add: {':path': /x}}}\n" + ROUTE,
     ('spec.http[0].headers.request.add[":path"]', 'invalid header ":path": header cannot have')),
    ("headers: {request: {set: {Host: b}}}\n" + ROUTE, None),
    ("headers: {response: {set: {host: b}}}\n" + ROUTE,
     ("spec.http[0].headers.response.set.host", 'invalid header "host": cannot set Host header')),
    ("route: [{destination: {host: a}, headers: {response: {remove: ['']}}}]",
     ("spec.http[0].route[0].headers.response.remove[0]", "header name cannot be empty")),
    ("rewrite: {authority: a}\nheaders: {request: {add: {host: b}}}\n" + ROUTE,
     ('spec.http[0].headers.request.add.host', 'authority header cannot be set multiple times')),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "expected"), RULES)
def test_http_rule(rule: str, expected: tuple[str, str] | None) -> None:
    """Each HTTP rule is judged as Istio judges it, the error naming the field."""
    errors, _ = _load(_rule(rule))
    if expected is None:
        assert errors == []
    else:
        path, message = expected
        assert any(p == path and m.startswith(message) for p, m in errors), errors


SPECS = [
    ("hosts: ['*']\ngateways: [my-gw]\nhttp: [{" + ROUTE.strip() + "}]", None),
    ("hosts: ['*']\nhttp: [{" + ROUTE.strip() + "}]",
     ("spec.hosts[0]", "wildcard host * is not allowed for virtual services bound to the mesh")),
    ("hosts: ['*']\ngateways: [my-gw, mesh]\nhttp: [{" + ROUTE.strip() + "}]",
     ("spec.hosts[0]", "wildcard host * is not allowed")),
    ("hosts: [10.0.0.1, '::1']\nhttp: [{" + ROUTE.strip() + "}]", None),
    ("hosts: [a.b, A.B]\nhttp: [{" + ROUTE.strip() + "}]", None),
    ("hosts: [a.b, a.b]\nhttp: [{" + ROUTE.strip() + "}]",
     ("spec.hosts", "duplicate hosts in virtual service: a.b & a.b")),
    ("hosts: [foo.123]\nhttp: [{" + ROUTE.strip() + "}]",
     ("spec.hosts[0]", 'domain name "123" invalid (top level domain "123" cannot be all-numeric)')),
    ("hosts: [reviews]", ("spec", "http, tcp or tls must be provided in virtual service")),
    ("hosts: [reviews]\nhttp: [null]", ("spec.http[0]", "http route may not be null")),
    ("http: [{" + ROUTE.strip() + "}]", None),
    ("gateways: [g]\nhttp: [{" + ROUTE.strip() + "}]",
     ("spec.gateways", "delegate virtual service must have no gateways specified")),
    ("http: [{delegate: {name: x}, " + ROUTE.strip() + "}]",
     ("spec.http[0]", "delegate HTTP route cannot contain delegate")),
    ("hosts: [reviews]\ngateways: [ns/gw-1, mesh]\nhttp: [{" + ROUTE.strip() + "}]", None),
    ("hosts: [reviews]\ngateways: [/gw]\nhttp: [{" + ROUTE.strip() + "}]",
     ("spec.gateways[0]", "config namespace and gateway name cannot be empty")),
    ("hosts: [reviews]\ngateways: [mesh, Bad/X_Y]\nhttp: [{" + ROUTE.strip() + "}]", None),
    ("hosts: [reviews]\nexportTo: ['.', shop]\nhttp: [{" + ROUTE.strip() + "}]",
     ("spec.exportTo[1]", "duplicate entries in exportTo for entry shop")),
    ("hosts: [reviews]\nexportTo: ['~']\nhttp: [{" + ROUTE.strip() + "}]",
     ("spec.exportTo[0]", "exportTo ~ (none) is not allowed for Istio configuration objects")),
    ("hosts: [reviews]\nexportTo: ['*', other]\nhttp: [{" + ROUTE.strip() + "}]",
     ("spec.exportTo", "cannot have both public (*) and non-public exportTo values")),
    ("hosts: [reviews]\nexportTo: [other_ns]\nhttp: [{" + ROUTE.strip() + "}]",
     ("spec.exportTo[0]", "only .,*,~, or a valid DNS 1123 label is allowed as exportTo entry")),
    ("hosts: [reviews]\ntcp: [{route: [{destination: {host: db}}]}]", None),
    ("hosts: [reviews]\ntcp: [{match: [{port: 3306}]}]", ("spec.tcp[0].route", "TCP route is required")),
    ("hosts: [reviews]\ntcp: [{match: [{destinationSubnets: [10.0.0.0/33]}], route: [{destination: {host: db}}]}]",
     ("spec.tcp[0].match[0].destinationSubnets[0]", "10.0.0.0/33 is not a valid CIDR block")),
    ("hosts: ['*.example.com']\ntls: [{match: [{sniHosts: [a.example.com]}], route: [{destination: {host: a}}]}]",
     None),
    ("hosts: [a.example.com]\ntls: [{match: [{sniHosts: [b.example.com]}], route: [{destination: {host: a}}]}]",
     ("spec.tls[0].match[0].sniHosts[0]",
      'SNI host "b.example.com" is not a compatible subset of any of the virtual service hosts')),
    ("hosts: [a.example.com]\ntls: [{match: [{port: 443}], route: [{destination: {host: a}}]}]",
     ("spec.tls[0].match[0].sniHosts", "TLS match must have at least one SNI host")),
    ("hosts: [a.example.com]\ntls: [{route: [{destination: {host: a}}]}]",
     ("spec.tls[0].match", "TLS route must have at least one match condition")),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "expected"), SPECS)
def test_virtual_service(spec: str, expected: tuple[str, str] | None) -> None:
    """Hosts, gateways, delegates, exportTo and TCP/TLS routes are judged as Istio does."""
    errors, _ = _load(spec)
    if expected is None:
        assert errors == []
    else:
        path, message = expected
        assert any(p == path and m.startswith(message) for p, m in errors), errors


WARNINGS = [
    ("hosts: [reviews]\ngateways: [gateway.example.com]\nhttp: [{" + ROUTE.strip() + "}]",
     ("spec.gateways[0]", ('using legacy gatewayName format "gateway.example.com"; prefer the '
      '<namespace>/<name> format: "example/gateway"'))),
    ("hosts: [reviews]\nhttp:\n- {" + ROUTE.strip() + "}\n- {" + ROUTE.strip() + "}",
     ("spec.http[1]", "virtualService rule #1 not used (only the last rule can have no matches)")),
    ("hosts: [reviews]\nhttp:\n- {" + ROUTE.strip() + "}\n- {name: late, match: [{uri: {exact: /a}}], "
     + ROUTE.strip() + "}",
     ("spec.http[1]", 'virtualService rule "late" not used (route without matches defined before)')),
    ("hosts: [reviews]\nhttp:\n- {match: [{uri: {exact: /a}}], " + ROUTE.strip()
     + "}\n- {match: [{name: again, uri: {exact: /a}}], " + ROUTE.strip() + "}",
     ("spec.http[1].match[0]", 'virtualService rule #1 match "again" is not used (duplicate/overlapping')),
    ("hosts: [reviews]\nhttp:\n- {match: [{uri: {prefix: /a}}], " + ROUTE.strip()
     + "}\n- {match: [{uri: {prefix: /ab}}], " + ROUTE.strip() + "}",
     ("spec.http[1].match[0]", "virtualService rule #1 match #0 of prefix /ab is not used")),
    ("hosts: [reviews]\nhttp: [{mirrorPercent: 5, mirror: {host: m}, " + ROUTE.strip() + "}]",
     ("spec.http[0].mirrorPercent", 'using deprecated setting "mirrorPercent"')),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "expected"), WARNINGS)
def test_valid_with_warning(spec: str, expected: tuple[str, str]) -> None:
    """Unreachable rules, legacy gateway names and deprecated fields are warned about."""
    errors, warnings = _load(spec)
    assert errors == []
    path, message = expected
    assert any(p == path and m.startswith(message) for p, m in warnings), warnings


def test_jwt_claim_routing_needs_a_gateway() -> None:
    """``@request.auth.claims`` headers are rejected on sidecars, accepted on gateways."""
    rule = "match: [{headers: {'@request.auth.claims.group': {exact: admin}}}]\n" + ROUTE
    errors, _ = _load(_rule(rule))
    assert errors[0][1].startswith(
        "JWT claim based routing (key: @request.auth.claims.group) is only supported for "
        "gateway, found no gateways: []"
    )
    gateway_only = _rule(rule).replace("hosts: [reviews]", "hosts: [reviews]\ngateways: [gw]")
    assert _load(gateway_only)[0] == []


def test_unrelated_problems_are_all_reported() -> None:
    """Problems in different parts of a rule are reported together, not only the first."""
    errors, _ = _load(
        _rule("timeout: 0s\nretries: {attempts: -1}\nroute: [{destination: {host: ''}}]")
    )
    assert {path for path, _ in errors} == {
        "spec.http[0].timeout",
        "spec.http[0].retries.attempts",
        "spec.http[0].route[0].destination.host",
    }
