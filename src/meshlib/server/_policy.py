"""The security policy of one workload: its mTLS modes and its authorization rules.

A workload is a namespace and labels. The policies that apply to it are chosen as an
Istio sidecar chooses them: PeerAuthentication by scope (see :mod:`._authn`);
AuthorizationPolicy from the root namespace (mesh-wide) and from the workload's own
namespace, each either without a selector or with a ``selector`` whose ``matchLabels``
the workload carries. Policies bound with ``targetRef``/``targetRefs`` apply to gateways
and waypoints, never to a sidecar, so they are left out (with a warning). ``action:
CUSTOM`` (an external authorizer) is refused: meshlib has no extension provider to ask,
and letting the request through would open what the policy closes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from meshlib._compile._precedence import creation_order
from meshlib._exceptions import ConfigError
from meshlib._labels import selects
from meshlib.config import (
    Action,
    AuthorizationPolicy,
    ConfigSet,
    MutualTLSMode,
    Problem,
    Resource,
    Severity,
    read_yaml,
)
from meshlib.server._audit import Decision, RequestAttributes
from meshlib.server._authn import MtlsSettings, resolve_mtls
from meshlib.server._authz import CompiledPolicy, compile_policy, evaluate

__all__ = ["ROOT_NAMESPACE", "Policies", "WorkloadPolicy"]

logger = logging.getLogger("meshlib.server")

#: Istio's mesh ``rootNamespace``: its policies apply to every workload.
ROOT_NAMESPACE = "istio-system"

#: What a policy set can be given as: YAML text, a loaded configuration, or resources.
Policies = str | ConfigSet | Iterable[Resource[Any]]


class WorkloadPolicy:
    """PeerAuthentication and AuthorizationPolicy as they apply to one workload.

    Build it once per configuration; it is immutable and safe to share between threads
    and event loops. Other kinds in the configuration are ignored, so a whole mesh
    configuration can be given.

    Args:
        policies: YAML text, a :class:`~meshlib.config.ConfigSet` or resources.
        namespace: the workload's namespace (also that of resources naming none).
        labels: the workload's labels, matched by ``selector.matchLabels``.
        root_namespace: Istio's root namespace, whose policies apply mesh-wide.

    Raises:
        ConfigError: the configuration has errors, or an AuthorizationPolicy that applies
            to this workload has ``action: CUSTOM``.
    """

    def __init__(
        self,
        policies: Policies = (),
        *,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        root_namespace: str = ROOT_NAMESPACE,
    ) -> None:
        self.namespace = namespace
        self.labels: Mapping[str, str] = dict(labels or {})
        self.root_namespace = root_namespace
        resources = _resources_of(policies, namespace)
        self.mtls: MtlsSettings = resolve_mtls(
            resources, namespace=namespace, labels=self.labels, root_namespace=root_namespace
        )
        self.authorization: tuple[Resource[AuthorizationPolicy], ...] = tuple(
            self._selected(resources)
        )
        _refuse_custom(self.authorization)
        self._compiled: tuple[CompiledPolicy, ...] = tuple(
            compile_policy(resource) for resource in self.authorization
        )

    def _selected(
        self, resources: Iterable[Resource[Any]]
    ) -> Iterable[Resource[AuthorizationPolicy]]:
        """The AuthorizationPolicies that apply to this workload, oldest first."""
        for resource in creation_order(r for r in resources if r.kind == "AuthorizationPolicy"):
            if resource.namespace not in (self.root_namespace, self.namespace):
                continue
            spec: AuthorizationPolicy = resource.spec
            if spec.target_ref is not None or spec.target_refs:
                logger.warning(
                    "AuthorizationPolicy %s/%s is bound with targetRef(s), which apply to "
                    "gateways and waypoints; like a sidecar, meshlib does not apply it",
                    resource.namespace,
                    resource.name,
                )
                continue
            if spec.selector is None or selects(spec.selector.match_labels, self.labels):
                yield resource

    def mtls_mode(self, port: int) -> MutualTLSMode:
        """The effective PeerAuthentication mode of ``port``: never ``UNSET``."""
        return self.mtls.for_port(port)

    def authorize(self, request: RequestAttributes) -> Decision:
        """Istio's authorization decision for ``request``."""
        return evaluate(self._compiled, request)

    def __repr__(self) -> str:
        names = ", ".join(f"{r.namespace}/{r.name}" for r in self.authorization)
        return (
            f"WorkloadPolicy(namespace={self.namespace!r}, labels={dict(self.labels)!r}, "
            f"mtls={self.mtls.mode.name}, authorization=[{names}])"
        )


def _resources_of(policies: Policies, namespace: str) -> tuple[Resource[Any], ...]:
    if isinstance(policies, str):
        policies = read_yaml(policies, namespace=namespace)
    if isinstance(policies, ConfigSet):
        policies.raise_for_errors()
        for warning in policies.warnings:
            logger.warning("%s", warning)
        return policies.resources
    return tuple(policies)


def _refuse_custom(resources: Iterable[Resource[AuthorizationPolicy]]) -> None:
    problems = [
        Problem(
            Severity.ERROR,
            "action CUSTOM (an external authorizer) is not supported by meshlib.server; "
            "remove the policy or express it as ALLOW/DENY rules",
            "spec.action",
            resource.origin.source,
            resource.origin.document,
            resource.kind,
            resource.namespace,
            resource.name,
        )
        for resource in resources
        if resource.spec.action is Action.CUSTOM
    ]
    if problems:
        raise ConfigError(problems)
