"""``Mesh.explain``: what the mesh would do with a request, and why (a dry run)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meshlib._mesh import Mesh

__all__ = ["Explanation", "explain"]


@dataclass(frozen=True, slots=True)
class Explanation:
    """The outcome of a dry run (to be completed)."""

    method: str
    url: str


def explain(mesh: Mesh, method: str, url: str, headers: Mapping[str, str]) -> Explanation:
    """Explain how ``mesh`` would route the request (to be completed)."""
    del mesh, headers
    return Explanation(method, url)
