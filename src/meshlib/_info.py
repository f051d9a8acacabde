"""``MeshInfo``: what the mesh did with a request, attached to every response."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MeshInfo", "envoy_order"]

# The order Envoy prints response flags in (``StreamInfo::ResponseFlagUtils``).
_FLAG_ORDER = (
    *("LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE"),
    *("DC", "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF"),
    *("DO", "DR"),
)
_RANK = {flag: rank for rank, flag in enumerate(_FLAG_ORDER)}


def envoy_order(flags: tuple[str, ...]) -> tuple[str, ...]:
    """``flags`` in the order Envoy prints them."""
    return tuple(sorted(flags, key=lambda flag: _RANK.get(flag, len(_RANK))))


@dataclass(frozen=True, slots=True)
class MeshInfo:
    """What happened to one request, in ``response.extensions["meshlib"]``.

    Attributes:
        route: the matched rule: its ``name``, else ``namespace/virtual-service#index``;
            ``None`` when no VirtualService applied.
        virtual_service: ``namespace/name`` of the VirtualService, if any.
        destination: the destination host (FQDN) chosen by the route.
        subset: the subset chosen (``""`` for none).
        port: the destination service port.
        cluster: Envoy's cluster name, ``outbound|port|subset|host``
            (``PassthroughCluster`` / ``BlackHoleCluster`` for unknown hosts).
        endpoint: ``address:port`` of the last endpoint tried.
        attempts: how many times the request was sent upstream (0 for local replies).
        flags: Envoy response flags (``UO``, ``UH``, ``UT``, ``URX``, ``NR``, ``DI``, ``FI``...).
        details: Envoy's response code details (``via_upstream``, ``route_not_found``...).
        elapsed: seconds from the start of the request to the response headers, measured
            on the mesh's clock (virtual time under :mod:`meshlib.testing`).
    """

    route: str | None = None
    virtual_service: str | None = None
    destination: str | None = None
    subset: str = ""
    port: int | None = None
    cluster: str | None = None
    endpoint: str | None = None
    attempts: int = 0
    flags: tuple[str, ...] = ()
    details: str = ""
    elapsed: float = 0.0

    @property
    def response_flags(self) -> str:
        """The flags as Envoy prints them: comma-joined, or ``-`` for none."""
        return ",".join(self.flags) or "-"
