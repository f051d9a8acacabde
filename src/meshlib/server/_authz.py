"""AuthorizationPolicy: rules compiled once, evaluated per request in Istio's order.

Evaluation (``istio-api.md`` §4.2): any matching DENY policy denies; with no ALLOW policy
the request is allowed; a matching ALLOW policy allows; otherwise it is denied. AUDIT
policies only mark the decision. A rule matches when any ``from``, any ``to`` and every
``when`` match (a missing section matches anything); inside a ``source`` or
``operation`` every field must match, and a field matches when any of its values does
and none of its ``not`` values does.

Fields meshlib cannot evaluate fail closed exactly as Istio's generator fails for an
attribute it cannot express (``pilot/pkg/security/authz/model``): in an ALLOW policy the
whole rule is dropped, so it never allows anything; in a DENY or AUDIT policy only the
field is dropped, so the rule matches more widely. They are ``requestPrincipals`` and
``notRequestPrincipals`` and the ``request.auth.*`` conditions (meshlib has no
RequestAuthentication), ``connection.sni``, and the ``experimental.*`` and
``request.experimental.*`` conditions.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from meshlib.config import Action, AuthorizationPolicy, Condition, Operation, Resource, Source
from meshlib.server._audit import Decision, RequestAttributes
from meshlib.server._matchers import (
    Matcher,
    cidr_matcher,
    namespace_matcher,
    path_matcher,
    port_matcher,
    principal_matcher,
    service_account_matcher,
    string_matcher,
    trust_domain_of,
)

__all__ = ["CompiledPolicy", "compile_policy", "evaluate"]

logger = logging.getLogger("meshlib.server")

Attribute = Callable[[RequestAttributes], str | None]
MakeMatcher = Callable[[str], Matcher]


class _UnsupportedError(Exception):
    """A field or condition meshlib cannot evaluate (the message says which)."""


@dataclass(frozen=True, slots=True)
class _Field:
    """One field of a source, an operation or a condition: values ORed, ``not`` values
    excluded."""

    attribute: Attribute
    matchers: tuple[Matcher, ...]
    not_matchers: tuple[Matcher, ...]

    def matches(self, request: RequestAttributes) -> bool:
        value = self.attribute(request)
        if self.matchers and not any(match(value) for match in self.matchers):
            return False
        return not any(match(value) for match in self.not_matchers)


@dataclass(frozen=True, slots=True)
class _Rule:
    """A compiled rule: any source, any operation, every condition."""

    sources: tuple[tuple[_Field, ...], ...]
    operations: tuple[tuple[_Field, ...], ...]
    conditions: tuple[_Field, ...]

    def matches(self, request: RequestAttributes) -> bool:
        if self.sources and not any(_all(fields, request) for fields in self.sources):
            return False
        if self.operations and not any(_all(fields, request) for fields in self.operations):
            return False
        return _all(self.conditions, request)


def _all(fields: Sequence[_Field], request: RequestAttributes) -> bool:
    return all(field.matches(request) for field in fields)


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """One AuthorizationPolicy ready to evaluate; a dropped rule is ``None``."""

    name: str
    action: Action
    rules: tuple[_Rule | None, ...]
    dry_run: bool = False

    def first_match(self, request: RequestAttributes) -> int | None:
        """The index of the first rule that matches ``request``, or ``None``."""
        for index, rule in enumerate(self.rules):
            if rule is not None and rule.matches(request):
                return index
        return None


# ------------------------------------------------------------------------- attributes


def _principal(request: RequestAttributes) -> str | None:
    return request.principal


def _trust_domain(request: RequestAttributes) -> str | None:
    return trust_domain_of(request.principal)


def _source_ip(request: RequestAttributes) -> str | None:
    return request.source_ip


def _destination_ip(request: RequestAttributes) -> str | None:
    return request.destination_ip


def _destination_port(request: RequestAttributes) -> str | None:
    port = request.destination_port
    return None if port is None else str(port)


def _host(request: RequestAttributes) -> str | None:
    return request.host


def _method(request: RequestAttributes) -> str | None:
    return request.method


def _path(request: RequestAttributes) -> str | None:
    return request.path


def _header(name: str) -> Attribute:
    lowered = name.lower()
    return lambda request: request.headers.get(lowered)


def _header_value(pattern: str) -> Matcher:
    return string_matcher(pattern, header=True)


def _host_value(pattern: str) -> Matcher:
    return string_matcher(pattern, ignore_case=True, header=True)


def _trust_domain_value(pattern: str) -> Matcher:
    return string_matcher(pattern)


# ---------------------------------------------------------------------------- compile


def compile_policy(resource: Resource[AuthorizationPolicy]) -> CompiledPolicy:
    """Compile one policy; unsupported fields are dropped as Istio drops them, and logged."""
    spec = resource.spec
    name = f"{resource.namespace}/{resource.name}"
    strict = spec.action is Action.ALLOW
    rules: list[_Rule | None] = []
    for index, rule in enumerate(spec.rules):
        dropped: list[str] = []
        try:
            compiled = _Rule(
                sources=tuple(
                    _source(entry.source, resource.namespace, strict, dropped)
                    for entry in rule.from_
                    if entry.source is not None
                ),
                operations=tuple(
                    _operation(entry.operation) for entry in rule.to if entry.operation is not None
                ),
                conditions=tuple(
                    field
                    for condition in rule.when
                    if (field := _condition(condition, resource.namespace, strict, dropped))
                ),
            )
        except _UnsupportedError as error:
            logger.warning(
                "AuthorizationPolicy %s rules[%d]: %s is not supported by meshlib; "
                "the ALLOW rule is dropped and never matches",
                name,
                index,
                error,
            )
            rules.append(None)
            continue
        for what in dropped:
            logger.warning(
                "AuthorizationPolicy %s rules[%d]: %s is not supported by meshlib; it is "
                "left out, so the %s rule matches more requests",
                name,
                index,
                what,
                spec.action.name,
            )
        rules.append(compiled)
    dry_run = resource.metadata.annotations.get("istio.io/dry-run", "").lower() in (
        "1",
        "t",
        "true",
    )
    return CompiledPolicy(name=name, action=spec.action, rules=tuple(rules), dry_run=dry_run)


def _field(
    attribute: Attribute, make: MakeMatcher, values: Sequence[str], not_values: Sequence[str]
) -> _Field | None:
    if not values and not not_values:
        return None
    return _Field(attribute, tuple(map(make, values)), tuple(map(make, not_values)))


def _unsupported(what: str, strict: bool, dropped: list[str]) -> None:
    """ALLOW: give up on the rule. DENY and AUDIT: note the field and leave it out."""
    if strict:
        raise _UnsupportedError(what)
    dropped.append(what)


def _source(
    source: Source, namespace: str, strict: bool, dropped: list[str]
) -> tuple[_Field, ...]:
    if source.request_principals or source.not_request_principals:
        _unsupported("from.source.requestPrincipals", strict, dropped)

    def accounts(value: str) -> Matcher:
        return service_account_matcher(value, namespace)

    fields = (
        _field(_principal, principal_matcher, source.principals, source.not_principals),
        _field(_principal, namespace_matcher, source.namespaces, source.not_namespaces),
        _field(_principal, accounts, source.service_accounts, source.not_service_accounts),
        _field(_source_ip, cidr_matcher, source.ip_blocks, source.not_ip_blocks),
        _field(_source_ip, cidr_matcher, source.remote_ip_blocks, source.not_remote_ip_blocks),
        _field(_trust_domain, _trust_domain_value, source.trust_domains, source.not_trust_domains),
    )
    return tuple(field for field in fields if field is not None)


def _operation(operation: Operation) -> tuple[_Field, ...]:
    fields = (
        _field(_host, _host_value, operation.hosts, operation.not_hosts),
        _field(_destination_port, port_matcher, operation.ports, operation.not_ports),
        _field(_method, _header_value, operation.methods, operation.not_methods),
        _field(_path, path_matcher, operation.paths, operation.not_paths),
    )
    return tuple(field for field in fields if field is not None)


def _condition(
    condition: Condition, namespace: str, strict: bool, dropped: list[str]
) -> _Field | None:
    key = condition.key
    attribute: Attribute
    make: MakeMatcher
    if key.startswith("request.headers["):
        attribute, make = _header(key[len("request.headers[") : -1]), _header_value
    elif key in ("source.ip", "remote.ip"):
        attribute, make = _source_ip, cidr_matcher
    elif key == "destination.ip":
        attribute, make = _destination_ip, cidr_matcher
    elif key == "destination.port":
        attribute, make = _destination_port, port_matcher
    elif key == "source.principal":
        attribute, make = _principal, principal_matcher
    elif key == "source.namespace":
        attribute, make = _principal, namespace_matcher
    elif key == "source.serviceAccount":
        attribute, make = _principal, lambda value: service_account_matcher(value, namespace)
    else:
        # request.auth.*, connection.sni, experimental.*, request.experimental.*
        _unsupported(f"when.key {key}", strict, dropped)
        return None
    return _field(attribute, make, condition.values, condition.not_values)


# --------------------------------------------------------------------------- evaluate


def evaluate(policies: Sequence[CompiledPolicy], request: RequestAttributes) -> Decision:
    """Istio's decision for ``request`` under ``policies`` (dry-run ones only shadow it)."""
    enforced = [policy for policy in policies if not policy.dry_run]
    decision = _decide(enforced, request)
    if len(enforced) == len(policies):
        return decision
    return dataclasses.replace(decision, dry_run=_decide(policies, request))


def _first_hit(
    policies: Sequence[CompiledPolicy], action: Action, request: RequestAttributes
) -> tuple[str, int] | None:
    """The first policy with ``action`` that matches ``request``: its name and the index
    of its matching rule."""
    for policy in policies:
        if policy.action is action:
            rule = policy.first_match(request)
            if rule is not None:
                return policy.name, rule
    return None


def _decide(policies: Sequence[CompiledPolicy], request: RequestAttributes) -> Decision:
    """Istio's order: a matching AUDIT policy is noted; then a DENY match denies; no
    ALLOW policy at all allows; an ALLOW match allows; anything else is denied."""
    audited = _first_hit(policies, Action.AUDIT, request)

    def decided(allowed: bool, reason: str, hit: tuple[str, int] | None = None) -> Decision:
        policy, rule = hit if hit is not None else (None, None)
        return Decision(
            allowed=allowed,
            reason=reason,
            policy=policy,
            rule=rule,
            audit=audited is not None,
            audit_policy=audited[0] if audited is not None else None,
        )

    denied = _first_hit(policies, Action.DENY, request)
    if denied is not None:
        return decided(allowed=False, reason="denied by policy", hit=denied)
    if not any(policy.action is Action.ALLOW for policy in policies):
        return decided(allowed=True, reason="no ALLOW policy")
    allowed = _first_hit(policies, Action.ALLOW, request)
    if allowed is not None:
        return decided(allowed=True, reason="allowed by policy", hit=allowed)
    return decided(allowed=False, reason="no ALLOW policy matched")
