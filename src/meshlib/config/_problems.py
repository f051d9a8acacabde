"""Problems found in configuration, and where they are.

A problem names the file, the document in that file, the resource and the field path
(``spec.http[0].route[1].weight``), so a person can go straight to it. Decoders and
validators report against a :class:`Report` with a path made of keys and list indexes;
the loader adds the file, document and resource when the resource is done.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

__all__ = ["Path", "Problem", "Report", "Severity", "format_path"]

#: A location inside a document: YAML keys and list indexes, outermost first.
Path = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def format_path(path: Path) -> str:
    """Render ``("spec", "http", 0, "route")`` as ``spec.http[0].route``.

    Map keys that are not plain words (``app.kubernetes.io/name``, ``:authority``) are
    quoted in brackets so the path stays unambiguous.
    """
    parts: list[str] = []
    for segment in path:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif _PLAIN_KEY.match(segment):
            parts.append(f".{segment}" if parts else segment)
        else:
            parts.append(f'["{segment}"]')
    return "".join(parts)


class Severity(str, enum.Enum):
    """How serious a problem is: errors reject the configuration, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or worth a warning) in the configuration.

    ``document`` counts the documents of a YAML stream from 1, empty ones included, so
    ``file.yaml#3`` is the third document of ``file.yaml``. ``line`` is filled when the
    field could be located in the source text (1-based).
    """

    severity: Severity
    message: str
    path: str = ""
    source: str | None = None
    document: int | None = None
    kind: str = ""
    namespace: str = ""
    name: str = ""
    line: int | None = None

    @property
    def resource(self) -> str:
        """``Kind namespace/name`` of the resource concerned, or ``""``."""
        if not self.kind:
            return ""
        return f"{self.kind} {self.namespace}/{self.name}" if self.name else self.kind

    @property
    def where(self) -> str:
        """``FILE#DOC`` of the document concerned, or ``""``."""
        if self.source is None:
            return ""
        return self.source if self.document is None else f"{self.source}#{self.document}"

    def __str__(self) -> str:
        parts = [part for part in (self.where, self.resource, self.path) if part]
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return ": ".join([*parts, prefix + self.message])

    def to_dict(self) -> dict[str, object]:
        """The problem as plain data (what ``meshlib validate --json`` prints)."""
        return {
            "severity": self.severity.value,
            "file": self.source,
            "document": self.document,
            "line": self.line,
            "kind": self.kind or None,
            "namespace": self.namespace or None,
            "name": self.name or None,
            "path": self.path,
            "message": self.message,
        }


@dataclass(slots=True)
class Report:
    """Collects the errors and warnings found while reading one resource.

    ``empty`` records the paths of lists and maps written out empty (``endpoints: []``):
    decoded, they look like absent ones, but a few of Istio's CRD rules tell them apart.
    ``nulls`` records list elements and map values written as ``null`` where an object was
    expected: they decode as empty objects, and validators that Istio gives a "may not be
    null" rule report them.
    """

    errors: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[tuple[Path, str]] = field(default_factory=list)
    empty: set[Path] = field(default_factory=set)
    nulls: set[Path] = field(default_factory=set)

    def error(self, path: Path, message: str) -> None:
        """Record that the value at ``path`` is invalid."""
        self.errors.append((path, message))

    def warn(self, path: Path, message: str) -> None:
        """Record a valid-with-warning finding at ``path``."""
        self.warnings.append((path, message))
