"""``Mesh.explain``: the dry run names the route, destinations and policies, and why."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

import meshlib
from meshlib._explain import Explanation

BOOKINFO = Path(__file__).parent / "istio-samples" / "bookinfo-networking"
RULES = BOOKINFO / "destination-rule-all.yaml"
REVIEWS = "reviews.default.svc.cluster.local"
REVIEWS_ENDPOINTS = [
    meshlib.Endpoint("127.0.0.1", port=9081, labels={"version": "v1"}),
    meshlib.Endpoint("127.0.0.1", port=9082, labels={"version": "v2"}),
    meshlib.Endpoint("127.0.0.1", port=9083, labels={"version": "v3"}),
]


def bookinfo(*files: str, **options: object) -> meshlib.Mesh:
    """Bookinfo's DestinationRules plus ``files``, with reviews endpoints set in code."""
    mesh = meshlib.Mesh.from_paths(RULES, *(BOOKINFO / f for f in files), **options)
    mesh.set_endpoints("reviews", REVIEWS_ENDPOINTS)
    return mesh


def test_weighted_split_shows_both_destinations_with_shares_and_endpoints() -> None:
    """The 80/20 split lists v1 at 80 % and v2 at 20 %, each with its cluster and endpoint."""
    found = bookinfo("virtual-service-reviews-80-20.yaml").explain(
        "GET", "http://reviews:9080/reviews/0"
    )
    assert found.authority.host == REVIEWS
    assert found.virtual_service is not None
    assert (found.virtual_service.namespace, found.virtual_service.name) == ("default", "reviews")
    assert [(t.subset, t.weight, t.percent) for t in found.destinations] == [
        ("v1", 80, 80.0),
        ("v2", 20, 20.0),
    ]
    assert [t.cluster for t in found.destinations] == [
        f"outbound|9080|v1|{REVIEWS}",
        f"outbound|9080|v2|{REVIEWS}",
    ]
    assert [[e.name for e in t.endpoints] for t in found.destinations] == [
        ["127.0.0.1:9081"],
        ["127.0.0.1:9082"],
    ]
    assert all(t.reply is None for t in found.destinations)
    assert found.reply is None
    text = str(found)
    assert "weight 80 (80%)" in text
    assert "weight 20 (20%)" in text
    assert "endpoints: 127.0.0.1:9081" in text


def test_header_match_explains_the_matching_condition() -> None:
    """With ``end-user: jason`` rule #0 matches on its header condition and routes to v2."""
    found = bookinfo("virtual-service-reviews-test-v2.yaml").explain(
        "GET", "http://reviews:9080/", headers={"end-user": "jason"}
    )
    (rule,) = found.rules
    assert rule.index == 0
    assert rule.matched
    (item,) = rule.items
    assert item.matched
    assert [(c.field, c.expected, c.actual, c.holds) for c in item.conditions] == [
        ("headers.end-user", 'exact "jason"', "jason", True)
    ]
    assert found.route is not None
    assert found.route.name == "default/reviews#0"
    assert [t.subset for t in found.destinations] == ["v2"]
    assert 'rule #0: matched on match[0]: headers.end-user exact "jason"' in str(found)


def test_failed_header_match_names_the_header_then_the_next_rule_matches() -> None:
    """Without the header rule #0 fails on ``end-user`` (absent) and rule #1 matches."""
    found = bookinfo("virtual-service-reviews-test-v2.yaml").explain("GET", "http://reviews:9080/")
    first, second = found.rules
    assert not first.matched
    (mismatch,) = first.items[0].mismatches
    assert (mismatch.field, mismatch.actual) == ("headers.end-user", None)
    assert second.index == 1
    assert second.matched
    assert second.items == ()  # a rule without match conditions matches everything
    assert found.route is not None
    assert found.route.name == "default/reviews#1"
    assert [t.subset for t in found.destinations] == ["v1"]
    text = str(found)
    assert 'match[0] failed: headers.end-user: expected exact "jason", got nothing' in text
    assert "rule #1: matched (no match conditions)" in text


def test_unknown_host_under_allow_any_is_passed_through_without_retries() -> None:
    """An unknown host under ALLOW_ANY goes to PassthroughCluster with no retry, no timeout."""
    found = bookinfo("virtual-service-reviews-80-20.yaml").explain("GET", "http://example.com/a")
    assert found.authority.host is None
    assert found.authority.outbound_policy == "ALLOW_ANY"
    assert found.virtual_service is None
    assert found.route is not None
    assert found.route.name == "allow_any"
    assert found.route.retries.attempts == 0
    assert found.route.timeout is None
    (target,) = found.destinations
    assert target.cluster == "PassthroughCluster"
    assert [e.name for e in target.endpoints] == ["example.com:80"]
    assert found.reply is None
    assert "ALLOW_ANY: sent as is" in str(found)


def test_unknown_host_under_registry_only_is_refused_with_502() -> None:
    """An unknown host under REGISTRY_ONLY gets Istio's block_all reply: 502, no flag."""
    found = bookinfo(
        "virtual-service-reviews-80-20.yaml", outbound_traffic_policy="REGISTRY_ONLY"
    ).explain("GET", "http://example.com/a")
    assert found.authority.host is None
    assert found.reply is not None
    assert (found.reply.status, found.reply.flags) == (502, ())
    assert found.destinations == ()
    assert "reply: 502" in str(found)


def test_subset_without_destination_rule_is_cluster_not_found() -> None:
    """A route to a subset no DestinationRule defines explains 503 NC for that destination."""
    mesh = meshlib.Mesh.from_paths(BOOKINFO / "virtual-service-reviews-v3.yaml")
    mesh.set_endpoints("reviews", REVIEWS_ENDPOINTS)
    found = mesh.explain("GET", "http://reviews:9080/")
    (target,) = found.destinations
    assert target.subset == "v3"
    assert target.reply is not None
    assert (target.reply.status, target.reply.flags) == (503, ("NC",))
    assert "subset 'v3'" in target.reply.reason
    assert target.endpoints == ()
    assert "503 NC" in str(found)


def test_unregistered_service_is_cluster_not_found() -> None:
    """A destination host nothing registers (no ServiceEntry, no endpoints) is 503 NC too."""
    mesh = meshlib.Mesh.from_paths(RULES, BOOKINFO / "virtual-service-reviews-80-20.yaml")
    found = mesh.explain("GET", "http://reviews:9080/")
    assert [t.reply.flags if t.reply else () for t in found.destinations] == [("NC",), ("NC",)]
    assert all("not in the registry" in t.reply.reason for t in found.destinations if t.reply)


def test_subset_selecting_no_endpoint_is_no_healthy_upstream() -> None:
    """A defined subset whose labels select no endpoint explains 503 UH."""
    mesh = bookinfo("virtual-service-reviews-v3.yaml")
    mesh.set_endpoints("reviews", REVIEWS_ENDPOINTS[:1])
    (target,) = mesh.explain("GET", "http://reviews:9080/").destinations
    assert target.reply is not None
    assert (target.reply.status, target.reply.flags) == (503, ("UH",))


REDIRECT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: legacy
    match:
    - uri: {prefix: /old}
    redirect: {uri: /new, redirectCode: 302}
  - name: teapot
    match:
    - uri: {prefix: /tea}
    directResponse: {status: 418, body: {string: short and stout}}
"""


def test_redirect_reports_status_and_location() -> None:
    """A redirect rule answers locally with its status and the Location Envoy sends."""
    found = meshlib.Mesh.from_yaml(REDIRECT).explain("GET", "http://reviews:9080/old/a?x=1")
    assert found.route is not None
    assert found.route.name == "legacy"
    assert found.reply is not None
    assert found.reply.status == 302
    assert found.reply.location == "http://reviews:9080/new?x=1"
    assert found.destinations == ()
    assert "reply: 302: redirect, Location: http://reviews:9080/new?x=1" in str(found)


def test_direct_response_reports_status_and_body() -> None:
    """A directResponse rule answers locally with its status and body."""
    found = meshlib.Mesh.from_yaml(REDIRECT).explain("GET", "http://reviews:9080/tea")
    assert found.reply is not None
    assert (found.reply.status, found.reply.body) == (418, "short and stout")
    assert [r.matched for r in found.rules] == [False, True]


def test_no_matching_rule_is_route_not_found() -> None:
    """A VirtualService that covers the host but matches nothing explains 404 NR."""
    found = meshlib.Mesh.from_yaml(REDIRECT).explain("GET", "http://reviews:9080/other")
    assert found.reply is not None
    assert (found.reply.status, found.reply.flags) == (404, ("NR",))
    assert [r.matched for r in found.rules] == [False, False]
    assert found.route is None


def test_host_without_virtual_service_takes_the_default_route() -> None:
    """A registered host no VirtualService covers gets the default route and retry policy."""
    mesh = bookinfo("virtual-service-reviews-80-20.yaml")
    mesh.set_endpoints("details", [meshlib.Endpoint("127.0.0.1", port=9085)])
    found = mesh.explain("GET", "http://details:9080/details/0")
    assert found.virtual_service is None
    assert found.rules == ()
    assert found.route is not None
    assert (found.route.name, found.route.index, found.route.timeout) == ("default", None, None)
    retries = found.route.retries
    assert retries.default
    assert retries.attempts == 2
    assert set(retries.retry_on) == {
        "connect-failure",
        "refused-stream",
        "unavailable",
        "cancelled",
        "retriable-status-codes",
    }
    assert retries.backoff == 0.025
    (target,) = found.destinations
    assert target.cluster == "outbound|9080||details.default.svc.cluster.local"
    assert [e.name for e in target.endpoints] == ["127.0.0.1:9085"]
    assert "virtual service: none, default route" in str(found)
    assert "(Istio's default policy)" in str(found)


POLICIES = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shop}
spec:
  hosts: [shop.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.2, labels: {version: v2}, ports: {http: 8080}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop}
spec:
  host: shop.example.com
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3, interval: 10s}
  subsets:
  - {name: v1, labels: {version: v1}}
  - name: v2
    labels: {version: v2}
    trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
  hosts: [shop.example.com]
  http:
  - name: mobile
    match: [{sourceLabels: {app: mobile}}]
    route: [{destination: {host: shop.example.com, subset: v2}}]
  - name: api
    match: [{uri: {prefix: /api}, method: {exact: GET}}]
    rewrite: {uri: /v2/api}
    timeout: 3s
    retries: {attempts: 3, perTryTimeout: 1s, retryOn: "5xx,503", backoff: 100ms}
    fault:
      delay: {fixedDelay: 2s, percentage: {value: 10}}
      abort: {httpStatus: 503, percentage: {value: 0.5}}
    mirror: {host: shop.example.com, subset: v2}
    mirrorPercentage: {value: 25}
    headers: {request: {set: {x-a: "1"}}}
    route:
    - destination: {host: shop.example.com, subset: v1}
      weight: 3
    - destination: {host: shop.example.com, subset: v2}
      weight: 1
"""


def test_route_policies_are_reported() -> None:
    """Timeout, retries, fault, mirror, rewrite and header operations of the rule are shown."""
    found = meshlib.Mesh.from_yaml(POLICIES).explain("GET", "http://shop.example.com/api/x")
    route = found.route
    assert route is not None
    assert (route.name, route.index, route.timeout) == ("api", 1, 3.0)
    assert route.retries.attempts == 3
    assert set(route.retries.retry_on) == {"5xx", "retriable-status-codes"}
    assert route.retries.retriable_status_codes == (503,)
    assert (route.retries.per_try_timeout, route.retries.backoff) == (1.0, 0.1)
    assert route.fault is not None
    assert (route.fault.delay, route.fault.delay_percent) == (2.0, 10.0)
    assert (route.fault.abort_status, route.fault.abort_percent) == (503, 0.5)
    assert [(m.cluster, m.percent) for m in route.mirrors] == [
        ("outbound|80|v2|shop.example.com", 25.0)
    ]
    assert route.path == "/v2/api/x"
    assert route.rewrite == {"uri": "/v2/api"}
    assert route.headers == {"request": {"set": {"x-a": "1"}}}
    route_dict = found.to_dict()["route"]
    assert route_dict["timeout"] == "3s"
    assert route_dict["retries"]["perTryTimeout"] == "1s"
    assert route_dict["fault"]["delay"] == {"fixedDelay": "2s", "percentage": 10.0}
    text = str(found)
    assert "timeout: 3s" in text
    assert "fault: delay 2s for 10%; abort with HTTP 503 for 0.5%" in text
    assert "mirror: outbound|80|v2|shop.example.com for 25%" in text


def test_cluster_policies_are_the_effective_merged_traffic_policy() -> None:
    """Each cluster shows its effective TrafficPolicy in Istio's camelCase, subset merged in."""
    found = meshlib.Mesh.from_yaml(POLICIES).explain("GET", "http://shop.example.com/api/x")
    v1, v2 = found.destinations
    assert (v1.percent, v2.percent) == (75.0, 25.0)
    outlier = {"consecutive5xxErrors": 3, "interval": "10s"}
    assert v1.traffic_policy == {"outlierDetection": outlier}
    assert v2.traffic_policy == {
        "loadBalancer": {"simple": "ROUND_ROBIN"},
        "outlierDetection": outlier,
    }
    # The endpoint's named port (ports: {http: 8080}) is where the engine connects.
    assert [e.name for e in v2.endpoints] == ["10.0.0.2:8080"]


def test_source_labels_decide_which_rules_exist_for_the_client() -> None:
    """A rule for other workloads is skipped with a note; with the labels it matches."""
    other = meshlib.Mesh.from_yaml(POLICIES).explain("GET", "http://shop.example.com/")
    assert other.rules[0].note.startswith("every match item is for other workloads")
    assert not other.rules[1].matched
    fields = [c.field for c in other.rules[1].items[0].mismatches]
    assert fields == ["uri"]
    mobile = meshlib.Mesh.from_yaml(POLICIES, labels={"app": "mobile"})
    found = mobile.explain("POST", "http://shop.example.com/")
    assert found.route is not None
    assert found.route.name == "mobile"


def test_dns_endpoints_are_resolved_at_request_time() -> None:
    """A DNS ServiceEntry's endpoint is its name, marked as resolved when a request is sent."""
    found = meshlib.Mesh.from_yaml(POLICIES).explain("GET", "https://api.example.com/")
    (target,) = found.destinations
    (endpoint,) = target.endpoints
    assert endpoint.name == "api.example.com:443"
    assert endpoint.resolved_later
    assert "api.example.com:443 (resolved at request time)" in str(found)


@pytest.mark.parametrize(
    ("method", "url", "headers"),
    [
        ("GET", "http://reviews:9080/", {"end-user": "jason"}),
        ("GET", "http://reviews:9080/", {}),
        ("GET", "http://details:9080/", {}),
        ("GET", "http://example.com/", {}),
    ],
)
def test_explain_changes_no_runtime_state_and_draws_nothing(
    method: str, url: str, headers: dict[str, str]
) -> None:
    """``explain`` leaves the runtime clusters and the RNG state exactly as they were."""
    mesh = bookinfo("virtual-service-reviews-test-v2.yaml", seed=7)
    mesh.set_endpoints("details", [meshlib.Endpoint("127.0.0.1", port=9085)])
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    with httpx.Client(transport=mesh.transport(lambda _: mock)) as client:
        client.get("http://reviews:9080/")  # some runtime state to keep unchanged
    clusters, state = dict(mesh.runtime.clusters), mesh.rng.getstate()
    assert clusters
    mesh.explain(method, url, headers=headers)
    assert mesh.runtime.clusters == clusters
    assert mesh.rng.getstate() == state


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("http://reviews:9080/", {"end-user": "jason"}),
        ("http://reviews:9080/", {}),
        ("http://details:9080/", {}),
    ],
)
def test_explain_agrees_with_what_the_engine_does(url: str, headers: dict[str, str]) -> None:
    """The route, cluster and endpoint explained are those a real request reports."""
    mesh = bookinfo("virtual-service-reviews-test-v2.yaml")
    mesh.set_endpoints("details", [meshlib.Endpoint("127.0.0.1", port=9085)])
    found = mesh.explain("GET", url, headers=headers)
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    with httpx.Client(transport=mesh.transport(lambda _: mock)) as client:
        info = client.get(url, headers=headers).extensions["meshlib"]
    (target,) = found.destinations
    assert found.route is not None
    assert (info.route, info.cluster) == (found.route.name, target.cluster)
    assert info.endpoint in [e.name for e in target.endpoints]


def test_to_dict_is_json_with_istio_keys() -> None:
    """``to_dict`` survives a JSON round trip and uses Istio's camelCase keys."""
    found = bookinfo("virtual-service-reviews-test-v2.yaml").explain(
        "GET", "http://reviews:9080/", headers={"end-user": "jason"}
    )
    data = json.loads(json.dumps(found.to_dict()))
    assert data["virtualService"]["name"] == "reviews"
    assert data["rules"][0]["match"][0]["conditions"][0]["field"] == "headers.end-user"
    assert data["route"]["retries"]["retryOn"]
    assert data["route"]["retries"]["perTryTimeout"] is None
    assert data["destinations"][0]["cluster"] == f"outbound|9080|v2|{REVIEWS}"
    assert isinstance(found, Explanation)


@pytest.mark.parametrize("url", ["/relative", "ftp://reviews/", "reviews:9080/"])
def test_explain_needs_an_absolute_http_url(url: str) -> None:
    """A URL without http(s) scheme and host is a programming error: ValueError."""
    with pytest.raises(ValueError, match="absolute http"):
        meshlib.Mesh().explain("GET", url)


WILDCARD = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild}
spec:
  hosts: ["*.wild.example"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: NONE
"""


def test_wildcard_service_entry_sends_to_the_original_destination() -> None:
    """A wildcard NONE ServiceEntry names the cluster; the endpoint is the host asked for,
    and a real request reports the same cluster and endpoint."""
    mesh = meshlib.Mesh.from_yaml(WILDCARD)
    found = mesh.explain("GET", "http://a.wild.example/")
    assert found.route is not None
    assert found.route.name == "default"
    (target,) = found.destinations
    assert target.cluster == "outbound|80||*.wild.example"
    (endpoint,) = target.endpoints
    assert (endpoint.name, endpoint.original_destination) == ("a.wild.example:80", True)
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    with httpx.Client(transport=mesh.transport(lambda _: mock)) as client:
        info = client.get("http://a.wild.example/").extensions["meshlib"]
    assert (info.cluster, info.endpoint) == (target.cluster, endpoint.name)
