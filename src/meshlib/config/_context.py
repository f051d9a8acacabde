"""What a validator may need to know about a resource besides its spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ResourceContext"]


@dataclass(frozen=True, slots=True)
class ResourceContext:
    """The kind, name, namespace and annotations of the resource being validated."""

    kind: str
    name: str
    namespace: str
    annotations: Mapping[str, str] = field(default_factory=dict)
