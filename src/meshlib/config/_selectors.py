"""The two workload-selector shapes of the Istio API (``istio-api.md`` §8 item 19).

DestinationRule, PeerAuthentication and AuthorizationPolicy use
``type/v1beta1.WorkloadSelector`` (``matchLabels``); ServiceEntry and Sidecar use
``networking/v1alpha3.WorkloadSelector`` (``labels``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["LabelSelector", "PolicyTargetReference", "WorkloadSelector"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSelector:
    """``type.v1beta1.WorkloadSelector``: ``matchLabels`` the workload must carry."""

    match_labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelSelector:
    """``networking.v1alpha3.WorkloadSelector``: ``labels`` the workload must carry."""

    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyTargetReference:
    """``type.v1beta1.PolicyTargetReference``: a Kubernetes resource a policy binds to."""

    group: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""
