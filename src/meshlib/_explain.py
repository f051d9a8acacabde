"""``Mesh.explain``: what the mesh would do with a request, and why (a dry run).

The dry run follows the engine's pipeline (:mod:`meshlib._core._engine`, steps 1-3) on
the current routing table and reports each decision with its reason: which known host
the authority names, which VirtualService applies, which ``http`` rule matches (and
which condition of which match item failed for the rules before it), the action, the
destinations with their weights, clusters, endpoints and effective TrafficPolicy, and the
route's policies. It sends nothing, draws nothing from the mesh's random generator and
reads no runtime state: the engine's own matching functions decide, this module only
says why.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from meshlib._compile import CompiledRoute, OutboundPolicy, RouteTarget, RoutingTable, VirtualHost
from meshlib._compile._routes import MESH_GATEWAY, applies_to_workload
from meshlib._compile._table import Workload
from meshlib._core import _replies as replies
from meshlib._core._engine import (
    _DEFAULT_ROUTE,
    _ORIGINAL_DESTINATION,
    _first_match,
    _route_name,
)
from meshlib._core._fault import FaultPolicy
from meshlib._core._match import HeaderCondition, MatchKind, RequestMatcher
from meshlib._core._replies import LocalReply
from meshlib._core._request import RequestHead
from meshlib._core._retry import DEFAULT_RETRY, NO_RETRY, RetryPolicy
from meshlib._core._rewrite import redirect_location, redirect_status, rewrite_path
from meshlib._hostnames import is_wildcard
from meshlib._labels import selects
from meshlib._transports._common import request_head
from meshlib.config import HTTPDirectResponse, HTTPMatchRequest, Resolution
from meshlib.config._schema import yaml_key
from meshlib.config._values import Duration

if TYPE_CHECKING:
    from meshlib._compile import Service
    from meshlib._mesh import Mesh

__all__ = [
    "Authority",
    "Condition",
    "EndpointInfo",
    "Explanation",
    "Fault",
    "MatchCheck",
    "Mirror",
    "Reply",
    "Retries",
    "Route",
    "RuleCheck",
    "Target",
    "VirtualServiceRef",
    "explain",
]

_PASSTHROUGH = "PassthroughCluster"
#: Resolutions whose endpoint addresses are names, looked up when a request is sent.
_RESOLVED_LATER = (Resolution.DNS, Resolution.DNS_ROUND_ROBIN, Resolution.DYNAMIC_DNS)
_OTHER_WORKLOADS = (
    "every match item is for other workloads (gateways, sourceLabels, sourceNamespace)"
)

# ------------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class Authority:
    """How the request's authority resolved.

    ``host`` is the known FQDN it names on this port (``table.route_host``), or None
    for a host the mesh has no route for there, which ``outbound_policy`` then decides.
    """

    written: str
    port: int
    host: str | None
    outbound_policy: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "written": self.written,
            "port": self.port,
            "host": self.host,
            "outboundTrafficPolicy": self.outbound_policy,
        }

    def __str__(self) -> str:
        if self.host is not None:
            return f"{self.written} port {self.port} -> {self.host}"
        if self.outbound_policy == OutboundPolicy.REGISTRY_ONLY.value:
            consequence = "REGISTRY_ONLY: refused (Istio's BlackHoleCluster)"
        else:
            consequence = "ALLOW_ANY: sent as is (Istio's PassthroughCluster)"
        return f"{self.written} port {self.port} -> unknown to the mesh; {consequence}"


@dataclass(frozen=True, slots=True)
class VirtualServiceRef:
    """The VirtualService that covers the host, and the host pattern it covers it with.

    ``applies`` is False when none of its rules applies to the port called: the host
    then takes its default route, as pilot drops such a VirtualService.
    """

    namespace: str
    name: str
    host: str
    wildcard: bool
    applies: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "host": self.host,
            "wildcard": self.wildcard,
            "appliesToPort": self.applies,
        }

    def __str__(self) -> str:
        kind = "wildcard" if self.wildcard else "exact"
        text = f"{self.namespace}/{self.name} (host {self.host}, {kind})"
        return text if self.applies else f"{text}: no rule applies on this port, default route"


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition of a match item, and whether the request satisfies it.

    ``field`` is Istio's name for it (``uri``, ``headers.end-user``, ``port``, ...),
    ``expected`` what the condition asks, ``actual`` what the request (or, for
    ``gateways``, ``sourceLabels`` and ``sourceNamespace``, the client) has; None when
    it has nothing.
    """

    field: str
    expected: str
    actual: str | None
    holds: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "field": self.field,
            "expected": self.expected,
            "actual": self.actual,
            "holds": self.holds,
        }

    def __str__(self) -> str:
        if self.holds:
            return f"{self.field} {self.expected}"
        actual = "nothing" if self.actual is None else json.dumps(self.actual)
        return f"{self.field}: expected {self.expected}, got {actual}"


@dataclass(frozen=True, slots=True)
class MatchCheck:
    """One item of a rule's ``match`` list, its conditions evaluated against the request."""

    index: int
    name: str
    matched: bool
    conditions: tuple[Condition, ...] = ()

    @property
    def mismatches(self) -> tuple[Condition, ...]:
        """The conditions the request fails."""
        return tuple(c for c in self.conditions if not c.holds)

    @property
    def label(self) -> str:
        """``match[i]``, with the item's name if it has one."""
        return f"match[{self.index}]" + (f" {self.name!r}" if self.name else "")

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "index": self.index,
            "name": self.name,
            "matched": self.matched,
            "conditions": [c.to_dict() for c in self.conditions],
        }


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """One ``http`` rule, evaluated in order until the first match.

    ``items`` are its match items up to the one that matched; empty for a rule without
    ``match`` (it matches everything). ``note`` says why a rule does not exist for this
    client at all.
    """

    index: int
    name: str
    matched: bool
    items: tuple[MatchCheck, ...] = ()
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        found: dict[str, Any] = {
            "index": self.index,
            "name": self.name,
            "matched": self.matched,
            "match": [item.to_dict() for item in self.items],
        }
        if self.note:
            found["note"] = self.note
        return found

    def lines(self) -> Iterator[str]:
        """The rule's verdict, then one line per failed condition."""
        title = f"rule #{self.index}" + (f" {self.name!r}" if self.name else "")
        if self.note:
            yield f"{title}: skipped, {self.note}"
            return
        if not self.items:
            yield f"{title}: matched (no match conditions)"
            return
        if self.matched:
            item = self.items[-1]
            conditions = "; ".join(str(c) for c in item.conditions) or "no conditions"
            yield f"{title}: matched on {item.label}: {conditions}"
        else:
            yield f"{title}: no match"
        for item in self.items:
            for mismatch in item.mismatches:
                yield f"  {item.label} failed: {mismatch}"


@dataclass(frozen=True, slots=True)
class Reply:
    """A local reply: the mesh answers itself (status, Envoy flags, details, why)."""

    status: int
    flags: tuple[str, ...]
    details: str
    reason: str
    location: str | None = None
    body: str | None = None

    @classmethod
    def of(cls, reply: LocalReply, reason: str) -> Reply:
        """The report of one of the engine's local replies."""
        location = next((v for k, v in reply.headers if k == "location"), None)
        return cls(reply.status, reply.flags, reply.details, reason, location)

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        found: dict[str, Any] = {
            "status": self.status,
            "flags": list(self.flags),
            "details": self.details,
            "reason": self.reason,
        }
        if self.location is not None:
            found["location"] = self.location
        if self.body is not None:
            found["body"] = self.body
        return found

    def __str__(self) -> str:
        flags = f" {','.join(self.flags)}" if self.flags else ""
        text = f"{self.status}{flags}: {self.reason}"
        if self.location is not None:
            text += f", Location: {self.location}"
        if self.body:
            text += f", body {json.dumps(self.body)}"
        return text


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """An endpoint the destination's subset selects: where the engine would connect.

    ``resolved_later`` marks a host name that is looked up when a request is sent (DNS
    resolutions); ``address`` is then that name. ``original_destination`` marks Istio's
    original destination (resolution ``NONE``, ``DYNAMIC_DNS``): the host and port the
    caller asked for.
    """

    address: str
    port: int
    labels: Mapping[str, str]
    resolved_later: bool = False
    original_destination: bool = False

    @property
    def name(self) -> str:
        """``address:port``, as Envoy names an upstream host."""
        if ":" in self.address and not self.address.startswith("["):
            return f"[{self.address}]:{self.port}"  # as HostState.name: IPv6 in brackets
        return f"{self.address}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "address": self.address,
            "port": self.port,
            "labels": dict(self.labels),
            "resolvedAtRequestTime": self.resolved_later,
            "originalDestination": self.original_destination,
        }

    def __str__(self) -> str:
        notes = [
            note
            for note, applies in (
                ("original destination", self.original_destination),
                ("resolved at request time", self.resolved_later),
            )
            if applies
        ]
        return f"{self.name} ({', '.join(notes)})" if notes else self.name


@dataclass(frozen=True, slots=True)
class Target:
    """One destination of the route: its share, cluster, endpoints and policy.

    ``reply`` is the local reply a request that draws this destination gets before any
    upstream (503 ``NC`` for an undefined subset or an unknown service, 503 ``UH`` when
    the subset selects no endpoint), None when it can be sent. ``traffic_policy`` is the
    cluster's effective TrafficPolicy as Istio's YAML spells it.
    """

    host: str
    subset: str
    port: int
    weight: int
    percent: float
    cluster: str
    endpoints: tuple[EndpointInfo, ...] = ()
    traffic_policy: Mapping[str, Any] | None = None
    headers: Mapping[str, Any] | None = None
    reply: Reply | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "host": self.host,
            "subset": self.subset,
            "port": self.port,
            "weight": self.weight,
            "percent": self.percent,
            "cluster": self.cluster,
            "endpoints": [e.to_dict() for e in self.endpoints],
            "trafficPolicy": self.traffic_policy,
            "headers": self.headers,
            "reply": self.reply.to_dict() if self.reply is not None else None,
        }

    def lines(self) -> Iterator[str]:
        """A title line, then the details, indented."""
        subset = f" subset {self.subset}" if self.subset else ""
        yield (
            f"destination {self.host}{subset} port {self.port}: "
            f"weight {self.weight} ({_percent(self.percent)})"
        )
        yield f"  cluster: {self.cluster}"
        if self.reply is not None:
            yield f"  -> {self.reply}"
        if self.endpoints:
            yield "  endpoints: " + ", ".join(str(e) for e in self.endpoints)
        if self.cluster != _PASSTHROUGH and (self.reply is None or self.endpoints):
            yield f"  traffic policy: {_inline(self.traffic_policy)}"
        if self.headers:
            yield f"  headers: {_inline(self.headers)}"


@dataclass(frozen=True, slots=True)
class Retries:
    """The route's retry policy as Envoy applies it.

    ``per_try_timeout_ignored``: Envoy ignores a per-try timeout at or above the route
    timeout.
    """

    attempts: int
    retry_on: tuple[str, ...]
    retriable_status_codes: tuple[int, ...]
    per_try_timeout: float | None
    backoff: float
    per_try_timeout_ignored: bool = False
    default: bool = False

    @classmethod
    def of(cls, policy: RetryPolicy, route_timeout: float | None) -> Retries:
        """The report of an engine retry policy."""
        per_try = policy.per_try_timeout
        ignored = per_try is not None and route_timeout is not None and per_try >= route_timeout
        return cls(
            policy.num_retries,
            tuple(sorted(policy.retry_on)),
            tuple(sorted(policy.retriable_status_codes)),
            per_try,
            policy.backoff_base,
            ignored,
            policy == DEFAULT_RETRY,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (Istio's ``HTTPRetry`` keys)."""
        return {
            "attempts": self.attempts,
            "retryOn": list(self.retry_on),
            "retriableStatusCodes": list(self.retriable_status_codes),
            "perTryTimeout": _duration(self.per_try_timeout),
            "perTryTimeoutIgnored": self.per_try_timeout_ignored,
            "backoff": _duration(self.backoff),
            "default": self.default,
        }

    def __str__(self) -> str:
        if not self.attempts:
            return "none"
        codes = f" (status {', '.join(map(str, self.retriable_status_codes))})"
        text = f"{self.attempts} on {','.join(self.retry_on)}"
        text += codes if self.retriable_status_codes else ""
        if self.per_try_timeout is not None:
            ignored = " (ignored: not below the route timeout)"
            text += f", perTryTimeout {_duration(self.per_try_timeout)}"
            text += ignored if self.per_try_timeout_ignored else ""
        text += f", backoff base {_duration(self.backoff)}"
        return text + (" (Istio's default policy)" if self.default else "")


@dataclass(frozen=True, slots=True)
class Fault:
    """The route's fault injection: a delay and an abort, each with its percentage."""

    delay: float | None
    delay_percent: float
    abort_status: int | None
    abort_grpc_status: int | None
    abort_percent: float

    @classmethod
    def of(cls, fault: FaultPolicy) -> Fault:
        """The report of an engine fault policy."""
        return cls(
            fault.delay,
            100 * fault.delay_numerator / fault.delay_denominator,
            fault.abort_status,
            fault.abort_grpc_status,
            100 * fault.abort_numerator / fault.abort_denominator,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (Istio's ``HTTPFaultInjection`` keys, percentages as numbers)."""
        found: dict[str, Any] = {}
        if self.delay is not None:
            found["delay"] = {
                "fixedDelay": _duration(self.delay),
                "percentage": self.delay_percent,
            }
        if self.abort_status is not None or self.abort_grpc_status is not None:
            found["abort"] = {
                "httpStatus": self.abort_status,
                "grpcStatus": self.abort_grpc_status,
                "percentage": self.abort_percent,
            }
        return found

    def __str__(self) -> str:
        parts = []
        if self.delay is not None:
            parts.append(f"delay {_duration(self.delay)} for {_percent(self.delay_percent)}")
        if self.abort_status is not None or self.abort_grpc_status is not None:
            status = (
                f"HTTP {self.abort_status}"
                if self.abort_grpc_status is None
                else f"gRPC status {self.abort_grpc_status}"
            )
            parts.append(f"abort with {status} for {_percent(self.abort_percent)}")
        return "; ".join(parts) or "none"


@dataclass(frozen=True, slots=True)
class Mirror:
    """A mirror destination and the share of requests copied to it."""

    host: str
    subset: str
    port: int
    percent: float
    cluster: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "host": self.host,
            "subset": self.subset,
            "port": self.port,
            "percentage": self.percent,
            "cluster": self.cluster,
        }

    def __str__(self) -> str:
        return f"{self.cluster} for {_percent(self.percent)}"


@dataclass(frozen=True, slots=True)
class Route:
    """The route taken and its policies.

    ``name`` is what ``MeshInfo.route`` reports; ``index`` the rule's position in
    ``http`` (None for a default or passthrough route). ``path`` is the path sent
    upstream, after ``rewrite``. ``rewrite`` and ``headers`` are Istio's blocks as
    plain data.
    """

    name: str
    index: int | None
    timeout: float | None
    retries: Retries
    fault: Fault | None = None
    mirrors: tuple[Mirror, ...] = ()
    path: str = ""
    rewrite: Mapping[str, Any] | None = None
    headers: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (Istio's ``HTTPRoute`` keys where they echo one)."""
        return {
            "name": self.name,
            "index": self.index,
            "timeout": _duration(self.timeout),
            "retries": self.retries.to_dict(),
            "fault": self.fault.to_dict() if self.fault is not None else None,
            "mirrors": [m.to_dict() for m in self.mirrors],
            "path": self.path,
            "rewrite": self.rewrite,
            "headers": self.headers,
        }

    def lines(self, *, forwarded: bool = True) -> Iterator[str]:
        """The route's name, then one line per policy (for a route that answers itself,
        only its header operations)."""
        yield f"route: {self.name}"
        if not forwarded:
            yield from (f"  headers: {_inline(self.headers)}",) if self.headers else ()
            return
        yield f"  timeout: {_duration(self.timeout) or 'none'}"
        yield f"  retries: {self.retries}"
        if self.fault is not None:
            yield f"  fault: {self.fault}"
        for mirror in self.mirrors:
            yield f"  mirror: {mirror}"
        if self.rewrite:
            yield f"  rewrite: {_inline(self.rewrite)} (path sent: {self.path})"
        if self.headers:
            yield f"  headers: {_inline(self.headers)}"


@dataclass(frozen=True, slots=True)
class Explanation:
    """What the mesh would do with one request, and why.

    Read it top down: ``authority`` (which host), ``virtual_service`` and ``rules``
    (which rule, and why not the ones before), ``route`` (its policies), then either
    ``reply`` (the mesh answers itself: redirect, direct response, 404 ``NR``, 502) or
    ``destinations`` (one weighted draw per request picks one of them).
    """

    method: str
    url: str
    authority: Authority
    virtual_service: VirtualServiceRef | None = None
    rules: tuple[RuleCheck, ...] = ()
    route: Route | None = None
    reply: Reply | None = None
    destinations: tuple[Target, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data, ready for ``json.dumps``."""
        vs = self.virtual_service
        return {
            "method": self.method,
            "url": self.url,
            "authority": self.authority.to_dict(),
            "virtualService": vs.to_dict() if vs is not None else None,
            "rules": [rule.to_dict() for rule in self.rules],
            "route": self.route.to_dict() if self.route is not None else None,
            "reply": self.reply.to_dict() if self.reply is not None else None,
            "destinations": [target.to_dict() for target in self.destinations],
        }

    def __str__(self) -> str:
        return "\n".join(self._lines())

    def _lines(self) -> Iterator[str]:
        yield f"{self.method} {self.url}"
        yield f"authority: {self.authority}"
        if self.authority.host is not None:
            yield f"virtual service: {self.virtual_service or 'none, default route'}"
        for rule in self.rules:
            yield from rule.lines()
        if self.route is not None:
            yield from self.route.lines(forwarded=self.reply is None)
        for target in self.destinations:
            yield from target.lines()
        if self.reply is not None:
            yield f"reply: {self.reply}"


# ------------------------------------------------------------------------- the dry run


def explain(mesh: Mesh, method: str, url: str, headers: Mapping[str, str]) -> Explanation:
    """Explain how ``mesh`` would route the request, without sending it.

    Raises:
        ValueError: ``url`` is not an absolute http(s) URL.
    """
    request = httpx.Request(method, url, headers=headers)
    if request.url.scheme not in ("http", "https") or not request.url.host:
        raise ValueError(f"explain needs an absolute http or https URL, got {url!r}")
    head = request_head(request)
    table = mesh.table  # one snapshot for the whole dry run
    host = table.route_host(head.host, head.port)
    authority = Authority(head.host, head.port, host, table.outbound_policy.value)
    found = Explanation(head.method, url, authority)
    if host is None:
        return _unknown_host(found, head, table)
    virtual_host = table.virtual_host(host)
    if virtual_host is not None and virtual_host.applies_to_port(head.port):
        return _by_virtual_service(found, head, table, virtual_host)
    if virtual_host is not None:
        found = dataclasses.replace(found, virtual_service=_ref(virtual_host, applies=False))
    if table.service(host) is None:
        return _unknown_host(found, head, table)
    route = _route(_DEFAULT_ROUTE, None, head, table, "default")
    target = _target(RouteTarget(host), 1, head, table)
    return dataclasses.replace(found, route=route, destinations=(target,))


def _unknown_host(found: Explanation, head: RequestHead, table: RoutingTable) -> Explanation:
    if table.outbound_policy is OutboundPolicy.REGISTRY_ONLY:
        reason = "unknown host under REGISTRY_ONLY (Istio's block_all route)"
        return dataclasses.replace(found, reply=Reply.of(replies.registry_only(), reason))
    return _passthrough(found, head)


def _passthrough(found: Explanation, head: RequestHead) -> Explanation:
    """Istio's PassthroughCluster: sent as is, no retries, no timeout."""
    route = Route("allow_any", None, None, Retries.of(NO_RETRY, None), path=head.path)
    endpoint = EndpointInfo(head.host, head.port, {})
    target = Target(head.host, "", head.port, 1, 100.0, _PASSTHROUGH, (endpoint,))
    return dataclasses.replace(found, route=route, destinations=(target,))


def _ref(virtual_host: VirtualHost, *, applies: bool = True) -> VirtualServiceRef:
    source = virtual_host.source
    wildcard = is_wildcard(virtual_host.host)
    return VirtualServiceRef(source.namespace, source.name, virtual_host.host, wildcard, applies)


def _by_virtual_service(
    found: Explanation, head: RequestHead, table: RoutingTable, virtual_host: VirtualHost
) -> Explanation:
    """Steps 2-3: the first matching rule, then its action."""
    checks, route, matcher = _rule_checks(virtual_host, head, table.workload)
    found = dataclasses.replace(found, virtual_service=_ref(virtual_host), rules=checks)
    if route is None:
        reason = "the VirtualService covers the host but no rule matches"
        return dataclasses.replace(found, reply=Reply.of(replies.route_not_found(), reason))
    source = virtual_host.source
    name = _route_name(route, matcher, source.namespace, source.name)
    found = dataclasses.replace(found, route=_route(route, matcher, head, table, name))
    return _act(found, route, matcher, head, table)


def _act(
    found: Explanation,
    route: CompiledRoute,
    matcher: RequestMatcher | None,
    head: RequestHead,
    table: RoutingTable,
) -> Explanation:
    """The rule's action: redirect, direct response, or weighted destinations."""
    spec = route.spec
    if spec.redirect is not None:
        uri = matcher.uri if matcher is not None else None
        location = redirect_location(head, spec.redirect, uri)
        reply = Reply(redirect_status(spec.redirect), (), "redirect", "redirect", location)
        return dataclasses.replace(found, reply=reply)
    if spec.direct_response is not None:
        return dataclasses.replace(found, reply=_direct_response(spec.direct_response))
    targets = route.targets
    if targets is None:
        reason = "the rule has no destination"
        return dataclasses.replace(found, reply=Reply.of(replies.route_not_found(), reason))
    total = targets.total
    destinations = tuple(_target(t, t.weight / total, head, table) for t in targets.targets)
    return dataclasses.replace(found, destinations=destinations)


def _direct_response(response: HTTPDirectResponse) -> Reply:
    body, text = response.body, None
    if body is not None:
        text = body.string if body.string is not None else f"<{len(body.bytes or b'')} bytes>"
    return Reply(response.status, (), "direct_response", "direct response", body=text)


# ------------------------------------------------------------------------ rules, matches


def _rule_checks(
    virtual_host: VirtualHost, head: RequestHead, workload: Workload
) -> tuple[tuple[RuleCheck, ...], CompiledRoute | None, RequestMatcher | None]:
    """Each rule in order until the first match (decided by the engine's ``_first_match``)."""
    gateways = virtual_host.source.spec.gateways
    checks: list[RuleCheck] = []
    expected = 0
    for route in virtual_host.routes:
        dropped = range(expected, route.index)  # rules that do not exist for this client
        checks.extend(RuleCheck(i, "", matched=False, note=_OTHER_WORKLOADS) for i in dropped)
        expected = route.index + 1
        matched, matcher = _first_match(route, head)
        items = _match_checks(route, head, gateways, workload)
        checks.append(RuleCheck(route.index, route.name, matched, items))
        if matched:
            return tuple(checks), route, matcher
    return tuple(checks), None, None


def _match_checks(
    route: CompiledRoute, head: RequestHead, gateways: tuple[str, ...], workload: Workload
) -> tuple[MatchCheck, ...]:
    """The rule's match items until one matches, each with its conditions judged.

    Items for other workloads were dropped when compiling; the others pair, in order,
    with the rule's compiled matchers, whose own verdict decides.
    """
    compiled = iter(route.matchers)
    checks: list[MatchCheck] = []
    for index, match in enumerate(route.spec.match):
        if not applies_to_workload(match, gateways, workload):
            conditions = _workload_conditions(match, gateways, workload)
            checks.append(MatchCheck(index, match.name, matched=False, conditions=conditions))
            continue
        matcher = next(compiled)
        matched = matcher.matches(head)
        conditions = _conditions(matcher, head)
        checks.append(MatchCheck(index, match.name, matched=matched, conditions=conditions))
        if matched:
            break
    return tuple(checks)


def _conditions(matcher: RequestMatcher, head: RequestHead) -> tuple[Condition, ...]:
    """Every condition of ``matcher``, judged by the engine's matchers, in its order."""
    found: list[Condition] = []
    if matcher.port:
        port = str(head.port)
        found.append(Condition("port", str(matcher.port), port, matcher.port == head.port))
    strings = (
        ("uri", matcher.uri, head.path),
        ("method", matcher.method, head.method),
        ("scheme", matcher.scheme, head.scheme),
        ("authority", matcher.authority, head.authority),
    )
    for field, string, value in strings:
        if string is not None:
            found.append(Condition(field, string.describe(), value, string.matches(value)))
    found.extend(_header_condition(c, head.headers) for c in matcher.headers)
    params = head.query_params
    for query in matcher.query:
        name, given = f"queryParams.{query.name}", params.get(query.name)
        found.append(Condition(name, query.matcher.describe(), given, query.holds(params)))
    return tuple(found)


def _header_condition(condition: HeaderCondition, headers: Mapping[str, str]) -> Condition:
    expected = condition.matcher.describe()
    if condition.invert:
        absent = condition.matcher.kind is MatchKind.PRESENT
        expected = "absent" if absent else f"not {expected}"
    field = f"{'withoutHeaders' if condition.invert else 'headers'}.{condition.name}"
    return Condition(field, expected, headers.get(condition.name), condition.holds(headers))


def _workload_conditions(
    match: HTTPMatchRequest, gateways: tuple[str, ...], workload: Workload
) -> tuple[Condition, ...]:
    """Why a match item is for other workloads (``applies_to_workload`` said it is)."""
    found: list[Condition] = []
    bound = match.gateways or gateways
    if bound and MESH_GATEWAY not in bound:
        found.append(Condition("gateways", ", ".join(bound), MESH_GATEWAY, holds=False))
    if not selects(match.source_labels, workload.labels):
        client = _labels(workload.labels) or None
        found.append(Condition("sourceLabels", _labels(match.source_labels), client, holds=False))
    if match.source_namespace and match.source_namespace != workload.namespace:
        namespace = workload.namespace
        found.append(Condition("sourceNamespace", match.source_namespace, namespace, holds=False))
    return tuple(found)


# ------------------------------------------------------------- route, destinations


def _route(
    route: CompiledRoute,
    matcher: RequestMatcher | None,
    head: RequestHead,
    table: RoutingTable,
    name: str,
) -> Route:
    spec = route.spec
    uri = matcher.uri if matcher is not None else None
    return Route(
        name=name,
        index=route.index if route is not _DEFAULT_ROUTE else None,
        timeout=route.timeout,
        retries=Retries.of(route.retry, route.timeout),
        fault=Fault.of(route.fault) if route.fault is not None else None,
        mirrors=tuple(_mirror(t, percent, head, table) for t, percent in route.mirrors),
        path=rewrite_path(head.path, spec.rewrite, uri),
        rewrite=_plain_or_none(spec.rewrite),
        headers=_plain_or_none(spec.headers),
    )


def _mirror(target: RouteTarget, percent: float, head: RequestHead, table: RoutingTable) -> Mirror:
    key = table.cluster_target(target, head.port).key
    return Mirror(target.host, target.subset, key.port, percent, str(key))


def _target(target: RouteTarget, share: float, head: RequestHead, table: RoutingTable) -> Target:
    """One destination, as the engine would treat a request that draws it."""
    cluster = table.cluster_target(target, head.port)  # as the engine sees it
    service, key, labels = cluster.service, cluster.key, cluster.labels
    found = Target(
        host=target.host,
        subset=target.subset,
        port=key.port,
        weight=target.weight,
        percent=round(100 * share, 4),
        cluster=str(key),
        headers=_plain_or_none(target.headers),
    )
    if service is None or labels is None:
        return dataclasses.replace(found, reply=_not_found(target, service))
    policy = cluster.policy
    endpoints = _endpoints(service, labels, key.port, head)
    reply = None
    if not endpoints:
        selector = _labels(labels)
        reason = (
            f"no endpoint of {target.host} has the labels {selector}"
            if selector
            else f"{target.host} has no endpoints"
        )
        reply = Reply.of(replies.no_healthy_upstream(), reason)
    return dataclasses.replace(
        found, endpoints=endpoints, traffic_policy=_plain_or_none(policy), reply=reply
    )


def _not_found(target: RouteTarget, service: Service | None) -> Reply:
    if service is None:
        reason = f"{target.host} is not in the registry (no ServiceEntry, no endpoints set)"
    else:
        reason = f"no DestinationRule for {target.host} defines subset {target.subset!r}"
    return Reply.of(replies.cluster_not_found(), reason)


def _endpoints(
    service: Service, labels: Mapping[str, str], port: int, head: RequestHead
) -> tuple[EndpointInfo, ...]:
    """The endpoints the subset selects, at the address and port the engine connects to
    (``Call._cached_cluster`` and ``Call._hosts``, without DNS lookups: names stay names)."""
    later = service.resolution in _RESOLVED_LATER
    if service.resolution in _ORIGINAL_DESTINATION:  # the address the caller asked for
        return (EndpointInfo(head.host, head.port, {}, later, original_destination=True),)
    spec = service.port(port)
    name, target = (spec.name, spec.target_port) if spec is not None else ("", 0)
    return tuple(
        EndpointInfo(
            endpoint.address, endpoint.target_port(port, name, target), endpoint.labels, later
        )
        for endpoint in service.endpoints
        if selects(labels, endpoint.labels)
    )


# ------------------------------------------------------------------------ plain data


def _plain(value: Any) -> Any:
    """An Istio spec value as JSON-able data with Istio's camelCase keys; fields left at
    their defaults are left out, as proto JSON leaves them out."""
    if isinstance(value, Duration):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.metadata.get("key") or yaml_key(field.name): _plain(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if not _is_default(field, getattr(value, field.name))
        }
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _is_default(field: dataclasses.Field[Any], value: Any) -> bool:
    if field.default is not dataclasses.MISSING:
        return bool(value == field.default)
    if field.default_factory is not dataclasses.MISSING:
        return bool(value == field.default_factory())
    return False


def _plain_or_none(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    plain: Mapping[str, Any] = _plain(value)
    return plain


def _duration(seconds: float | None) -> str | None:
    """Seconds in Istio's duration syntax (``2s``, ``250ms``), or None."""
    return None if seconds is None else str(Duration.from_seconds(seconds))


def _percent(value: float) -> str:
    return f"{round(value, 4):g}%"


def _labels(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _inline(value: Mapping[str, Any] | None) -> str:
    return "none" if value is None else json.dumps(value, separators=(", ", ": "))
