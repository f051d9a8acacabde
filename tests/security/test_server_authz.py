"""AuthorizationPolicy evaluation, without sockets (``istio-api.md`` §4.2).

Each row is the policies of a workload (``shop``, labels ``app: cart``), a request and
the decision Istio's sidecar makes for it.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from meshlib import ConfigError
from meshlib.config import Action, AuthorizationPolicy, ObjectMeta, Resource, read_yaml
from meshlib.server import RequestAttributes, WorkloadPolicy

CLIENT = "spiffe://cluster.local/ns/shop/sa/client"
FRONTEND = "spiffe://cluster.local/ns/web/sa/frontend"
BASE = RequestAttributes(
    principal=CLIENT,
    source_ip="10.0.0.1",
    destination_ip="10.0.0.9",
    destination_port=8080,
    method="GET",
    path="/",
    host="cart.shop",
    headers={"host": "cart.shop"},
)


def ap(spec: str, name: str = "p", namespace: str = "shop", meta: str = "") -> str:
    """One AuthorizationPolicy document with a flow-style ``spec``."""
    return (
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        f"metadata: {{name: {name}, namespace: {namespace}{meta}}}\nspec: {spec}\n---\n"
    )


def rule(section: str) -> str:
    """An ALLOW policy with one rule."""
    return ap(f"{{rules: [{section}]}}")


def source(fields: str) -> str:
    """An ALLOW policy whose one rule has one source."""
    return rule(f"{{from: [{{source: {{{fields}}}}}]}}")


def operation(fields: str) -> str:
    """An ALLOW policy whose one rule has one operation."""
    return rule(f"{{to: [{{operation: {{{fields}}}}}]}}")


def when(fields: str) -> str:
    """An ALLOW policy whose one rule has one condition."""
    return rule(f"{{when: [{{{fields}}}]}}")


def workload(text: str, labels: dict[str, str] | None = None) -> WorkloadPolicy:
    """The policies of the ``shop`` workload ``app: cart`` (or ``labels``)."""
    return WorkloadPolicy(text, namespace="shop", labels=labels or {"app": "cart"})


DENY_ADMIN = ap("{action: DENY, rules: [{to: [{operation: {paths: [/admin*]}}]}]}", "deny-admin")
ALLOW_ALL = ap("{rules: [{}]}", "allow-all")
POST_ONLY = operation("methods: [POST]")
PLAINTEXT = {"principal": None}

TABLE = [
    ("no policy allows", "", {}, True),
    ("spec {} denies all", ap("{}"), {}, False),
    ("rules [{}] allows all", ALLOW_ALL, PLAINTEXT, True),
    ("ALLOW policies present, none matching, deny", POST_ONLY, {}, False),
    ("a matching ALLOW policy allows", POST_ONLY, {"method": "POST"}, True),
    ("DENY wins over ALLOW", ALLOW_ALL + DENY_ADMIN, {"path": "/admin/users"}, False),
    ("DENY not matching leaves ALLOW", ALLOW_ALL + DENY_ADMIN, {"path": "/shop"}, True),
    ("DENY alone, not matching, allows", DENY_ADMIN, {"path": "/shop"}, True),
    ("AUDIT alone never decides", ap("{action: AUDIT, rules: [{}]}"), {}, True),
    ("AUDIT never overrides deny", ap("{action: AUDIT, rules: [{}]}") + ap("{}", "d"), {}, False),
    # from.source: principals and the identity fields derived from the peer certificate
    ("principal exact", source("principals: [cluster.local/ns/shop/sa/client]"), {}, True),
    ("principal exact, other peer", source("principals: [cluster.local/ns/shop/sa/client]"), {"principal": FRONTEND}, False),
    ("principals are written without spiffe://", source("principals: ['spiffe://cluster.local/ns/shop/sa/client']"), {}, False),
    ("principal prefix wildcard", source("principals: [cluster.local/ns/shop/*]"), {}, True),
    ("principal prefix wildcard, other", source("principals: [cluster.local/ns/shop/*]"), {"principal": FRONTEND}, False),
    ("principal suffix wildcard", source("principals: ['*/sa/frontend']"), {"principal": FRONTEND}, True),
    ("principal suffix wildcard, other", source("principals: ['*/sa/frontend']"), {}, False),
    ("principal * is any mTLS peer", source("principals: ['*']"), {}, True),
    ("principal * needs mTLS", source("principals: ['*']"), PLAINTEXT, False),
    ("notPrincipals excludes", source("notPrincipals: [cluster.local/ns/web/*]"), {"principal": FRONTEND}, False),
    ("notPrincipals matches plaintext", source("notPrincipals: [cluster.local/ns/web/*]"), PLAINTEXT, True),
    ("namespaces", source("namespaces: [shop]"), {}, True),
    ("namespaces, other", source("namespaces: [shop]"), {"principal": FRONTEND}, False),
    ("namespaces wildcard", source("namespaces: ['we*']"), {"principal": FRONTEND}, True),
    ("namespaces need mTLS", source("namespaces: [shop]"), PLAINTEXT, False),
    ("notNamespaces", source("notNamespaces: [shop]"), {}, False),
    ("serviceAccounts in the policy's namespace", source("serviceAccounts: [client]"), {}, True),
    ("serviceAccounts ns/sa", source("serviceAccounts: [web/frontend]"), {"principal": FRONTEND}, True),
    ("serviceAccounts, other", source("serviceAccounts: [client]"), {"principal": FRONTEND}, False),
    ("notServiceAccounts", source("notServiceAccounts: [client]"), {}, False),
    ("ipBlocks CIDR", source("ipBlocks: [10.0.0.0/8]"), {}, True),
    ("ipBlocks CIDR, other", source("ipBlocks: [10.0.0.0/8]"), {"source_ip": "192.168.1.1"}, False),
    ("notIpBlocks", source("notIpBlocks: [10.0.0.1]"), {}, False),
    ("remoteIpBlocks is the peer for a direct client", source("remoteIpBlocks: [10.0.0.1/32]"), {}, True),
    ("IPv4-mapped peers match IPv4 blocks", source("ipBlocks: [10.0.0.0/8]"), {"source_ip": "::ffff:10.0.0.1"}, True),
    # to.operation
    ("paths exact", operation("paths: [/cart]"), {"path": "/cart"}, True),
    ("paths exact, longer", operation("paths: [/cart]"), {"path": "/cart/1"}, False),
    ("paths prefix", operation("paths: [/api/*]"), {"path": "/api/v1/x"}, True),
    ("paths suffix", operation("paths: ['*.png']"), {"path": "/img/a.png"}, True),
    ("path template {*} is one segment", operation("paths: ['/api/{*}/orders']"), {"path": "/api/7/orders"}, True),
    ("path template {*} not two", operation("paths: ['/api/{*}/orders']"), {"path": "/api/7/8/orders"}, False),
    ("path template {*} not empty", operation("paths: ['/api/{*}/orders']"), {"path": "/api//orders"}, False),
    ("path template {**} spans segments", operation("paths: ['/api/{**}']"), {"path": "/api/a/b/c"}, True),
    ("path template {**} may be empty", operation("paths: ['/api/{**}']"), {"path": "/api/"}, True),
    ("path template {**} needs the slash", operation("paths: ['/api/{**}']"), {"path": "/api"}, False),
    ("path template {**} then literal", operation("paths: ['/a/{**}/z']"), {"path": "/a/b/c/z"}, True),
    ("notPaths", operation("notPaths: [/admin*]"), {"path": "/admin"}, False),
    ("methods", operation("methods: [GET, HEAD]"), {"method": "HEAD"}, True),
    ("notMethods allows others", operation("notMethods: [DELETE]"), {}, True),
    ("notMethods denies the method", operation("notMethods: [DELETE]"), {"method": "DELETE"}, False),
    ("hosts ignore case", operation("hosts: [Cart.Shop]"), {}, True),
    ("hosts suffix", operation("hosts: ['*.shop']"), {}, True),
    ("hosts do not strip the port", operation("hosts: [cart.shop]"), {"host": "cart.shop:8080"}, False),
    ("ports", operation("ports: ['8080']"), {}, True),
    ("ports, other", operation("ports: ['9090']"), {}, False),
    ("notPorts", operation("notPorts: ['8080']"), {}, False),
    # when
    ("when header value", when("key: 'request.headers[X-Tenant]', values: [acme]"), {"headers": {"x-tenant": "acme"}}, True),
    ("when header absent", when("key: 'request.headers[X-Tenant]', values: [acme]"), {}, False),
    ("when header presence", when("key: 'request.headers[x-tenant]', values: ['*']"), {"headers": {"x-tenant": ""}}, True),
    ("when header notValues, absent", when("key: 'request.headers[x-tenant]', notValues: [evil]"), {}, True),
    ("when header notValues", when("key: 'request.headers[x-tenant]', notValues: [evil]"), {"headers": {"x-tenant": "evil"}}, False),
    ("when source.principal", when("key: source.principal, values: [cluster.local/ns/web/*]"), {"principal": FRONTEND}, True),
    ("when source.namespace", when("key: source.namespace, values: [web]"), {}, False),
    ("when source.ip", when("key: source.ip, values: [10.0.0.0/24]"), {}, True),
    ("when destination.port", when("key: destination.port, notValues: ['8080']"), {}, False),
    # scope: root namespace, other namespaces, selectors
    ("root-namespace policies apply", ap("{}", namespace="istio-system"), {}, False),
    ("other namespaces' policies do not", ap("{}", namespace="web"), {}, True),
    ("a matching selector applies", ap("{selector: {matchLabels: {app: cart}}}"), {}, False),
    ("a selector for other labels does not", ap("{selector: {matchLabels: {app: web}}}"), {}, True),
    ("root-namespace selectors select", ap("{selector: {matchLabels: {app: cart}}}", namespace="istio-system"), {}, False),
    # fields meshlib cannot evaluate fail closed, as Istio does
    ("unsupported field in ALLOW: rule dropped", source("requestPrincipals: ['*']"), {}, False),
    ("unsupported condition in ALLOW: rule dropped", when("key: 'request.auth.claims[iss]', values: [x]"), {}, False),
    (
        "unsupported condition in DENY: condition dropped",
        ap("{action: DENY, rules: [{to: [{operation: {paths: [/pay]}}], when: [{key: 'request.auth.claims[group]', values: [admins]}]}]}"),
        {"path": "/pay"},
        False,
    ),
    (
        "unsupported condition in DENY leaves the rest",
        ap("{action: DENY, rules: [{to: [{operation: {paths: [/pay]}}], when: [{key: 'request.auth.claims[group]', values: [admins]}]}]}"),
        {"path": "/cart"},
        True,
    ),
    ("unsupported source in DENY: denies wider", ap("{action: DENY, rules: [{from: [{source: {notRequestPrincipals: ['*']}}]}]}"), {}, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policies", "changes", "allowed"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE]
)
def test_authorization_table(policies: str, changes: dict[str, object], allowed: bool) -> None:
    """Each policy set decides the request exactly as an Istio sidecar would."""
    decision = workload(policies).authorize(replace(BASE, **changes))  # type: ignore[arg-type]
    assert decision.allowed is allowed


def test_dropped_allow_rule_leaves_the_other_rules() -> None:
    """Only the ALLOW rule with the unsupported field is dropped; the next rule still allows."""
    policy = ap(
        "{rules: [{when: [{key: request.auth.principal, values: [x]}]},"
        " {to: [{operation: {paths: [/public]}}]}]}"
    )
    assert workload(policy).authorize(replace(BASE, path="/public")).rule == 1
    assert not workload(policy).authorize(replace(BASE, path="/private")).allowed


def test_unsupported_fields_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Dropping a rule or a condition is announced once, when the policy is compiled."""
    with caplog.at_level(logging.WARNING, logger="meshlib.server"):
        workload(source("requestPrincipals: ['*']"))
    assert "the ALLOW rule is dropped and never matches" in caplog.text


def test_decision_names_the_policy_and_rule() -> None:
    """A decision says which policy and which of its rules decided, and why."""
    policies = workload(ALLOW_ALL + DENY_ADMIN)
    denied = policies.authorize(replace(BASE, path="/admin"))
    assert (denied.allowed, denied.reason, denied.policy, denied.rule) == (
        False,
        "denied by policy",
        "shop/deny-admin",
        0,
    )
    allowed = policies.authorize(BASE)
    assert (allowed.reason, allowed.policy) == ("allowed by policy", "shop/allow-all")
    missed = workload(POST_ONLY).authorize(BASE)
    assert (missed.reason, missed.policy, missed.rule) == ("no ALLOW policy matched", None, None)


def test_audit_marks_the_decision() -> None:
    """A matching AUDIT policy marks the decision without changing it."""
    audit = ap("{action: AUDIT, rules: [{to: [{operation: {paths: [/pay*]}}]}]}", "audit-pay")
    marked = workload(audit).authorize(replace(BASE, path="/pay/1"))
    assert (marked.allowed, marked.audit, marked.audit_policy) == (True, True, "shop/audit-pay")
    assert not workload(audit).authorize(BASE).audit


def test_deny_without_rules_never_matches() -> None:
    """A DENY policy without rules, which Istio's validation rejects, never matches."""
    assert read_yaml(ap("{action: DENY}")).errors
    deny = Resource(
        "AuthorizationPolicy",
        "security.istio.io/v1",
        ObjectMeta(name="empty-deny", namespace="shop"),
        AuthorizationPolicy(action=Action.DENY),
    )
    assert WorkloadPolicy([deny], namespace="shop").authorize(BASE).allowed


def test_custom_is_refused_at_load() -> None:
    """A CUSTOM policy that applies to the workload is refused with a clear error."""
    custom = ap("{action: CUSTOM, provider: {name: ext-authz}, rules: [{}]}", "ext")
    with pytest.raises(ConfigError, match=r"action CUSTOM .* is not supported"):
        workload(custom)
    assert workload(ap("{action: CUSTOM, provider: {name: x}, rules: [{}]}", namespace="web"))


def test_target_ref_policies_do_not_apply(caplog: pytest.LogCaptureFixture) -> None:
    """Policies bound with targetRefs are for gateways and waypoints: a sidecar skips them."""
    bound = ap("{targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: edge}]}")
    with caplog.at_level(logging.WARNING, logger="meshlib.server"):
        assert workload(bound).authorize(BASE).allowed
    assert "targetRef" in caplog.text


def test_dry_run_policies_only_shadow() -> None:
    """A dry-run DENY does not deny; the decision carries what it would have done."""
    dry = ap(
        "{action: DENY, rules: [{}]}",
        "would-deny",
        meta=", annotations: {istio.io/dry-run: 'true'}",
    )
    decision = workload(dry).authorize(BASE)
    assert decision.allowed
    assert decision.dry_run is not None
    assert (decision.dry_run.allowed, decision.dry_run.policy) == (False, "shop/would-deny")
    assert workload(ALLOW_ALL).authorize(BASE).dry_run is None


def test_oldest_policy_reported_first() -> None:
    """Among several matching DENY policies the oldest is the one reported."""
    newer = ap(
        "{action: DENY, rules: [{}]}", "newer", meta=", creationTimestamp: '2024-05-02T00:00:00Z'"
    )
    older = ap(
        "{action: DENY, rules: [{}]}", "older", meta=", creationTimestamp: '2024-05-01T00:00:00Z'"
    )
    assert workload(newer + older).authorize(BASE).policy == "shop/older"
