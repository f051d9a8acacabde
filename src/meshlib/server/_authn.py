"""PeerAuthentication: the mTLS mode of one workload, per port (``istio-api.md`` §4.1).

Istio composes the mode from up to three policies (``ComposePeerAuthentication``):

1. the **mesh** policy: in the root namespace (``istio-system``), without a selector;
2. the **namespace** policy: in the workload's namespace, without a selector;
3. the **workload** policy: in the workload's namespace, whose selector matches the
   workload's labels; its ``portLevelMtls`` set the mode of single ports.

Each narrower level replaces the wider one unless its mode is ``UNSET`` (or it has no
``mtls``), which inherits; a port whose mode is ``UNSET`` takes the workload's. With no
policy at all the mode is ``PERMISSIVE``. Where several policies compete for one level,
the oldest wins (creation time, then load order). Selector policies in the root namespace
are ignored, as in Istio.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshlib._compile._precedence import creation_order
from meshlib._labels import selects
from meshlib.config import MutualTLS, MutualTLSMode, PeerAuthentication, Resource

__all__ = ["MtlsSettings", "resolve_mtls"]


@dataclass(frozen=True, slots=True)
class MtlsSettings:
    """The effective mTLS modes of a workload: one for the workload, some per port.

    ``mode`` and the port modes are never ``UNSET``. ``policies`` names the mesh,
    namespace and workload policies that were composed (``namespace/name``), widest first.
    """

    mode: MutualTLSMode = MutualTLSMode.PERMISSIVE
    ports: Mapping[int, MutualTLSMode] = field(default_factory=dict)
    policies: tuple[str, ...] = ()

    def for_port(self, port: int) -> MutualTLSMode:
        """The mode of ``port``: its port-level mode, else the workload's."""
        return self.ports.get(port, self.mode)


def _unset(mtls: MutualTLS | None) -> bool:
    return mtls is None or mtls.mode is MutualTLSMode.UNSET


def _has_selector(spec: PeerAuthentication) -> bool:
    return spec.selector is not None and bool(spec.selector.match_labels)


def resolve_mtls(
    resources: Iterable[Resource[Any]],
    *,
    namespace: str,
    labels: Mapping[str, str],
    root_namespace: str = "istio-system",
) -> MtlsSettings:
    """Compose the PeerAuthentication policies that apply to a workload (other kinds are
    ignored)."""
    policies = creation_order(r for r in resources if r.kind == "PeerAuthentication")
    mesh = _first(
        p for p in policies if p.namespace == root_namespace and not _has_selector(p.spec)
    )
    scoped = _first(p for p in policies if p.namespace == namespace and not _has_selector(p.spec))
    workload = _first(
        p
        for p in policies
        if p.namespace == namespace
        and _has_selector(p.spec)
        and p.spec.selector is not None
        and selects(p.spec.selector.match_labels, labels)
    )
    mode = MutualTLSMode.PERMISSIVE
    used: list[str] = []
    for level in (mesh, scoped, workload):
        if level is None:
            continue
        used.append(f"{level.namespace}/{level.name}")
        mtls = level.spec.mtls
        if mtls is not None and mtls.mode is not MutualTLSMode.UNSET:
            mode = mtls.mode
    ports: dict[int, MutualTLSMode] = {}
    if workload is not None:
        for port, mtls in workload.spec.port_level_mtls.items():
            ports[int(port)] = mode if _unset(mtls) else mtls.mode
    return MtlsSettings(mode=mode, ports=ports, policies=tuple(dict.fromkeys(used)))


def _first(found: Iterable[Resource[PeerAuthentication]]) -> Resource[PeerAuthentication] | None:
    return next(iter(found), None)
