"""Routing decisions, table-driven, without sockets (``istio-api.md`` §1, §5.4).

Each test builds a mesh from a little YAML, runs one request through the engine with
scripted upstream answers, and checks what the engine decided.
"""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest

from meshlib import Endpoint, Mesh
from meshlib._core._actions import Deliver
from tests.core.drive import Trace, drive

REVIEWS = "reviews.default.svc.cluster.local"
SUBSETS = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
"""


def mesh_with(virtual_service: str = "", *, namespace: str = "default", **options: object) -> Mesh:
    """A mesh with reviews v1/v2/v3 endpoints, its subsets, and ``virtual_service``."""
    documents = [SUBSETS]
    if virtual_service:
        documents.append(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
            "metadata: {name: reviews, namespace: default}\nspec:\n"
            + textwrap.indent(textwrap.dedent(virtual_service), "  ")
        )
    mesh = Mesh.from_yaml("---\n".join(documents), namespace=namespace, seed=7, **options)
    mesh.set_endpoints(
        REVIEWS,
        [Endpoint(f"10.0.0.{n}", port=9080, labels={"version": f"v{n}"}) for n in (1, 2, 3)],
    )
    return mesh


def subset_of(trace: Trace) -> str:
    assert isinstance(trace.final, Deliver), trace.final
    return trace.info.subset


def rules(*rules: str) -> str:
    body = "hosts: [reviews]\nhttp:\n"
    for rule in rules:
        body += "- " + textwrap.indent(textwrap.dedent(rule).strip(), "  ").lstrip() + "\n"
    return body


def to(subset: str) -> str:
    return f"route: [{{destination: {{host: reviews, subset: {subset}}}}}]"


MATCHES = [
    # (match item, request (method, path, headers), matches?)
    ("uri: {exact: /a}", ("GET", "/a", {}), True),
    ("uri: {exact: /a}", ("GET", "/a?x=1", {}), True),
    ("uri: {exact: /a}", ("GET", "/ab", {}), False),
    ("uri: {exact: /A}\n  ignoreUriCase: true", ("GET", "/a", {}), True),
    ("uri: {prefix: /api}", ("GET", "/api/v1", {}), True),
    ("uri: {prefix: /api}", ("GET", "/API/v1", {}), False),
    ("uri: {prefix: /API}\n  ignoreUriCase: true", ("GET", "/api/v1", {}), True),
    ("uri: {regex: '/v[0-9]+/items'}", ("GET", "/v12/items", {}), True),
    ("uri: {regex: '/v[0-9]+'}", ("GET", "/v12/items", {}), False),
    ("uri: {regex: '(?i)/ITEMS'}", ("GET", "/items", {}), True),
    ("method: {exact: POST}", ("POST", "/", {}), True),
    ("method: {exact: POST}", ("GET", "/", {}), False),
    ("method: {exact: post}", ("POST", "/", {}), False),
    ("headers: {end-user: {exact: jason}}", ("GET", "/", {"end-user": "jason"}), True),
    ("headers: {end-user: {exact: jason}}", ("GET", "/", {"End-User": "jason"}), True),
    ("headers: {end-user: {exact: jason}}", ("GET", "/", {"end-user": "Jason"}), False),
    ("headers: {end-user: {exact: jason}}", ("GET", "/", {}), False),
    ("headers: {x-v: {prefix: beta}}", ("GET", "/", {"x-v": "beta-2"}), True),
    ("headers: {x-v: {regex: 'b.*a'}}", ("GET", "/", {"x-v": "beta"}), True),
    ("headers: {x-v: {regex: 'b.*'}}", ("GET", "/", {"x-v": "xbeta"}), False),
    ("headers: {x-v: {}}", ("GET", "/", {"x-v": ""}), True),
    ("headers: {x-v: {}}", ("GET", "/", {}), False),
    ("headers: {x-v: {exact: ''}}", ("GET", "/", {"x-v": ""}), True),
    ("withoutHeaders: {x-debug: {}}", ("GET", "/", {}), True),
    ("withoutHeaders: {x-debug: {}}", ("GET", "/", {"x-debug": "1"}), False),
    ("withoutHeaders: {x-debug: {regex: '*'}}", ("GET", "/", {"x-debug": "1"}), False),
    ("withoutHeaders: {x-env: {exact: prod}}", ("GET", "/", {}), True),
    ("withoutHeaders: {x-env: {exact: prod}}", ("GET", "/", {"x-env": "prod"}), False),
    ("withoutHeaders: {x-env: {exact: prod}}", ("GET", "/", {"x-env": "dev"}), True),
    ("queryParams: {id: {exact: '7'}}", ("GET", "/?id=7", {}), True),
    ("queryParams: {id: {exact: '7'}}", ("GET", "/?id=77", {}), False),
    ("queryParams: {id: {regex: '[0-9]+'}}", ("GET", "/?id=123", {}), True),
    ("queryParams: {id: {regex: '[0-9]+'}}", ("GET", "/?id=a123", {}), False),
    ("queryParams: {flag: {exact: ''}}", ("GET", "/?flag", {}), True),
    ("queryParams: {flag: {}}", ("GET", "/?flag=on", {}), True),
    ("queryParams: {flag: {}}", ("GET", "/?other=1", {}), False),
    ("scheme: {exact: http}", ("GET", "/", {}), True),
    ("scheme: {exact: https}", ("GET", "/", {}), False),
    ("authority: {exact: 'reviews:9080'}", ("GET", "/", {}), True),
    ("authority: {prefix: reviews}", ("GET", "/", {}), True),
    ("port: 9080", ("GET", "/", {}), True),
    ("headers: {a: {exact: '1'}, b: {exact: '2'}}", ("GET", "/", {"a": "1", "b": "2"}), True),
    ("headers: {a: {exact: '1'}, b: {exact: '2'}}", ("GET", "/", {"a": "1"}), False),
]


@pytest.mark.parametrize(("match", "request_", "expected"), MATCHES)
def test_match_conditions(
    match: str, request_: tuple[str, str, dict[str, str]], expected: bool
) -> None:
    """Each condition of ``HTTPMatchRequest`` is evaluated as Envoy evaluates it."""
    mesh = mesh_with(rules(f"match:\n- {match}\n{to('v2')}", to("v1")))
    method, path, headers = request_
    trace = drive(mesh, f"http://reviews:9080{path}", method=method, headers=headers)
    assert subset_of(trace) == ("v2" if expected else "v1")


def test_repeated_headers_are_joined_with_commas() -> None:
    """Envoy joins a repeated header's values with ``,`` before matching."""
    mesh = mesh_with(rules(f"match: [{{headers: {{x: {{exact: 'a,b'}}}}}}]\n{to('v2')}", to("v1")))
    request = drive(mesh, "http://reviews:9080/", headers=[("x", "a"), ("x", "b")])  # type: ignore[arg-type]
    assert subset_of(request) == "v2"


def test_match_items_are_or_conditions_within_are_and() -> None:
    """Several match items: any may match; within one item, all conditions must."""
    rule = f"match:\n- {{uri: {{prefix: /a}}, method: {{exact: POST}}}}\n- {{uri: {{prefix: /b}}}}\n{to('v2')}"
    mesh = mesh_with(rules(rule, to("v1")))
    assert subset_of(drive(mesh, "http://reviews:9080/b")) == "v2"
    assert subset_of(drive(mesh, "http://reviews:9080/a", method="POST")) == "v2"
    assert subset_of(drive(mesh, "http://reviews:9080/a")) == "v1"


def test_first_matching_rule_wins_and_no_match_is_404_nr() -> None:
    """Rules are tried in order; when none matches, the answer is 404 NR, no fallback."""
    mesh = mesh_with(
        rules(
            f"match: [{{uri: {{prefix: /a}}}}]\n{to('v2')}",
            f"match: [{{uri: {{prefix: /a}}}}]\n{to('v3')}",
        )
    )
    assert subset_of(drive(mesh, "http://reviews:9080/a")) == "v2"
    miss = drive(mesh, "http://reviews:9080/z")
    assert miss.reply.reply.status == 404
    assert miss.info.flags == ("NR",)
    assert miss.sends == []


def test_route_names() -> None:
    """MeshInfo.route is the rule's name (with the match's), else namespace/vs#index."""
    mesh = mesh_with(
        rules(
            f"name: canary\nmatch: [{{name: jason, headers: {{end-user: {{exact: jason}}}}}}]\n{to('v2')}",
            to("v1"),
        )
    )
    assert (
        drive(mesh, "http://reviews:9080/", headers={"end-user": "jason"}).info.route
        == "canary.jason"
    )
    assert drive(mesh, "http://reviews:9080/").info.route == "default/reviews#1"


@pytest.mark.parametrize(
    ("authority", "namespace", "routed"),
    [
        ("reviews", "default", True),
        ("reviews:9080", "default", True),
        ("reviews.default", "default", True),
        ("reviews.default.svc", "default", True),
        ("reviews.default.svc.cluster.local", "default", True),
        ("reviews.default.svc.cluster.local.", "default", True),
        ("REVIEWS.default", "default", True),
        ("reviews", "shop", False),
        ("reviews.default", "shop", True),
        ("reviews.default.svc.cluster.local:9080", "shop", True),
    ],
)
def test_authority_forms(authority: str, namespace: str, routed: bool) -> None:
    """Every form of a Kubernetes-style host a sidecar's virtual host accepts."""
    mesh = mesh_with(rules(to("v2")), namespace=namespace)
    trace = drive(mesh, f"http://{authority}/")
    if routed:
        assert subset_of(trace) == "v2"
    else:
        assert trace.info.cluster == "PassthroughCluster"


def test_service_without_virtual_service_takes_its_default_route() -> None:
    """A known host without VirtualService: all endpoints, Istio's default retry policy."""
    mesh = mesh_with()
    trace = drive(mesh, "http://reviews:9080/")
    assert trace.info.route == "default"
    assert trace.info.subset == ""
    assert trace.info.cluster == f"outbound|9080||{REVIEWS}"


def test_unknown_hosts_follow_the_outbound_traffic_policy() -> None:
    """ALLOW_ANY sends the request as it is; REGISTRY_ONLY answers 502 with no flag."""
    allow = drive(mesh_with(), "http://example.org/x?y=1")
    assert allow.sends[0].url == "http://example.org:80/x?y=1"
    assert allow.info.cluster == "PassthroughCluster"
    blocked = drive(mesh_with(outbound_traffic_policy="REGISTRY_ONLY"), "http://example.org/")
    assert blocked.reply.reply.status == 502
    assert blocked.reply.reply.body == b""
    assert blocked.info.flags == ()


SHOP = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shop, namespace: default}
spec:
  hosts: [shop.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.9.0.1}]
"""


@pytest.mark.parametrize(("policy", "status"), [("ALLOW_ANY", None), ("REGISTRY_ONLY", 502)])
def test_a_port_the_service_does_not_declare_is_unknown(policy: str, status: int | None) -> None:
    """Istio routes a ServiceEntry host only on its declared ports: on another port the
    request passes through (ALLOW_ANY) or is refused with 502 (REGISTRY_ONLY)."""
    mesh = Mesh.from_yaml(SHOP, outbound_traffic_policy=policy)
    assert drive(mesh, "http://shop.example.com/").info.cluster == "outbound|80||shop.example.com"
    trace = drive(mesh, "http://shop.example.com:8080/")
    if status is None:
        assert trace.info.cluster == "PassthroughCluster"
        assert trace.sends[0].url == "http://shop.example.com:8080/"
    else:
        assert trace.reply.reply.status == status
        assert trace.info.cluster == "BlackHoleCluster"


def test_a_virtual_service_host_off_its_ports_is_refused_under_registry_only() -> None:
    """A host known only from a VirtualService whose rules do not apply on the port
    called has no route there: 502 under REGISTRY_ONLY, not a passthrough."""
    vs = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: alias, namespace: default}
spec:
  hosts: [alias.example.com]
  http:
  - match: [{port: 8080}]
    route: [{destination: {host: shop.example.com}}]
"""
    mesh = Mesh.from_yaml(SHOP + "---\n" + vs, outbound_traffic_policy="REGISTRY_ONLY")
    assert (
        drive(mesh, "http://alias.example.com:8080/").info.cluster
        == "outbound|80||shop.example.com"
    )
    assert drive(mesh, "http://alias.example.com:9090/").reply.reply.status == 502


def test_undefined_subset_is_503_nc_and_empty_subset_is_503_uh() -> None:
    """A subset no DestinationRule defines: NC; a defined subset without endpoints: UH."""
    undefined = drive(mesh_with(rules(to("v9"))), "http://reviews:9080/")
    assert (undefined.reply.reply.status, undefined.info.flags) == (503, ("NC",))
    mesh = mesh_with(rules(to("v3")))
    mesh.set_endpoints(REVIEWS, [Endpoint("10.0.0.1", port=9080, labels={"version": "v1"})])
    empty = drive(mesh, "http://reviews:9080/")
    assert (empty.reply.reply.status, empty.reply.reply.body) == (503, b"no healthy upstream")
    assert empty.info.flags == ("UH",)


def test_attempt_goes_to_the_endpoint_with_the_service_authority() -> None:
    """Inner requests target the endpoint's address; Host keeps the service authority."""
    trace = drive(mesh_with(rules(to("v3"))), "http://reviews:9080/r?x=1")
    (attempt,) = trace.sends
    assert attempt.url == "http://10.0.0.3:9080/r?x=1"
    assert attempt.authority == "reviews:9080"
    assert ("x-envoy-attempt-count", "1") in attempt.edits.set
    assert trace.info.endpoint == "10.0.0.3:9080"


REDIRECTS = [
    ("{uri: /new}", "/old?q=1", 301, "http://reviews:9080/new?q=1"),
    ("{uri: /new, redirectCode: 302}", "/old", 302, "http://reviews:9080/new"),
    ("{authority: other.example}", "/p", 301, "http://other.example/p"),
    (
        "{authority: other.example, port: 8443, scheme: https}",
        "/p",
        301,
        "https://other.example:8443/p",
    ),
    ("{scheme: https}", "/p", 301, "https://reviews/p"),
    ("{scheme: https, port: 443}", "/p", 301, "https://reviews/p"),
    (
        "{authority: a.example, derivePort: FROM_REQUEST_PORT}",
        "/p",
        301,
        "http://a.example:9080/p",
    ),
    ("{redirectCode: 308, uri: /x}", "/p", 308, "http://reviews:9080/x"),
]


@pytest.mark.parametrize(("redirect", "path", "status", "location"), REDIRECTS)
def test_redirects(redirect: str, path: str, status: int, location: str) -> None:
    """``redirect`` answers without an upstream: code 301 by default, Location as Envoy builds it."""
    trace = drive(mesh_with(rules(f"redirect: {redirect}")), f"http://reviews:9080{path}")
    reply = trace.reply.reply
    assert (reply.status, dict(reply.headers)["location"]) == (status, location)
    assert trace.sends == []


def test_prefix_rewrite_redirect_replaces_the_matched_prefix() -> None:
    """``redirect.prefixRewrite`` swaps only the matched prefix."""
    trace = drive(
        mesh_with(rules("match: [{uri: {prefix: /foo}}]\nredirect: {prefixRewrite: /}")),
        "http://reviews:9080/foo/baz",
    )
    assert dict(trace.reply.reply.headers)["location"] == "http://reviews:9080//baz"


def test_direct_response_with_headers() -> None:
    """``directResponse`` answers with its status and body; route response headers apply."""
    rule = "directResponse: {status: 418, body: {string: teapot}}\nheaders: {response: {set: {content-type: text/plain}}}"
    reply = drive(mesh_with(rules(rule)), "http://reviews:9080/").reply.reply
    assert (reply.status, reply.body) == (418, b"teapot")
    assert ("content-type", "text/plain") in reply.headers


REWRITES = [
    ("match: [{uri: {prefix: /api}}]", "{uri: /v2}", "/api/items?x=1", "/v2/items"),
    ("match: [{uri: {exact: /api/items}}]", "{uri: /v2}", "/api/items", "/v2"),
    ("", "{uri: /new}", "/foo", "/newfoo"),
    ("match: [{uri: {regex: '/api/.*'}}]", "{uri: /all}", "/api/x", "/all"),
    (
        "",
        "{uriRegexRewrite: {match: '^/service/([^/]+)(/.*)$', rewrite: '\\2/instance/\\1'}}",
        "/service/foo/v1/api",
        "/v1/api/instance/foo",
    ),
    ("", "{uriRegexRewrite: {match: 'a', rewrite: 'b'}}", "/aaa", "/bbb"),
]


@pytest.mark.parametrize(("match", "rewrite", "path", "rewritten"), REWRITES)
def test_rewrites(match: str, rewrite: str, path: str, rewritten: str) -> None:
    """``rewrite.uri`` replaces the matched prefix (the whole path for exact/regex); the
    regex rewrite replaces every match; the query string is kept."""
    rule = (
        f"{match}\nrewrite: {rewrite}\n{to('v1')}" if match else f"rewrite: {rewrite}\n{to('v1')}"
    )
    (attempt,) = drive(mesh_with(rules(rule)), f"http://reviews:9080{path}").sends
    assert attempt.path == rewritten
    assert attempt.query == (path.partition("?")[2])


def test_authority_rewrite_by_rewrite_or_headers() -> None:
    """``rewrite.authority`` and ``headers.request.set[:authority|host]`` set the Host."""
    (by_rewrite,) = drive(
        mesh_with(rules(f"rewrite: {{authority: new.example}}\n{to('v1')}")),
        "http://reviews:9080/",
    ).sends
    assert by_rewrite.authority == "new.example"
    (by_header,) = drive(
        mesh_with(rules(f"headers: {{request: {{set: {{Host: h.example}}}}}}\n{to('v1')}")),
        "http://reviews:9080/",
    ).sends
    assert by_header.authority == "h.example"


def test_header_operations_on_request_and_response() -> None:
    """Route and destination header operations: set, add, remove; format strings rendered."""
    rule = """\
        headers:
          request: {set: {x-route: r, x-pct: '100%%', x-echo: '%REQ(end-user)%'}, add: {x-add: a}, remove: [x-drop]}
          response: {set: {x-resp: 'yes'}, remove: [server]}
        route:
        - destination: {host: reviews, subset: v1}
          headers: {request: {set: {x-dest: d}}, response: {add: {x-dest-resp: dr}}}
        """
    trace = drive(mesh_with(rules(rule)), "http://reviews:9080/", headers={"end-user": "jason"})
    (attempt,) = trace.sends
    assert {("x-route", "r"), ("x-pct", "100%"), ("x-echo", "jason"), ("x-dest", "d")} <= set(
        attempt.edits.set
    )
    assert ("x-add", "a") in attempt.edits.add
    assert "x-drop" in attempt.edits.remove
    deliver = trace.final
    assert isinstance(deliver, Deliver)
    assert ("x-resp", "yes") in deliver.edits.set
    assert ("x-dest-resp", "dr") in deliver.edits.add
    assert "server" in deliver.edits.remove


def test_source_conditions_are_settled_for_the_workload() -> None:
    """``sourceLabels``/``sourceNamespace`` select rules for the calling workload only."""
    vs = rules(f"match: [{{sourceLabels: {{app: productpage}}}}]\n{to('v2')}", to("v1"))
    mine = Mesh.from_yaml(
        SUBSETS
        + "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n"
        + textwrap.indent(vs, "  "),
        labels={"app": "productpage"},
    )
    mine.set_endpoints(
        REVIEWS,
        [
            Endpoint("10.0.0.2", port=9080, labels={"version": "v2"}),
            Endpoint("10.0.0.1", port=9080, labels={"version": "v1"}),
        ],
    )
    assert subset_of(drive(mine, "http://reviews:9080/")) == "v2"
    other = mesh_with(vs)
    assert subset_of(drive(other, "http://reviews:9080/")) == "v1"


def test_port_matches_drop_the_virtual_service_on_other_ports() -> None:
    """When every match names another port, the VirtualService does not apply: default route."""
    mesh = mesh_with(rules(f"match: [{{port: 8080}}]\n{to('v2')}"))
    assert drive(mesh, "http://reviews:9080/").info.route == "default"
    assert subset_of(drive(mesh, "http://reviews:8080/")) == "v2"


def test_delegate_rules_are_merged_into_the_root() -> None:
    """A root rule's ``delegate`` is replaced by the delegate's rules, matches merged."""
    delegate = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-delegate}
spec:
  http:
  - match: [{uri: {prefix: /api/v2}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{uri: {prefix: /other}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"""
    root = rules("name: api\nmatch: [{uri: {prefix: /api}}]\ndelegate: {name: reviews-delegate}")
    mesh = Mesh.from_yaml(
        SUBSETS
        + "---\n"
        + delegate
        + "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n"
        + textwrap.indent(root, "  "),
        seed=1,
    )
    mesh.set_endpoints(
        REVIEWS,
        [Endpoint(f"10.0.0.{n}", port=9080, labels={"version": f"v{n}"}) for n in (1, 2, 3)],
    )
    assert subset_of(drive(mesh, "http://reviews:9080/api/v2/x")) == "v2"
    assert subset_of(drive(mesh, "http://reviews:9080/api/v1")) == "v1"  # inherits the root's /api
    assert (
        drive(mesh, "http://reviews:9080/other").reply.reply.status == 404
    )  # /other conflicts with /api


def test_mirrors_are_sent_with_their_percentage() -> None:
    """``mirror`` (100 % by default) produces a shadow attempt to the mirror's cluster."""
    from meshlib._core._actions import Shadow

    trace = drive(
        mesh_with(rules(f"mirror: {{host: reviews, subset: v3}}\n{to('v1')}")),
        "http://reviews:9080/m",
    )
    (shadow,) = [a for a in trace.actions if isinstance(a, Shadow)]
    assert [a.url for a in shadow.attempts] == ["http://10.0.0.3:9080/m"]
    assert shadow.attempts[0].authority == "reviews:9080"
    never = drive(
        mesh_with(
            rules(
                f"mirror: {{host: reviews, subset: v3}}\nmirrorPercentage: {{value: 0}}\n{to('v1')}"
            )
        ),
        "http://reviews:9080/m",
    )
    assert not [a for a in never.actions if isinstance(a, Shadow)]


def test_grpc_requests_get_grpc_shaped_local_replies() -> None:
    """For ``application/grpc`` requests a local reply is a trailers-only 200 with grpc-status."""
    trace = drive(
        mesh_with(rules(to("v9"))),
        "http://reviews:9080/pkg.Svc/Call",
        method="POST",
        headers={"content-type": "application/grpc"},
    )
    reply = trace.reply.reply
    assert reply.status == 200
    assert ("grpc-status", "14") in reply.headers
    assert trace.info.flags == ("NC",)


def test_upstream_remote_address_names_the_endpoint_in_response_headers() -> None:
    """``%UPSTREAM_REMOTE_ADDRESS%`` is the endpoint that answered (response headers);
    request headers are formatted before an endpoint is chosen, where it is empty."""
    rule = """\
        headers:
          request: {set: {x-upstream: '%UPSTREAM_REMOTE_ADDRESS%'}}
          response: {set: {x-served-by: '%UPSTREAM_REMOTE_ADDRESS%'}}
        route: [{destination: {host: reviews, subset: v2}}]
        """
    trace = drive(mesh_with(rules(rule)), "http://reviews:9080/")
    assert ("x-upstream", "") in trace.sends[0].edits.set
    deliver = trace.final
    assert isinstance(deliver, Deliver)
    assert ("x-served-by", "10.0.0.2:9080") in deliver.edits.set


def test_update_endpoints_sets_many_hosts_at_once() -> None:
    """``update_endpoints`` replaces the endpoints of several hosts in one rebuild; an
    empty list removes a host's override, as ``set_endpoints`` does."""
    mesh = mesh_with(rules(to("v1")))
    mesh.update_endpoints(
        {
            "reviews": [Endpoint("10.9.0.1", port=9080, labels={"version": "v1"})],
            "ratings": [Endpoint("10.9.0.2", port=9080)],
        }
    )
    assert drive(mesh, "http://reviews:9080/").sends[0].address == "10.9.0.1"
    assert drive(mesh, "http://ratings:9080/").sends[0].address == "10.9.0.2"
    mesh.update_endpoints({"ratings": []})
    assert drive(mesh, "http://ratings:9080/").info.cluster == "PassthroughCluster"


def test_new_endpoints_take_effect_after_traffic() -> None:
    """A cluster found fast by its routing target is found again after new endpoints:
    the next request goes to the endpoints set last, not to the ones first used."""
    mesh = mesh_with(rules(to("v1")))
    mesh.set_endpoints(REVIEWS, [Endpoint("10.0.0.1", port=9080, labels={"version": "v1"})])
    assert drive(mesh, "http://reviews:9080/").info.endpoint == "10.0.0.1:9080"
    assert drive(mesh, "http://reviews:9080/").info.endpoint == "10.0.0.1:9080"
    mesh.set_endpoints(REVIEWS, [Endpoint("10.0.0.7", port=9080, labels={"version": "v1"})])
    assert drive(mesh, "http://reviews:9080/").info.endpoint == "10.0.0.7:9080"


def test_found_cluster_is_forgotten_when_rebuilt_or_changed() -> None:
    """Runtime.found_for answers only for the very target remembered, while its cluster
    is the one registered, and until the endpoints change."""
    mesh = mesh_with(rules(to("v1")))
    drive(mesh, "http://reviews:9080/")
    runtime = mesh.runtime
    [cluster] = [c for c in runtime.clusters.values() if c.key.subset == "v1"]
    target, other = object(), object()
    runtime.remember(target, cluster)
    assert runtime.found_for(target) is cluster
    assert runtime.found_for(other) is None
    runtime.clusters[cluster.key] = replace(cluster)  # rebuilt: a new runtime object
    assert runtime.found_for(target) is None
    runtime.clusters[cluster.key] = cluster
    runtime.endpoints_changed(0.0)
    assert runtime.found_for(target) is None
