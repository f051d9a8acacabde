"""The values of Istio's standard metric labels, as a client sidecar (``reporter="source"``)
fills them in (``istio/proxy`` ``istio_stats.cc``, ``populatePeerInfo``).

A sidecar knows its own workload from the pod (name, namespace, labels, SPIFFE ID) and
the peer's from the upstream endpoint's metadata or the peer certificate. meshlib knows
the client from the :class:`~meshlib.Mesh` (namespace, labels, identity) and the peer from
the chosen endpoint (its labels) and, over mTLS, the verified peer certificate. What
neither says is ``unknown``, as in Istio; canonical revisions default to ``latest``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from meshlib._endpoints import Endpoint

__all__ = [
    "FULL_LABELS",
    "LATEST",
    "LEAN_LABELS",
    "UNKNOWN",
    "UNKNOWN_WORKLOAD",
    "Workload",
    "endpoint_workload",
    "principal_namespace",
    "service_name",
    "workload_of",
]

UNKNOWN = "unknown"
LATEST = "latest"

#: Every label of Istio's standard HTTP metrics, in Istio's order.
FULL_LABELS = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_canonical_service",
    "source_canonical_revision",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_cluster",
    "request_protocol",
    "response_flags",
    "connection_security_policy",
    "response_code",
    "grpc_response_status",
)

#: The default set: what Istio's dashboards group and filter by most, at a fraction of
#: the series (``Mesh(..., metric_labels="full")`` gives every label).
LEAN_LABELS = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "destination_service",
    "destination_service_namespace",
    "destination_version",
    "request_protocol",
    "response_code",
    "response_flags",
)

# Istio's canonical service and revision (``pkg/config/labels``): the first label set.
_CANONICAL_NAME = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
_CANONICAL_REVISION = (
    "service.istio.io/canonical-revision",
    "app.kubernetes.io/version",
    "version",
)
_APP = ("app", "app.kubernetes.io/name")
_VERSION = ("version", "app.kubernetes.io/version")


def _first(labels: Mapping[str, str], names: tuple[str, ...], default: str) -> str:
    for name in names:
        value = labels.get(name)
        if value:
            return value
    return default


@dataclass(frozen=True, slots=True)
class Workload:
    """One side's workload labels: the client's own, or the chosen endpoint's."""

    workload: str = UNKNOWN
    namespace: str = UNKNOWN
    app: str = UNKNOWN
    version: str = UNKNOWN
    canonical_service: str = UNKNOWN
    canonical_revision: str = LATEST
    cluster: str = UNKNOWN


UNKNOWN_WORKLOAD = Workload()


def workload_of(labels: Mapping[str, str], namespace: str = "") -> Workload:
    """The workload labels of a pod or endpoint with ``labels``, in ``namespace``.

    There is no Deployment name to read, so the workload is named by its canonical
    service (the ``app`` label, as a rule the Deployment's name too).
    """
    canonical = _first(labels, _CANONICAL_NAME, UNKNOWN)
    return Workload(
        workload=canonical,
        namespace=namespace or UNKNOWN,
        app=_first(labels, _APP, UNKNOWN),
        version=_first(labels, _VERSION, UNKNOWN),
        canonical_service=canonical,
        canonical_revision=_first(labels, _CANONICAL_REVISION, LATEST),
    )


_KNOWN: dict[tuple[int, str], tuple[Endpoint, Workload]] = {}
_KNOWN_MAX = 4096  # endpoints remembered; past that the memo starts again


def endpoint_workload(endpoint: Endpoint | None, namespace: str) -> Workload:
    """The peer's labels from the endpoint an attempt went to (none: all unknown),
    worked out once per endpoint object (endpoints are frozen)."""
    if endpoint is None:
        return UNKNOWN_WORKLOAD
    key = (id(endpoint), namespace)
    known = _KNOWN.get(key)
    if known is not None and known[0] is endpoint:
        return known[1]
    if len(_KNOWN) >= _KNOWN_MAX:
        _KNOWN.clear()
    workload = workload_of(endpoint.labels, namespace)
    _KNOWN[key] = (endpoint, workload)
    return workload


def principal_namespace(principal: str | None) -> str:
    """The namespace in a SPIFFE ID (``spiffe://td/ns/<ns>/sa/<sa>``), else ``""``."""
    if not principal:
        return ""
    _, found, rest = principal.partition("/ns/")
    return rest.partition("/")[0] if found else ""


@functools.lru_cache(maxsize=1024)
def service_name(host: str, domain: str) -> str:
    """``destination_service_name``: a Kubernetes service's short name
    (``reviews.default.svc.cluster.local`` → ``reviews``), else the host itself, as
    Istio's cluster metadata names a ServiceEntry host."""
    suffix = f".svc.{domain}"
    if host.endswith(suffix) and host[: -len(suffix)].count(".") == 1:
        return host.partition(".")[0]
    return host
