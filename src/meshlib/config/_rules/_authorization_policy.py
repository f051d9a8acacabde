"""Istio's validation of AuthorizationPolicy (``pkg/config/validation`` and the CRD schema).

The webhook's ``ValidateAuthorizationPolicy`` with the attribute, IP, port, service
account and path-template checks of ``pkg/config/security``, plus the CRD's list bounds,
``targetRef`` bounds and its two "has()" rules (which, unlike the webhook, count a list
written empty as set).

Istio prefixes every AuthorizationPolicy error with ``invalid policy <name>.<namespace>:``;
meshlib's problems already name the resource, so messages here leave the prefix out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from meshlib.config._context import ResourceContext
from meshlib.config._problems import Path, Report
from meshlib.config._rules._common import go_quote, is_valid_ip
from meshlib.config._rules._gateway import context_annotations
from meshlib.config._rules._peer_authentication import validate_match_labels
from meshlib.config._security import (
    Action,
    AuthorizationPolicy,
    Condition,
    Operation,
    Rule,
    Source,
)
from meshlib.config._selectors import PolicyTargetReference

__all__ = ["validate_authorization_policy"]

_DRY_RUN = "istio.io/dry-run"
_GO_BOOLS = frozenset(
    {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
)
_ALLOWED_TARGETS = frozenset(
    {
        ("core", "Service"),
        ("networking.istio.io", "ServiceEntry"),
        ("gateway.networking.k8s.io", "Gateway"),
        ("gateway.networking.k8s.io", "GatewayClass"),
    }
)
_ALLOWED_TARGETS_TEXT = (
    "[core/v1/Service networking.istio.io/v1/ServiceEntry gateway.networking.k8s.io/v1/Gateway "
    "gateway.networking.k8s.io/v1/GatewayClass]"
)
_MAX_RULES = 512  # the CRD's maxItems on rules and on rules[].from
_MAX_TARGET_REFS = 16  # the CRD's maxItems on targetRefs
_MAX_TARGET_NAME = 253  # the CRD's maxLength on targetRef(s) name
_MAX_SERVICE_ACCOUNTS = 16
_MAX_SERVICE_ACCOUNT_LENGTH = 320
_MAX_PORT = 65535
_MAX_UINT32 = 2**32 - 1
_DIGITS = re.compile(r"[0-9]+\Z")
_PATH_LITERAL = re.compile(r"[a-zA-Z0-9\-._~%!$&'()+,;:@=]+\Z")
_DENY_TCP_WARNING = (
    "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to "
    "the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify "
    "the port"
)
_CUSTOM_SOURCE_FIELDS = (
    ("namespaces", "From.Namespaces"),
    ("not_namespaces", "From.NotNamespaces"),
    ("service_accounts", "From.ServiceAccounts"),
    ("not_service_accounts", "From.NotServiceAccounts"),
    ("principals", "From.Principals"),
    ("not_principals", "From.NotPrincipals"),
    ("request_principals", "From.RequestPrincipals"),
    ("not_request_principals", "From.NotRequestPrincipals"),
)
# Attribute keys whose values are not checked beyond being non-empty.
_PLAIN_ATTRIBUTES = frozenset(
    {
        "source.namespace",
        "source.principal",
        "request.auth.principal",
        "request.auth.audiences",
        "request.auth.presenter",
        "connection.sni",
    }
)
_IP_ATTRIBUTES = frozenset({"source.ip", "remote.ip", "destination.ip"})
_MAP_ATTRIBUTE_PREFIXES = (
    "request.headers",
    "request.experimental.inline.headers",
    "request.auth.claims",
    "experimental.envoy.filters.",
)


def validate_authorization_policy(
    spec: AuthorizationPolicy, context: ResourceContext, report: Report, path: Path
) -> None:
    """``ValidateAuthorizationPolicy``: target, action and provider, then every rule."""
    if not _check_dry_run(spec.action, context, report, path):
        return
    _validate_targets(spec, report, path)
    _validate_action(spec, report, path)
    rules_path = (*path, "rules")
    if len(spec.rules) > _MAX_RULES:
        report.error(rules_path, f"must have at most {_MAX_RULES} items")
    for index, rule in enumerate(spec.rules):
        where = (*rules_path, index)
        if where in report.nulls:
            report.error(where, f"`rule` must not be nil, found at rule {index}")
            continue
        _validate_rule(rule, index, spec.action, report, where)


def _check_dry_run(action: Action, context: ResourceContext, report: Report, path: Path) -> bool:
    """``checkDryRunAnnotation``: a boolean, and only for ALLOW and DENY; False stops."""
    value = context_annotations(context).get(_DRY_RUN)
    if value is None:
        return True
    where = (*path[:-1], "metadata", "annotations", _DRY_RUN)
    resource = f"{context.namespace}/{context.name}"
    if action not in (Action.ALLOW, Action.DENY):
        report.error(
            where,
            f"the annotation {_DRY_RUN} currently only supports action ALLOW/DENY, "
            f"found action {action.name} in {resource}",
        )
        return False
    if value not in _GO_BOOLS:
        report.error(
            where,
            f"{resource} has annotation {_DRY_RUN} with invalid value ({value}): "
            f"strconv.ParseBool: parsing {go_quote(value)}: invalid syntax",
        )
        return False
    return True


# -------------------------------------------------------------------------- targets


def _validate_targets(spec: AuthorizationPolicy, report: Report, path: Path) -> None:
    """At most one of selector/targetRef/targetRefs; the selector; each target reference."""
    refs_path = (*path, "targetRefs")
    chosen = (spec.selector is not None) + (spec.target_ref is not None)
    if chosen + bool(spec.target_refs) > 1:
        report.error(path, "only one of targetRefs or workloadSelector can be set")
    elif chosen + (bool(spec.target_refs) or refs_path in report.empty) > 1:
        report.error(path, "only one of targetRefs or selector can be set")
    validate_match_labels(spec.selector, report, (*path, "selector"))
    if spec.target_ref is not None:
        _validate_target_ref(spec.target_ref, report, (*path, "targetRef"))
    if len(spec.target_refs) > _MAX_TARGET_REFS:
        report.error(refs_path, f"must have at most {_MAX_TARGET_REFS} items")
    for index, ref in enumerate(spec.target_refs):
        where = (*refs_path, index)
        if where in report.nulls:
            report.error(where, "must be an object, not null")
        else:
            _validate_target_ref(ref, report, where)


def _validate_target_ref(ref: PolicyTargetReference, report: Report, path: Path) -> None:
    """``validatePolicyTargetReference`` and the CRD's ``name`` length."""
    if not ref.name:
        report.error((*path, "name"), "targetRef name must be set")
    elif len(ref.name) > _MAX_TARGET_NAME:
        report.error((*path, "name"), f"may not be longer than {_MAX_TARGET_NAME} characters")
    if ref.namespace:
        report.error(
            (*path, "namespace"),
            "targetRef namespace must not be set; cross namespace referencing is not supported",
        )
    if (ref.group or "core", ref.kind) not in _ALLOWED_TARGETS:
        report.error(
            path,
            f"targetRef must be to one of {_ALLOWED_TARGETS_TEXT} but was {ref.group}/{ref.kind}",
        )


# --------------------------------------------------------------------------- action


def _validate_action(spec: AuthorizationPolicy, report: Report, path: Path) -> None:
    """CUSTOM needs rules and a provider, and not identity fields; DENY needs rules."""
    if spec.action is Action.CUSTOM:
        if not spec.rules:
            report.error(
                path,
                "CUSTOM action without `rules` is meaningless as it will never be triggered, "
                "add an empty rule `{}` if you want it be triggered for every request",
            )
        elif spec.provider is None or not spec.provider.name:
            where = (*path, "provider") + (("name",) if spec.provider is not None else ())
            report.error(where, "`provider.name` must not be empty")
        for index, rule in enumerate(spec.rules):
            _check_custom_rule(rule, report, (*path, "rules", index))
    if spec.provider is not None and spec.action is not Action.CUSTOM:
        report.error(
            (*path, "provider"),
            f"`provider` must not be with non CUSTOM action, found {spec.action.name}",
        )
    if spec.action is Action.DENY and not spec.rules:
        report.error(
            path,
            "DENY action without `rules` is meaningless as it will never be triggered, "
            "add an empty rule `{}` if you want it be triggered for every request",
        )


def _check_custom_rule(rule: Rule, report: Report, path: Path) -> None:
    """CUSTOM (external authorization) cannot match on peer or request identities."""
    for index, rule_from in enumerate(rule.from_):
        source = rule_from.source
        if source is None:
            continue
        for attr, label in _CUSTOM_SOURCE_FIELDS:
            if getattr(source, attr):
                key = _yaml_key(attr)
                report.error(
                    (*path, "from", index, "source", key),
                    f"{label} is currently not supported with CUSTOM action",
                )
    for index, condition in enumerate(rule.when):
        where = (*path, "when", index)
        if where in report.nulls:
            report.error(where, "when field cannot be nil")
            continue
        key = condition.key
        if key in ("source.namespace", "source.serviceAccount", "source.principal") or (
            key.startswith("request.auth.")
        ):
            report.error((*where, "key"), f"{key} is currently not supported with CUSTOM action")


def _yaml_key(attr: str) -> str:
    head, *rest = attr.split("_")
    return head + "".join(part.capitalize() for part in rest)


# ----------------------------------------------------------------------------- rules


def _validate_rule(rule: Rule, index: int, action: Action, report: Report, path: Path) -> None:
    """One rule: its sources, operations and conditions; HTTP-only DENY rules warn."""
    suffix = f"found at rule {index}"
    from_path = (*path, "from")
    if len(rule.from_) > _MAX_RULES:
        report.error(from_path, f"must have at most {_MAX_RULES} items")
    has_from = tcp_from = False
    for position, rule_from in enumerate(rule.from_):
        where = (*from_path, position)
        if where in report.nulls:
            report.error(where, f"`from` must not be nil, {suffix}")
        elif rule_from.source is None:
            report.error(where, f"`from.source` must not be nil, {suffix}")
        else:
            has_from = True
            tcp_from |= _validate_source(rule_from.source, suffix, report, (*where, "source"))
    has_to = tcp_to = False
    for position, rule_to in enumerate(rule.to):
        where = (*path, "to", position)
        if where in report.nulls:
            report.error(where, f"`to` must not be nil, {suffix}")
        elif rule_to.operation is None:
            report.error(where, f"`to.operation` must not be nil, {suffix}")
        else:
            has_to = True
            tcp_to |= _validate_operation(rule_to.operation, suffix, report, (*where, "operation"))
    for position, condition in enumerate(rule.when):
        where = (*path, "when", position)
        if where in report.nulls:
            report.error(where, "`key` must not be empty")
        else:
            _validate_condition(condition, report, where)
    if action is Action.DENY and (
        (has_from and not has_to and not tcp_from) or (has_to and not tcp_to)
    ):
        report.warn(path, _DENY_TCP_WARNING)


def _validate_source(source: Source, suffix: str, report: Report, path: Path) -> bool:
    """``rules[].from[].source``; returns whether it uses TCP-level attributes."""
    identities = (
        source.principals,
        source.not_principals,
        source.namespaces,
        source.not_namespaces,
    )
    accounts = (source.service_accounts, source.not_service_accounts)
    if any(identities) and any(accounts):
        report.error(path, f"cannot set serviceAccounts with namespaces or principals, {suffix}")
    elif _written(
        report, path, ("principals", "notPrincipals", "namespaces", "notNamespaces"), identities
    ) and _written(report, path, ("serviceAccounts", "notServiceAccounts"), accounts):
        report.error(path, "Cannot set serviceAccounts with namespaces or principals")
    tcp_lists = (
        *identities,
        *accounts,
        source.ip_blocks,
        source.not_ip_blocks,
        source.remote_ip_blocks,
        source.not_remote_ip_blocks,
    )
    if not any(tcp_lists) and not source.request_principals and not source.not_request_principals:
        report.error(path, f"`from.source` must not be empty, {suffix}")
    for key in ("ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"):
        for position, problem in _ip_problems(getattr(source, _attr(key))):
            report.error((*path, key, position), problem)
    for key in (
        "principals",
        "requestPrincipals",
        "namespaces",
        "serviceAccounts",
        "ipBlocks",
        "remoteIpBlocks",
        "notPrincipals",
        "notRequestPrincipals",
        "notNamespaces",
        "notServiceAccounts",
        "notIpBlocks",
        "notRemoteIpBlocks",
    ):
        values: tuple[str, ...] = getattr(source, _attr(key))
        label = key[0].upper() + key[1:]
        found: tuple[int | None, str] | None = (
            _service_account_problem(label, values)
            if key.endswith("erviceAccounts")
            else _empty_value_problem(label, values)
        )
        if found is not None:
            at, problem = found
            report.error((*path, key) if at is None else (*path, key, at), problem)
    return any(tcp_lists)


def _written(
    report: Report, path: Path, keys: Sequence[str], values: Sequence[tuple[str, ...]]
) -> bool:
    """Whether any of the lists is set for a CRD ``has()`` (written empty counts)."""
    return any(values) or any((*path, key) in report.empty for key in keys)


def _attr(key: str) -> str:
    return re.sub(r"[A-Z]", lambda match: "_" + match.group(0).lower(), key)


def _validate_operation(operation: Operation, suffix: str, report: Report, path: Path) -> bool:
    """``rules[].to[].operation``; returns whether it names ports (TCP-level)."""
    keys = ("ports", "methods", "paths", "hosts", "notPorts", "notMethods", "notPaths", "notHosts")
    lists: dict[str, tuple[str, ...]] = {key: getattr(operation, _attr(key)) for key in keys}
    if not any(lists.values()):
        report.error(path, f"`to.operation` must not be empty, {suffix}")
    for key in ("ports", "notPorts"):
        for position, value in enumerate(lists[key]):
            problem = _port_problem(value)
            if problem:
                report.error((*path, key, position), problem)
    for key in keys:
        found = _empty_value_problem(key[0].upper() + key[1:], lists[key])
        if found is not None:
            report.error((*path, key, found[0]), found[1])
    for key in ("paths", "notPaths"):
        template = _path_template_problem(key[0].upper() + key[1:], lists[key])
        if template is not None:
            report.error((*path, key, template[0]), template[1])
    return bool(operation.ports or operation.not_ports)


def _validate_condition(condition: Condition, report: Report, path: Path) -> None:
    """``rules[].when[]``: a known attribute key, and values of the right shape."""
    key = condition.key
    if not key:
        report.error((*path, "key"), "`key` must not be empty")
        return
    if not condition.values and not condition.not_values:
        report.error(path, f"at least one of `values` or `notValues` must be set for key {key}")
        return
    key_problem = _attribute_key_problem(key)
    if key_problem:
        report.error((*path, "key"), f"invalid `value` for `key` {key}: {key_problem}")
        return
    for field, label in (("values", "value"), ("notValues", "notValue")):
        values: tuple[str, ...] = condition.values if field == "values" else condition.not_values
        for position, problem in _attribute_value_problems(key, values):
            where = (*path, field) if position is None else (*path, field, position)
            report.error(where, f"invalid `{label}` for `key` {key}: {problem}")


# ------------------------------------------------------------------ value checks


def _empty_value_problem(label: str, values: Sequence[str]) -> tuple[int, str] | None:
    """``CheckEmptyValues``: the first empty string in the list."""
    for position, value in enumerate(values):
        if not value:
            return position, f"empty value not allowed, found in {label}"
    return None


def _service_account_problem(label: str, values: Sequence[str]) -> tuple[int | None, str] | None:
    """``CheckServiceAccount``: ``name`` or ``namespace/name``, no wildcard; first problem."""
    if len(values) > _MAX_SERVICE_ACCOUNTS:
        return None, f"may not have more than {_MAX_SERVICE_ACCOUNTS} values"
    expected = "expected format 'serviceAccount' or 'namespace/serviceAccount', found"
    for position, value in enumerate(values):
        quoted = go_quote(value)
        problem = None
        if not value:
            problem = f"empty value not allowed, found in {label}"
        elif "*" in value:
            problem = f"wildcard not allowed, found in {label}"
        elif value.count("/") > 1:
            problem = f"{expected} {quoted} in {label}"
        elif len(value.encode()) > _MAX_SERVICE_ACCOUNT_LENGTH:
            problem = (
                f"value cannot exceed {_MAX_SERVICE_ACCOUNT_LENGTH} characters, "
                f"found {quoted} in {label}"
            )
        elif value.startswith("/"):
            problem = f"{expected} empty namespace {quoted} in {label}"
        elif value.endswith("/"):
            problem = f"{expected} empty serviceAccount {quoted} in {label}"
        if problem:
            return position, problem
    return None


def _prefix_problem(value: str) -> str | None:
    """Go's ``netip.ParsePrefix`` error text for ``value``, or None when it parses."""
    address, _, bits = value.rpartition("/")
    if not is_valid_ip(address):
        return f"ParseAddr({go_quote(address)}): unable to parse IP"
    if "%" in address:
        return "IPv6 zones cannot be present in a prefix"
    if (len(bits) > 1 and not "1" <= bits[0] <= "9") or not _DIGITS.match(bits):
        return f"bad bits after slash: {go_quote(bits)}"
    if int(bits) > (128 if ":" in address else 32):
        return "prefix length out of range"
    return None


def _ip_problems(values: Sequence[str]) -> list[tuple[int, str]]:
    """``security.ValidateIPs``: every entry an IP address or a CIDR range."""
    problems = []
    for position, value in enumerate(values):
        if "/" in value:
            problem = _prefix_problem(value)
            if problem:
                parsing = f"netip.ParsePrefix({go_quote(value)}): {problem}"
                problems.append((position, f"bad CIDR range ({value}): {parsing}"))
        elif not is_valid_ip(value):
            problems.append((position, f"bad IP address ({value})"))
    return problems


def _port_problem(value: str) -> str | None:
    """``security.ValidatePorts`` for one entry: a decimal number 0..65535."""
    if not _DIGITS.match(value):
        return f"bad port ({value}): strconv.ParseUint: parsing {go_quote(value)}: invalid syntax"
    number = int(value)
    if number > _MAX_UINT32:
        return (
            f"bad port ({value}): strconv.ParseUint: parsing {go_quote(value)}: value out of range"
        )
    if number > _MAX_PORT:
        return f"bad port ({value}): <nil>"
    return None


def _path_template_problem(label: str, paths: Sequence[str]) -> tuple[int, str] | None:
    """``CheckValidPathTemplate``: ``{*}`` and a last ``{**}`` as whole segments only."""
    for position, raw in enumerate(paths):
        has_template = "{*}" in raw or "{**}" in raw
        trimmed = raw.strip("/")
        head = f"invalid or unsupported path {trimmed}, found in {label}."
        found_any = False
        for glob in trimmed.split("/"):
            if glob == "{*}" and not found_any:
                continue
            if glob == "{**}" and not found_any:
                found_any = True
                continue
            problem = None
            if glob in ("{*}", "{**}"):
                problem = f"{head} {{**}} is not the last operator"
            elif "{" in glob or "}" in glob:
                problem = f"{head} Contains '{{' or '}}' beyond a supported path template"
            elif has_template and not _PATH_LITERAL.match(glob):
                problem = f"{head} Contains segment {glob} with invalid string literal"
            if problem:
                return position, problem
    return None


def _map_key_problem(key: str) -> str | None:
    """``validateMapKey``: ``name[inner]`` with a non-empty inner part."""
    opening = key.find("[")
    if key.endswith("]") and 0 < opening < len(key) - 2:
        return None
    return f"bad key ({key}): should have format a[b]"


def _attribute_key_problem(key: str) -> str | None:
    """The key half of ``security.ValidateAttribute``: a supported attribute name."""
    if key.startswith(_MAP_ATTRIBUTE_PREFIXES[:2]):
        return _map_key_problem(key)
    if key in _PLAIN_ATTRIBUTES or key in _IP_ATTRIBUTES:
        return None
    if key in ("source.serviceAccount", "destination.port"):
        return None
    if key.startswith(_MAP_ATTRIBUTE_PREFIXES[2:]):
        return _map_key_problem(key)
    if key == "destination.namespace":
        return f"attribute {key} is replaced by the metadata.namespace"
    if key.startswith("destination.labels"):
        return f"attribute {key} is replaced by the workload selector"
    if key in ("destination.name", "destination.user"):
        return f"deprecated attribute {key}: only supported in v1alpha1"
    return f"unknown attribute: {key}"


def _attribute_value_problems(key: str, values: Sequence[str]) -> list[tuple[int | None, str]]:
    """The value half of ``security.ValidateAttribute`` (an empty value stops the check)."""
    empty = _empty_value_problem(key, values)
    if empty is not None:
        return [empty]
    if key in _IP_ATTRIBUTES:
        return list(_ip_problems(values))
    if key == "destination.port":
        return [
            (position, problem)
            for position, value in enumerate(values)
            if (problem := _port_problem(value))
        ]
    if key == "source.serviceAccount":
        found = _service_account_problem(key, values)
        return [] if found is None else [found]
    return []
