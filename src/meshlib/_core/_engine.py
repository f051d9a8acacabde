"""The request engine: one :class:`Call` per request, driven by a transport shell.

Theory of operation. A shell turns an ``httpx.Request`` into a :class:`RequestHead`,
starts a :class:`Call` and loops: ask the call for its next action, do it (send, sleep,
resolve, mirror), report the outcome, until the call ends with a local reply, a delivered
upstream response, or an exception to re-raise. All decisions happen here, in the order
an Istio sidecar takes them (``ARCHITECTURE.md``, per-request pipeline):

1. the authority names a service (or not: outbound traffic policy), the service's
   VirtualService picks the first matching rule (or none: 404 ``NR``), or the service
   takes its default route;
2. ``redirect`` and ``directResponse`` answer without an upstream;
3. one weighted draw picks the destination; an undefined subset is 503 ``NC``;
4. fault delay, then abort, each its own draw; neither retried nor counted by the
   route timeout, which starts after them;
5. mirrors are handed to the shell, fire and forget;
6. attempts: pick an endpoint, send, classify, retry with backoff while the policy and
   the route deadline allow;
7. deliver the response, or a local reply with Envoy's status, body and flags.

The engine never reads a clock or a random generator it was not given, never performs
I/O, and never blocks; the shells call it under the mesh's lock.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from meshlib._compile import CompiledRoute, OutboundPolicy, RouteTarget, RoutingTable
from meshlib._compile._services import Service
from meshlib._compile._table import ClusterTarget
from meshlib._core import _replies as replies
from meshlib._core._actions import (
    Action,
    Attempt,
    Deliver,
    Failed,
    Raise,
    Reply,
    Resolve,
    Responded,
    RouteTimeout,
    Send,
    Shadow,
    Sleep,
    WaitForConnection,
)
from meshlib._core._balancer import RandomBalancer
from meshlib._core._cluster import ClusterKey, HostState
from meshlib._core._fault import FaultPolicy
from meshlib._core._hash_policy import query_parameters, request_hash
from meshlib._core._headers import FormatContext, HeaderEdits, request_edits, response_edits
from meshlib._core._limits import Limits, PoolSettings, Ticket
from meshlib._core._locality import Group, Level
from meshlib._core._match import RequestMatcher
from meshlib._core._outlier import Result
from meshlib._core._replies import LocalReply
from meshlib._core._request import RequestHead
from meshlib._core._request_id import REQUEST_ID, new_request_id
from meshlib._core._retry import NO_RETRY, Failure, RetryPolicy, backoff_seconds
from meshlib._core._rewrite import redirect_location, redirect_status, rewrite_path
from meshlib._core._runtime import ClusterRuntime, Runtime
from meshlib._core._tls_policy import TlsTarget, cluster_tls
from meshlib._core._topology import Topology
from meshlib._endpoints import Endpoint
from meshlib._info import MeshInfo, envoy_order
from meshlib._labels import selects
from meshlib.config import HTTPRoute, Resolution, SimpleLB, TrafficPolicy

__all__ = ["Call", "EngineOptions", "FaultOverride"]

#: A test-kit hook: given the request and the routing so far, a fault to inject instead of
#: the route's (or None to keep the route's).
FaultOverride = Callable[[RequestHead, str, str], FaultPolicy | None]

#: The route of a known service without VirtualService: Istio's default retry policy, no
#: timeout, nothing else (``BuildDefaultHTTPOutboundRoute``).
_DEFAULT_ROUTE = CompiledRoute(
    name="default", index=0, matchers=(), spec=HTTPRoute(), targets=None
)
_PASSTHROUGH = "PassthroughCluster"
#: Resolutions that send to the host and port the caller asked for.
_ORIGINAL_DESTINATION = (Resolution.NONE, Resolution.DYNAMIC_DNS)
_BLACKHOLE = "BlackHoleCluster"
_RESET_FLAGS = {
    Failure.CONNECT: "UF",
    Failure.CONNECT_TIMEOUT: "UF",
    Failure.RESET: "UR",
    Failure.REFUSED_STREAM: "UR",
    Failure.TERMINATED: "UC",
}


@dataclass(slots=True)  # built per request: not frozen, for speed (see _actions)
class _Plan:
    """What every attempt of one request shares."""

    key: ClusterKey
    path: str
    edits: HeaderEdits
    per_try: float | None
    timeout: float | None
    deadline: float | None


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Mesh-wide settings the engine applies to every request."""

    hostname: str = ""
    connect_timeout: float = 10.0
    raise_upstream_errors: bool = False
    shadow_host_suffix: bool = False
    fault_override: FaultOverride | None = None
    source_address: str = "127.0.0.1"


class Call:
    """The decisions for one request. Drive it with :meth:`advance` until it ends."""

    def __init__(
        self,
        table: RoutingTable,
        runtime: Runtime,
        head: RequestHead,
        clock: Callable[[], float],
        rng: random.Random,
        options: EngineOptions,
    ) -> None:
        self.table = table
        self.runtime = runtime
        self.head = head
        self.clock = clock
        self.rng = rng
        self.options = options
        self.started = clock()
        self._flow = self._run()
        self._hash_value: int | None = None  # the request's consistent-hash key, if any
        self._set_cookie: str | None = None  # a generated consistentHash cookie
        self.deadline: float | None = None  # the route deadline, once attempts start
        self._active: HostState | None = None
        self._admitted: tuple[Limits, HostState] | None = None  # the connection held
        self._ticket: tuple[Limits, Ticket] | None = None  # waiting for a connection
        self._retry_slot: Limits | None = None  # a retry slot held (maxRetries)
        self._info: dict[str, Any] = {"attempts": 0, "flags": ()}
        #: ``x-request-id``: the caller's, or one generated when the call starts.
        self.request_id = ""
        self._id_edits = _NO_EDITS  # sets a generated x-request-id upstream
        #: What the shell's telemetry follows the call with; the engine never reads it.
        self.observer: Any = None

    # ---------------------------------------------------------------- driving the call

    def start(self) -> Action:
        """The first action."""
        return next(self._flow)

    def send(self, result: object = None) -> Action:
        """The next action, given the result of the previous one: an outcome for
        ``Send``, DNS answers (name to addresses) for ``Resolve``, None otherwise."""
        return self._flow.send(result)

    def finish(self) -> None:
        """The delivered response is closed, or the caller gave up: release what the
        request holds (its host, its connection or place in the queue, its retry slot)."""
        if self._ticket is not None:
            limits, ticket = self._ticket
            self._ticket = None
            if ticket.granted:
                self._admitted = (limits, ticket.host)
            else:
                limits.withdraw(ticket)
        self._release()
        self._end_retry()
        self._flow.close()

    @property
    def info(self) -> MeshInfo:
        """What happened so far, as ``response.extensions["meshlib"]`` reports it."""
        info = self._info
        return MeshInfo(
            route=info.get("route"),
            virtual_service=info.get("virtual_service"),
            destination=info.get("destination"),
            subset=info.get("subset", ""),
            port=info.get("port"),
            cluster=info.get("cluster"),
            endpoint=info.get("endpoint"),
            attempts=info["attempts"],
            flags=envoy_order(flags) if len(flags := info["flags"]) > 1 else flags,
            details=info.get("details", ""),
            elapsed=info.get("elapsed", 0.0),
        )

    # ------------------------------------------------------------------------ the flow

    def _run(self) -> Generator[Action, Any, None]:
        self._identify()
        routed = self._route()
        if isinstance(routed, LocalReply):
            yield self._reply(routed)
            return
        if routed is None:
            yield from self._passthrough()
            return
        route, matcher, target = routed
        cluster = self.table.cluster_target(target, self.head.port)
        key, service, labels = cluster.key, cluster.service, cluster.labels
        self._info["destination"] = target.host
        self._info["subset"] = target.subset
        self._info["port"] = key.port
        self._info["cluster"] = key.name
        if service is None or labels is None:
            yield self._reply(replies.cluster_not_found())
            return
        fault = self._fault_for(route.fault)
        if fault is not None and (yield from self._faults(fault)) is None:
            return  # aborted
        if route.mirrors:
            yield from self._mirrors(route, matcher, target)
        yield from self._attempts(route, matcher, target, cluster)

    def _route(
        self,
    ) -> LocalReply | tuple[CompiledRoute, RequestMatcher | None, RouteTarget] | None:
        """Steps 1-3: which rule applies, and which destination it sends to.

        Returns a local reply, the rule with its matched condition and destination, or
        None for Istio's passthrough (an unknown host under ``ALLOW_ANY``).
        """
        head, table = self.head, self.table
        host = table.route_host(head.host, head.port)
        if host is None:
            return self._unknown_host()
        virtual_host = table.virtual_host(host)
        if virtual_host is not None and virtual_host.applies_to_port(head.port):
            source = virtual_host.source
            self._info["virtual_service"] = virtual_host.name
            for route in virtual_host.routes:
                matched, matcher = _first_match(route, head)
                if matched:
                    self._info["route"] = _route_name(
                        route, matcher, source.namespace, source.name
                    )
                    return self._act(route, matcher)
            return replies.route_not_found()
        if table.service(host) is None:
            return self._unknown_host()
        self._info["route"] = "default"
        return _DEFAULT_ROUTE, None, RouteTarget(host)

    def _unknown_host(self) -> LocalReply | None:
        """No route for the authority: Istio's passthrough (None), or under
        ``REGISTRY_ONLY`` its block_all route."""
        if self.table.outbound_policy is OutboundPolicy.REGISTRY_ONLY:
            self._info["route"] = "block_all"
            self._info["cluster"] = _BLACKHOLE
            return replies.registry_only()
        return None

    def _act(
        self, route: CompiledRoute, matcher: RequestMatcher | None
    ) -> LocalReply | tuple[CompiledRoute, RequestMatcher | None, RouteTarget]:
        """Step 2-3: answer a redirect or direct response, or draw the destination."""
        spec = route.spec
        uri = matcher.uri if matcher is not None else None
        if spec.redirect is not None:
            location = redirect_location(self.head, spec.redirect, uri)
            return LocalReply(
                redirect_status(spec.redirect), b"", (("location", location),), details="redirect"
            )
        if spec.direct_response is not None:
            return self._direct_response(route)
        targets = route.targets
        if targets is None:
            return replies.route_not_found()
        target = (
            targets.pick(self.rng.randrange(targets.total))
            if len(targets.targets) > 1
            else targets.targets[0]
        )
        return route, matcher, target

    def _direct_response(self, route: CompiledRoute) -> LocalReply:
        response = route.spec.direct_response
        assert response is not None  # checked by the caller
        body = response.body
        content = b""
        if body is not None:
            content = body.string.encode() if body.string is not None else bytes(body.bytes or b"")
        edits = response_edits(route.spec.headers, self._format_context())
        headers = tuple(edits.set) + tuple(edits.add)
        return LocalReply(response.status, content, headers, details="direct_response")

    def _fault_for(self, fault: FaultPolicy | None) -> FaultPolicy | None:
        """The route's ``fault``, unless one injected from code replaces it."""
        override = self.options.fault_override
        if override is None:
            return fault
        injected = override(
            self.head, self._info.get("destination", ""), self._info.get("subset", "")
        )
        return injected or fault

    def _faults(self, fault: FaultPolicy) -> Generator[Action, Any, bool | None]:
        """Step 4: delay, then abort. Returns whether a delay was injected, or None when
        an abort answered the request."""
        delay = fault.draw_delay(self.rng)
        if delay is not None:
            self._flag("DI")
            yield Sleep(delay, "fault delay")
        abort = fault.draw_abort(self.rng, delayed=delay is not None)
        if abort is not None:
            yield self._reply(abort)
            return None
        return delay is not None

    def _mirrors(
        self, route: CompiledRoute, matcher: RequestMatcher | None, main: RouteTarget
    ) -> Generator[Action, Any, None]:
        """Step 5: copies of the request to each mirror whose percentage is drawn.

        A mirror gets the request as the route would send it (rewrites and header
        operations applied), with the same ``Host`` unless ``shadow_host_suffix``.
        """
        if not self.head.replayable:
            return
        attempts = []
        for target, percent in route.mirrors:
            if self.rng.randrange(1_000_000) >= int(percent * 10_000):
                continue
            attempt = self._mirror_attempt(route, matcher, main, target)
            if attempt is not None:
                attempts.append(attempt)
        if attempts:
            yield Shadow(tuple(attempts))

    def _mirror_attempt(
        self,
        route: CompiledRoute,
        matcher: RequestMatcher | None,
        main: RouteTarget,
        target: RouteTarget,
    ) -> Attempt | None:
        service = self.table.service(target.host)
        if service is None:
            return None
        mirrored = self.table.cluster_target(target, self.head.port)
        key, labels = mirrored.key, mirrored.labels
        if labels is None:
            return None
        cluster = self._cached_cluster(key, service, labels)
        if cluster is None:
            return None
        host = cluster.topology.pick(self.rng, self.clock())
        if host is None:
            return None
        edits = self._request_edits(route, main)
        pool = cluster.pool
        authority = edits.authority if edits.authority is not None else self.head.authority
        if self.options.shadow_host_suffix:
            name, colon, number = authority.partition(":")
            authority = f"{name}-shadow{colon}{number}"
        tls = cluster.tls.for_host(host, self.head.host)
        return Attempt(
            number=1,
            scheme="https" if tls is not None else self.head.scheme,
            address=host.address,
            port=host.port,
            path=self._path(route, matcher),
            query=self.head.query,
            authority=authority,
            edits=edits,
            deadline=self.clock() + route.timeout if route.timeout else None,
            connect_timeout=pool.connect_timeout,
            idle_timeout=pool.idle_timeout,
            cluster=key,
            host=host,
            tls=tls,
        )

    def _attempts(
        self,
        route: CompiledRoute,
        matcher: RequestMatcher | None,
        target: RouteTarget,
        destination: ClusterTarget,
    ) -> Generator[Action, Any, None]:
        """Steps 6-7: send, classify, retry, then deliver or answer locally."""
        key, service, labels = destination.key, destination.service, destination.labels
        assert service is not None  # the caller answered NC otherwise
        assert labels is not None
        retry = route.retry
        deadline = self.clock() + route.timeout if route.timeout else None
        self.deadline = deadline
        per_try = retry.per_try_timeout
        if per_try is not None and route.timeout is not None and per_try >= route.timeout:
            per_try = None  # Envoy ignores a per-try timeout at or above the route timeout
        plan: _Plan | None = None  # made once a first attempt is admitted
        tried: list[HostState] = []
        retries = 0
        avoid_previous: bool | None = None
        excluded: frozenset[int] = frozenset()
        while True:
            if service.resolution is Resolution.DNS:
                cluster = yield from self._cluster(key, service, labels)
            else:
                known = self.runtime.found_for(destination)
                if known is None:
                    known = self._cached_cluster(key, service, labels)
                    assert known is not None  # only DNS answers can be missing
                    self.runtime.remember(destination, known)
                cluster = known
            if cluster.detector is not None:
                cluster.sweep(self.clock())
            if avoid_previous is None:  # the first attempt
                hashing = self._hash_request(cluster.policy)
                avoid_previous = _avoids_previous_hosts(retry, route, hashing=hashing)
            if retry.retry_remote_localities and len(tried) >= 2 and len(tried) % 2 == 0:
                # Envoy's previous_priorities, update_frequency 2: every second retry,
                # the priority levels already tried get no load.
                excluded = frozenset(cluster.topology.level_of(h) for h in tried)
            host = self._pick(
                cluster, tried, avoid_previous, retry.host_selection_attempts, excluded
            )
            if host is None:
                yield self._reply(replies.no_healthy_upstream())
                return
            tried.append(host)
            admission = cluster.limits.admit(host)
            if admission.admitted:
                self._admitted = (cluster.limits, host)
            elif admission.ticket is None:  # overflow: answered at once, never retried
                yield self._reply(replies.overflow())
                return
            else:
                refused = yield from self._admit(cluster.limits, admission.ticket, deadline)
                if refused is not None:
                    yield self._reply(refused)
                    return
            if plan is None:
                plan = _Plan(
                    key=key,
                    path=self._path(route, matcher),
                    edits=self._request_edits(route, target),
                    per_try=per_try,
                    timeout=route.timeout,
                    deadline=deadline,
                )
            tls = cluster.tls.for_host(host, self.head.host)
            outcome = yield Send(self._attempt(host, plan, cluster.pool, retries + 1, tls))
            self._info["elapsed"] = self.clock() - self.started
            self._observe(cluster, host, outcome)
            self._end_retry()
            if isinstance(outcome, RouteTimeout):
                self._release()
                yield self._final_timeout(per_try=False, retried=False)
                return
            retriable = self._retriable(retry, outcome)
            if retriable and retries < retry.num_retries:
                if cluster.limits.take_retry():
                    self._retry_slot = cluster.limits
                    self._release()
                    retries += 1
                    wait = backoff_seconds(retries, retry.backoff_base, self.rng)
                    if deadline is not None and self.clock() + wait >= deadline:
                        yield Sleep(max(0.0, deadline - self.clock()), "backoff")
                        yield self._reply(replies.upstream_timeout(per_try=False))
                        return
                    yield Sleep(wait, "backoff")
                    continue
                self._flag("UO")  # maxRetries or the retry budget: the last answer stands
                retriable = False
            exhausted = retriable and retry.num_retries > 0
            if isinstance(outcome, Responded):
                if exhausted:
                    self._flag("URX")
                self._info["details"] = "via_upstream"
                edits = self._response_edits(route, target)
                if self._set_cookie is not None:
                    edits = edits.then(HeaderEdits(add=(("set-cookie", self._set_cookie),)))
                yield Deliver(edits)
                return
            self._release()
            yield self._final_failure(outcome, retried=exhausted)
            return

    def _hash_request(self, policy: TrafficPolicy | None) -> bool:
        """The request's hash for ``loadBalancer.consistentHash``; whether hashing is on.

        A generated cookie stands for the one Envoy derives from the application's
        connection: the client's address with a port drawn as a new connection's would be.
        """
        settings = policy.load_balancer if policy is not None else None
        consistent = settings.consistent_hash if settings is not None else None
        if consistent is None:
            return False
        head = self.head
        source = self.options.source_address
        cookie = consistent.http_cookie
        if cookie is not None and cookie.ttl is not None:  # a cookie may be generated
            port = self.rng.randrange(32768, 61000)
            source = f"[{source}]:{port}" if ":" in source else f"{source}:{port}"
        headers: Mapping[str, str | tuple[str, ...]] = head.headers
        if head.repeated:  # Envoy hashes every value of a repeated header, sorted
            headers = {**head.headers, **head.repeated}
        query = query_parameters(head.query) if consistent.http_query_parameter_name else {}
        result = request_hash(
            consistent, headers, query, source_ip=source, local_ip=f"0.0.0.0:{head.port}"
        )
        self._hash_value, self._set_cookie = result.hash, result.set_cookie
        return True

    def _admit(
        self, limits: Limits, ticket: Ticket, deadline: float | None
    ) -> Generator[Action, Any, LocalReply | None]:
        """Wait for a connection, as a pending request (an overflow is answered before).

        Returns None once the attempt may go, else the local reply that ends the request:
        504 ``UT`` when the route deadline passes while waiting (Envoy's route timer
        covers the pending queue; the per-try timer starts only once a connection is
        ready).
        """
        self._ticket = (limits, ticket)
        timeout = max(0.0, deadline - self.clock()) if deadline is not None else None
        yield WaitForConnection(ticket, timeout)
        self._ticket = None
        if ticket.granted:
            self._admitted = (limits, ticket.host)
            if deadline is None or self.clock() < deadline:
                return None
            self._release()  # handed over too late: the route deadline has passed
        else:
            limits.withdraw(ticket)
        return replies.upstream_timeout(per_try=False)

    def _observe(self, cluster: ClusterRuntime, host: HostState, outcome: object) -> None:
        """Tell outlier detection what the attempt says about ``host``.

        A response counts by its status (for gRPC, the ``grpc-status`` of its headers,
        mapped as Envoy maps it); a failure before the response, or a timeout, is a
        local-origin failure.
        """
        detector = cluster.detector
        if detector is None:
            return
        if isinstance(outcome, Responded):
            result = detector.result_of_status(self._outlier_status(outcome))
            if result is Result.SUCCESS:
                detector.succeeded(host)  # the common case: nothing can fire, no clock
                return
        else:
            result = Result.LOCAL_FAILURE
        if detector.record(host, result, cluster.hosts, self.clock()):
            cluster.topology.invalidate()

    def _outlier_status(self, outcome: Responded) -> int:
        grpc_status = outcome.headers.get("grpc-status") if self.head.is_grpc else None
        if grpc_status is not None and grpc_status.isdigit():
            return replies.http_status_for_grpc(int(grpc_status))
        return outcome.status

    # ------------------------------------------------------------------- the pieces

    def _passthrough(self) -> Generator[Action, Any, None]:
        """Istio's PassthroughCluster: sent as is, no retries, no timeout. (A fault
        injected from code still applies: tests fail external calls too.)"""
        head = self.head
        self._info["route"] = "allow_any"
        self._info["cluster"] = _PASSTHROUGH
        self._info["destination"] = head.host
        self._info["port"] = head.port
        fault = self._fault_for(None)
        if fault is not None and (yield from self._faults(fault)) is None:
            return
        attempt = Attempt(
            number=1,
            scheme=head.scheme,
            address=head.host,
            port=head.port,
            path=head.path,
            query=head.query,
            authority=head.authority,
            edits=self._id_edits,
            connect_timeout=self.options.connect_timeout,
        )
        self._info["attempts"] = 1
        self._info["endpoint"] = f"{head.host}:{head.port}"
        outcome = yield Send(attempt)
        self._info["elapsed"] = self.clock() - self.started
        if isinstance(outcome, Responded):
            self._info["details"] = "via_upstream"
            yield Deliver()
            return
        if isinstance(outcome, RouteTimeout):
            yield self._final_timeout(per_try=False, retried=False)
            return
        yield self._final_failure(outcome, retried=False)

    def _cluster(
        self, key: ClusterKey, service: Service, labels: Mapping[str, str]
    ) -> Generator[Action, Any, ClusterRuntime]:
        """The cluster's runtime, resolving DNS names first when the service needs it."""
        if service.resolution is Resolution.DNS:
            endpoints = [e for e in service.endpoints if selects(labels, e.labels)]
            names = self.runtime.stale_names(endpoints, self.clock())
            if names:
                answers = yield Resolve(names)
                for name in names:
                    self.runtime.resolved(name, answers.get(name, ()), self.clock())
        cluster = self._cached_cluster(key, service, labels)
        assert cluster is not None  # DNS answers were just recorded
        return cluster

    def _cached_cluster(
        self, key: ClusterKey, service: Service, labels: Mapping[str, str]
    ) -> ClusterRuntime | None:
        """The cluster's runtime from what is known now (no DNS lookups)."""
        policy = self.table.cluster_policy(key.host, key.subset, key.port)
        if service.resolution in _ORIGINAL_DESTINATION or _passthrough_lb(policy):
            # Istio's original destination: the address the caller asked for, per request.
            host = HostState(Endpoint(self.head.host), self.head.host, self.head.port)
            topology = Topology((Level(0, (Group("", (host,)),)),), RandomBalancer)
            limits = self.runtime.limits(key, policy)
            pool = self.runtime.pool_settings(policy)
            return ClusterRuntime(key, topology, (), policy, limits=limits, pool=pool)
        auto_mtls = self.table.auto_mtls(service.namespace)
        source: tuple[object, ...] = (service.endpoints, policy, auto_mtls)
        if service.resolution is Resolution.DNS:
            answers = tuple(self.runtime.dns.get(e.address) for e in service.endpoints)
            if any(a is None for a in answers):
                return None
            source = (*source, *answers)
        known = self.runtime.current(key, source)
        if known is not None:
            return known
        hosts = self._hosts(service, labels, key.port)
        runtime = self.runtime
        tls = cluster_tls(
            key,
            service,
            policy,
            auto_mtls=auto_mtls,
            trust_domain=runtime.trust_domain,
            has_identity=runtime.has_identity,
        )
        return runtime.cluster(key, hosts, policy, source, self.clock(), tls)

    def _hosts(self, service: Service, labels: Mapping[str, str], port: int) -> list[HostState]:
        spec = service.port(port)
        name, target = (spec.name, spec.target_port) if spec is not None else ("", 0)
        added = min(self.runtime.changed_at, self.clock())  # hosts kept carry their own
        return [
            HostState(endpoint, address, endpoint.target_port(port, name, target), added_at=added)
            for endpoint in service.endpoints
            if selects(labels, endpoint.labels)
            for address in self._addresses(service, endpoint)
        ]

    def _addresses(self, service: Service, endpoint: Endpoint) -> tuple[str, ...]:
        if service.resolution is Resolution.DNS:
            answer = self.runtime.dns.get(endpoint.address)
            if answer is not None:
                return answer.addresses
        return (endpoint.address,)

    def _pick(
        self,
        cluster: ClusterRuntime,
        tried: list[HostState],
        avoid: bool,
        re_picks: int,
        excluded: frozenset[int],
    ) -> HostState | None:
        """The cluster's pick; with ``avoid``, a retry re-picks up to ``re_picks`` times to
        avoid hosts already tried (Envoy's ``previous_hosts`` predicate), then takes the
        last pick anyway. A consistent hash re-pick walks on from the key's place."""
        topology, now = cluster.topology, self.clock()
        host = topology.pick(self.rng, now, hash_value=self._hash_value, excluded=excluded)
        if host is not None and tried and avoid:
            for attempt in range(1, re_picks + 1):
                if host not in tried:
                    break
                host = topology.pick(
                    self.rng, now, hash_value=self._hash_value, attempt=attempt, excluded=excluded
                )
        return host

    def _attempt(
        self,
        host: HostState,
        plan: _Plan,
        pool: PoolSettings,
        number: int,
        tls: TlsTarget | None = None,
    ) -> Attempt:
        host.active += 1
        self._active = host
        self._info["attempts"] = number
        self._info["endpoint"] = host.name
        route_edits = plan.edits
        sets = route_edits.set + _attempt_headers(number, pool.close_connection)
        if plan.deadline is not None or plan.per_try is not None:
            millis = str(self._expected_timeout_ms(plan, number))
            sets += (("x-envoy-expected-rq-timeout-ms", millis),)
        edits = HeaderEdits(sets, route_edits.add, route_edits.remove, route_edits.authority)
        return Attempt(
            number=number,
            # TLS origination: the application called http://, the endpoint gets TLS.
            scheme="https" if tls is not None else self.head.scheme,
            address=host.address,
            port=host.port,
            path=plan.path,
            query=self.head.query,
            authority=plan.edits.authority
            if plan.edits.authority is not None
            else self.head.authority,
            edits=edits,
            per_try_timeout=plan.per_try,
            deadline=plan.deadline,
            connect_timeout=pool.connect_timeout,
            idle_timeout=pool.idle_timeout,
            cluster=plan.key,
            host=host,
            tls=tls,
        )

    def _expected_timeout_ms(self, plan: _Plan, number: int) -> int:
        """``x-envoy-expected-rq-timeout-ms``, as Envoy's ``setTimeoutHeaders`` computes
        it: the per-try timeout, else the route timeout; on a retry, no more than what
        is left of the route timeout, in whole milliseconds elapsed."""
        per_try_ms = int(plan.per_try * 1000) if plan.per_try is not None else None
        if plan.deadline is None or plan.timeout is None:
            return per_try_ms or 0
        route_ms = int(plan.timeout * 1000)
        if number > 1:
            elapsed_ms = int((self.clock() - (plan.deadline - plan.timeout)) * 1000)
            route_ms = max(0, route_ms - elapsed_ms)
        return route_ms if per_try_ms is None else min(per_try_ms, route_ms)

    def _identify(self) -> None:
        """``x-request-id``: kept when the caller sent one, else a new UUID4, sent upstream
        with every attempt and mirror (Envoy's ``generate_request_id``, on in Istio)."""
        given = self.head.headers.get(REQUEST_ID)
        if given:
            self.request_id = given
        else:
            self.request_id = new_request_id(self.rng)
            self._id_edits = HeaderEdits(set=((REQUEST_ID, self.request_id),))

    def _request_edits(self, route: CompiledRoute, target: RouteTarget) -> HeaderEdits:
        spec = route.spec
        edits = self._id_edits  # first: the route's own header operations come after
        if spec.headers is not None or target.headers is not None:
            context = self._format_context()
            edits = edits.then(
                request_edits(spec.headers, context).then(request_edits(target.headers, context))
            )
        if spec.rewrite is not None and spec.rewrite.authority:
            edits = edits.then(HeaderEdits(authority=spec.rewrite.authority))
        return edits

    def _response_edits(self, route: CompiledRoute, target: RouteTarget) -> HeaderEdits:
        if route.spec.headers is None and target.headers is None:
            return _NO_EDITS
        context = self._format_context()
        edits = response_edits(route.spec.headers, context)
        return edits.then(response_edits(target.headers, context))

    def _path(self, route: CompiledRoute, matcher: RequestMatcher | None) -> str:
        return rewrite_path(self.head.path, route.spec.rewrite, matcher.uri if matcher else None)

    def _retriable(self, retry: RetryPolicy, outcome: Responded | Failed) -> bool:
        if retry is NO_RETRY or retry.num_retries == 0:
            return False
        if not self.head.replayable and not (
            isinstance(outcome, Failed) and not outcome.request_sent
        ):
            return False  # a streaming body that was sent cannot be sent again
        if isinstance(outcome, Responded):
            return retry.retries_response(outcome.status, outcome.headers, self.head.headers)
        return retry.retries_failure(outcome.failure, request_sent=outcome.request_sent)

    def _final_failure(self, outcome: Failed, *, retried: bool) -> Action:
        if retried:
            self._flag("URX")
        if self.options.raise_upstream_errors:
            self._flag(
                "UT" if outcome.failure is Failure.TIMEOUT else _RESET_FLAGS[outcome.failure]
            )
            return Raise()
        if outcome.failure is Failure.TIMEOUT:
            return self._reply(replies.upstream_timeout(per_try=True, retried=retried))
        reply = replies.upstream_reset(
            outcome.failure.value,
            _RESET_FLAGS[outcome.failure],
            retried=retried,
            transport_failure=outcome.detail,
        )
        return self._reply(reply)

    def _final_timeout(self, *, per_try: bool, retried: bool) -> Action:
        if self.options.raise_upstream_errors:
            self._flag("UT")
            return Raise()
        return self._reply(replies.upstream_timeout(per_try=per_try, retried=retried))

    def _reply(self, reply: LocalReply) -> Reply:
        for flag in reply.flags:
            self._flag(flag)
        self._info["details"] = reply.details
        self._info["elapsed"] = self.clock() - self.started
        return Reply(reply.for_grpc() if self.head.is_grpc else reply)

    def _release(self) -> None:
        """The attempt is over: its host has one request less, its connection is free."""
        if self._active is not None:
            self._active.active -= 1
            self._active = None
        if self._admitted is not None:
            limits, host = self._admitted
            self._admitted = None
            limits.release(host)

    def _end_retry(self) -> None:
        if self._retry_slot is not None:
            self._retry_slot.release_retry()
            self._retry_slot = None

    def _format_context(self) -> FormatContext:
        """What format strings see. ``%UPSTREAM_REMOTE_ADDRESS%`` is the endpoint once
        one answered (response headers); request headers are formatted before the
        endpoint is chosen, where it is empty."""
        return FormatContext(
            hostname=self.options.hostname,
            request_headers=self.head.headers,
            upstream_address=self._info.get("endpoint") or "",
            upstream_cluster=self._info.get("cluster", ""),
        )

    def _flag(self, flag: str) -> None:
        flags = self._info["flags"]
        if flag not in flags:
            self._info["flags"] = (*flags, flag)


_NO_EDITS = HeaderEdits()


@functools.lru_cache(maxsize=64)
def _attempt_headers(number: int, close: bool) -> tuple[tuple[str, str], ...]:
    """``x-envoy-attempt-count`` (Istio turns it on), and ``connection: close`` when
    ``maxRequestsPerConnection: 1`` turns keep-alive off."""
    headers = [("x-envoy-attempt-count", str(number))]
    if close:
        headers.append(("connection", "close"))
    return tuple(headers)


def _passthrough_lb(policy: TrafficPolicy | None) -> bool:
    """``loadBalancer.simple: PASSTHROUGH``: connect to the address the caller asked for."""
    settings = policy.load_balancer if policy is not None else None
    return settings is not None and settings.simple is SimpleLB.PASSTHROUGH


def _avoids_previous_hosts(retry: RetryPolicy, route: CompiledRoute, *, hashing: bool) -> bool:
    """Does a retry avoid the hosts already tried? Istio adds Envoy's ``previous_hosts``
    predicate unless the route's single destination hashes consistently (retries then
    stay with the key's host); ``retryIgnorePreviousHosts``, when set, decides instead."""
    if retry.previous_hosts_set or not hashing:
        return retry.retry_previous_hosts
    targets = route.targets
    single = targets is None or len(targets.targets) == 1
    return retry.retry_previous_hosts and not single


def _first_match(route: CompiledRoute, head: RequestHead) -> tuple[bool, RequestMatcher | None]:
    """Does ``route`` match, and on which of its matchers (None: a rule without matches)?"""
    if not route.matchers:
        return True, None
    for matcher in route.matchers:
        if matcher.matches(head):
            return True, matcher
    return False, None


def _route_name(
    route: CompiledRoute, matcher: RequestMatcher | None, namespace: str, name: str
) -> str:
    """The rule's name (``name.match`` as Envoy names it), else ``namespace/vs#index``."""
    if route.name:
        return (
            f"{route.name}.{matcher.name}" if matcher is not None and matcher.name else route.name
        )
    return f"{namespace}/{name}#{route.index}"
