"""Which DestinationRule policy applies to a (host, subset, port), as pilot computes it.

Follows ``pilot/pkg/networking/util/util.go`` (``GetPortLevelTrafficPolicy``,
``MergeSubsetTrafficPolicy``; ``istio-api.md`` §2.2):

1. **Port level replaces, never inherits.** When ``portLevelSettings`` has an entry for the
   port, the policy is only that entry's ``connectionPool``, ``loadBalancer``,
   ``outlierDetection`` and ``tls``; blocks it omits fall back to Istio's defaults, not to
   the top-level ones (and ``tunnel``, ``proxyProtocol``, ``retryBudget`` are dropped).
2. **A subset replaces whole blocks.** Each of those four blocks that the subset's policy
   sets replaces the host-level block (a subset ``connectionPool: {http: …}`` drops the
   parent's ``connectionPool.tcp``). When the subset's own ``portLevelSettings`` match the
   port, all four are replaced, even by nothing. ``tunnel``, ``proxyProtocol`` and
   ``retryBudget`` are replaced when the subset sets them.
"""

from __future__ import annotations

import dataclasses

from meshlib.config import TrafficPolicy

__all__ = ["effective_policy", "port_level_policy"]


def port_level_policy(
    policy: TrafficPolicy | None, port: int
) -> tuple[TrafficPolicy | None, bool]:
    """The policy for ``port`` and whether a port-level entry supplied it."""
    if policy is None or not port:
        return policy, False
    for entry in policy.port_level_settings:
        if entry.port is not None and entry.port.number == port:
            return (
                TrafficPolicy(
                    load_balancer=entry.load_balancer,
                    connection_pool=entry.connection_pool,
                    outlier_detection=entry.outlier_detection,
                    tls=entry.tls,
                ),
                True,
            )
    return policy, False


def effective_policy(
    host_policy: TrafficPolicy | None, subset_policy: TrafficPolicy | None, port: int
) -> TrafficPolicy | None:
    """The policy for one cluster: host-level, then port level, then the subset's."""
    merged, _ = port_level_policy(host_policy, port)
    if subset_policy is None:
        return _without_port_levels(merged)
    subset, subset_port_level = port_level_policy(subset_policy, port)
    if merged is None:
        return _without_port_levels(subset)
    assert subset is not None  # port_level_policy returns None only for None input
    replace_all = subset_port_level
    return TrafficPolicy(
        load_balancer=subset.load_balancer
        if subset.load_balancer is not None or replace_all
        else merged.load_balancer,
        connection_pool=subset.connection_pool
        if subset.connection_pool is not None or replace_all
        else merged.connection_pool,
        outlier_detection=subset.outlier_detection
        if subset.outlier_detection is not None or replace_all
        else merged.outlier_detection,
        tls=subset.tls if subset.tls is not None or replace_all else merged.tls,
        tunnel=subset.tunnel or merged.tunnel,
        proxy_protocol=subset.proxy_protocol or merged.proxy_protocol,
        retry_budget=subset.retry_budget or merged.retry_budget,
    )


def _without_port_levels(policy: TrafficPolicy | None) -> TrafficPolicy | None:
    """The effective policy no longer needs its port table: it is for one port already."""
    if policy is None or not policy.port_level_settings:
        return policy
    return dataclasses.replace(policy, port_level_settings=())
