"""Exceptions meshlib raises itself.

meshlib raises its own exceptions only for mistakes a person must fix: configuration that
Istio would reject, and programming errors. Everything that happens to a request follows
Envoy instead: a local reply (503 ``UH``, 404 ``NR``, ...) or, with
``upstream_errors="raise"``, the inner transport's own ``httpx`` exception.

::

    Exception
    └── MeshError
        └── ConfigError (also a ValueError)   configuration Istio would reject;
                                              .problems lists every problem found
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from meshlib.config._problems import Problem

__all__ = ["ConfigError", "MeshError"]


class MeshError(Exception):
    """Base class of the exceptions meshlib raises itself."""


class ConfigError(MeshError, ValueError):
    """Configuration that Istio would reject.

    ``problems`` holds every error found (never only the first), each with the file,
    document, resource and field path it concerns. ``warnings`` holds the
    valid-with-warning findings of the same load, for reference.
    """

    def __init__(self, problems: Sequence[Problem], warnings: Sequence[Problem] = ()) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.warnings: tuple[Problem, ...] = tuple(warnings)
        super().__init__(self._summary())

    def _summary(self) -> str:
        count = len(self.problems)
        head = f"{count} configuration problem{'s' if count != 1 else ''}"
        return head + "".join(f"\n  {problem}" for problem in self.problems)
