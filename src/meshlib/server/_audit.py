"""What authorization looks at, what it decides, and the audit record of each decision.

The audit record is meshlib's own feature: an Envoy sidecar only counts RBAC decisions
in its stats and its access log. meshlib writes one record per decision to the
``logging`` logger ``meshlib.audit``: a readable message, and the same facts as a dict in
the record's ``audit`` attribute (``extra={"audit": {...}}``) for structured handlers.
Denials and requests an AUDIT policy matched are logged at INFO, other allowed requests
at DEBUG.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["AUDIT_LOGGER", "Decision", "RequestAttributes", "audit_fields", "log_decision"]

#: The name of the logger audit records go to.
AUDIT_LOGGER = "meshlib.audit"


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    """The facts about one request that AuthorizationPolicy rules match on.

    ``principal`` is the peer's URI SAN (``spiffe://cluster.local/ns/default/sa/sleep``),
    ``None`` without mTLS. ``path`` is normalized and has no query. ``headers`` has
    lower-case names; repeated headers are joined with ``,`` (as Envoy matches them), and
    the middleware adds the pseudo-headers ``:method``, ``:path``, ``:scheme`` and
    ``:authority``.
    ``remote.ip`` and ``remoteIpBlocks`` match ``source_ip``: meshlib's clients connect
    directly (no trusted proxy in front).
    """

    principal: str | None = None
    source_ip: str | None = None
    destination_ip: str | None = None
    destination_port: int | None = None
    method: str = "GET"
    path: str = "/"
    host: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of authorizing one request, in Istio's order.

    ``reason`` is one of ``"denied by policy"`` (a DENY policy matched), ``"allowed by
    policy"`` (an ALLOW policy matched), ``"no ALLOW policy"`` (none applies: allowed) and
    ``"no ALLOW policy matched"`` (denied). ``policy`` (``namespace/name``) and ``rule``
    (its index in ``rules``) name the match that decided, when one did. ``audit`` tells
    whether an AUDIT policy matched (``audit_policy`` names the first). ``dry_run`` is the
    decision that would be made if the policies annotated ``istio.io/dry-run`` were
    enforced; ``None`` when there are none.
    """

    allowed: bool
    reason: str
    policy: str | None = None
    rule: int | None = None
    audit: bool = False
    audit_policy: str | None = None
    dry_run: Decision | None = None

    @property
    def action(self) -> str:
        """``"ALLOW"`` or ``"DENY"``."""
        return "ALLOW" if self.allowed else "DENY"


def audit_fields(decision: Decision, request: RequestAttributes) -> dict[str, object]:
    """The structured audit record: plain values only, ready for a JSON formatter."""
    fields: dict[str, object] = {
        "decision": decision.action,
        "reason": decision.reason,
        "policy": decision.policy,
        "rule": decision.rule,
        "principal": request.principal,
        "source_ip": request.source_ip,
        "method": request.method,
        "host": request.host,
        "path": request.path,
        "audit": decision.audit,
        "audit_policy": decision.audit_policy,
    }
    if decision.dry_run is not None:
        fields["dry_run_decision"] = decision.dry_run.action
        fields["dry_run_policy"] = decision.dry_run.policy
    return fields


def log_decision(logger: logging.Logger, decision: Decision, request: RequestAttributes) -> None:
    """Write the audit record of ``decision`` to ``logger``."""
    level = logging.DEBUG if decision.allowed and not decision.audit else logging.INFO
    if not logger.isEnabledFor(level):
        return
    where = decision.policy or "-"
    rule = "-" if decision.rule is None else str(decision.rule)
    logger.log(
        level,
        "%s (%s) policy=%s rule=%s principal=%s %s %s audit=%s",
        decision.action,
        decision.reason,
        where,
        rule,
        request.principal or "-",
        request.method,
        request.path,
        "true" if decision.audit else "false",
        extra={"audit": audit_fields(decision, request)},
    )
