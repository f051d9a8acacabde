"""A configuration resource: kind, metadata, spec, and where it was read from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from meshlib.config._metadata import ObjectMeta

__all__ = ["Origin", "Resource"]

SpecT = TypeVar("SpecT", covariant=True)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a resource came from, and its place in load order.

    ``order`` counts resources across one load, in file then document order; it stands
    in for ``creationTimestamp`` when a resource has none, as Istio's file store does.
    """

    source: str | None = None
    document: int | None = None
    order: int = 0


@dataclass(frozen=True, slots=True)
class Resource(Generic[SpecT]):
    """One Istio resource: ``kind``, ``metadata`` and the validated, frozen ``spec``.

    ``metadata.namespace`` is always set: resources that name none take the namespace
    given when loading (``default`` unless said otherwise), as ``kubectl apply`` does.
    """

    kind: str
    api_version: str
    metadata: ObjectMeta
    spec: SpecT
    origin: Origin = field(default_factory=Origin)

    @property
    def name(self) -> str:
        """``metadata.name``."""
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """``metadata.namespace``."""
        return self.metadata.namespace

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"
