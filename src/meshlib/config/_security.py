"""PeerAuthentication and AuthorizationPolicy: Istio's ``security/v1beta1`` as frozen data.

Server-side policy: which peers may connect with or without mTLS, and who may call
what. See ``istio-api.md`` §4.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshlib.config._selectors import PolicyTargetReference, WorkloadSelector

__all__ = [
    "Action",
    "AuthorizationPolicy",
    "Condition",
    "ExtensionProvider",
    "MutualTLS",
    "MutualTLSMode",
    "Operation",
    "PeerAuthentication",
    "Rule",
    "RuleFrom",
    "RuleTo",
    "Source",
]


class MutualTLSMode(enum.Enum):
    """``PeerAuthentication.MutualTLS.Mode``. UNSET inherits from the wider scope."""

    UNSET = 0
    DISABLE = 1
    PERMISSIVE = 2
    STRICT = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class MutualTLS:
    """``PeerAuthentication.MutualTLS``."""

    mode: MutualTLSMode = MutualTLSMode.UNSET


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerAuthentication:
    """``PeerAuthentication``: the mTLS mode a workload accepts."""

    selector: WorkloadSelector | None = None
    mtls: MutualTLS | None = None
    port_level_mtls: Mapping[str, MutualTLS] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """``Source``: who is calling (peer identity, namespace, IP)."""

    principals: tuple[str, ...] = ()
    not_principals: tuple[str, ...] = ()
    request_principals: tuple[str, ...] = ()
    not_request_principals: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    not_namespaces: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] = ()
    not_service_accounts: tuple[str, ...] = ()
    ip_blocks: tuple[str, ...] = ()
    not_ip_blocks: tuple[str, ...] = ()
    remote_ip_blocks: tuple[str, ...] = ()
    not_remote_ip_blocks: tuple[str, ...] = ()
    trust_domains: tuple[str, ...] = ()
    not_trust_domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """``Operation``: what is being called (host, port, method, path)."""

    hosts: tuple[str, ...] = ()
    not_hosts: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    not_ports: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    not_methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    not_paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleFrom:
    """``Rule.From``."""

    source: Source | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleTo:
    """``Rule.To``."""

    operation: Operation | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """``Condition``: an attribute and the values it must (not) have."""

    key: str = ""
    values: tuple[str, ...] = ()
    not_values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """``Rule``: matches if any ``from``, any ``to`` and every ``when`` match."""

    from_: tuple[RuleFrom, ...] = field(default=(), metadata={"key": "from"})
    to: tuple[RuleTo, ...] = ()
    when: tuple[Condition, ...] = ()


class Action(enum.Enum):
    """``AuthorizationPolicy.Action``."""

    ALLOW = 0
    DENY = 1
    AUDIT = 2
    CUSTOM = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionProvider:
    """``AuthorizationPolicy.ExtensionProvider`` (CUSTOM action)."""

    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationPolicy:
    """``AuthorizationPolicy``: allow, deny or audit requests to the selected workloads."""

    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: tuple[PolicyTargetReference, ...] = ()
    rules: tuple[Rule, ...] = ()
    action: Action = Action.ALLOW
    provider: ExtensionProvider | None = None
