"""Split YAML streams into documents, fast, remembering where each came from.

Parsing uses libyaml (``CSafeLoader``) when PyYAML has it. Timestamps are left as the
strings they are written as: Kubernetes reads YAML as JSON, where ``2024-05-01`` is text,
and meshlib must see what Istio sees. Nothing here records node positions: when a
problem needs a line number, :class:`Locator` parses the stream again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from meshlib.config._problems import Path

__all__ = ["Document", "Locator", "YAMLSyntaxError", "iter_documents"]

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """A safe loader that leaves timestamps as strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True, slots=True)
class Document:
    """One parsed document of a stream, numbered from 1 as it appears in the stream."""

    number: int
    data: object


class YAMLSyntaxError(ValueError):
    """The text is not YAML; ``document`` and ``line`` say where parsing stopped."""

    def __init__(self, message: str, document: int, line: int | None) -> None:
        super().__init__(message)
        self.document = document
        self.line = line


def iter_documents(text: str) -> Iterator[Document]:
    """Yield every document of ``text``, empty ones included (as ``None``).

    Raises:
        YAMLSyntaxError: when the stream stops parsing; documents before it were yielded.
    """
    number = 0
    try:
        for number, data in enumerate(yaml.load_all(text, Loader=_Loader), start=1):
            yield Document(number, data)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        message = " ".join(str(error).split())
        raise YAMLSyntaxError(f"invalid YAML: {message}", number + 1, line) from None


class Locator:
    """Finds the line of a field path in a stream, parsing it again on first use only.

    Only used on the error path, so the fast load keeps no node positions.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._roots: list[yaml.Node] | None = None

    def line(self, document: int, path: Path) -> int | None:
        """The 1-based line of ``path`` in document ``document`` (1-based), if found."""
        roots = self._parse()
        node = roots[document - 1] if 0 < document <= len(roots) else None
        line = None
        for segment in path:
            if node is None:
                break
            line = node.start_mark.line + 1
            node = _child(node, segment)
        return node.start_mark.line + 1 if node is not None else line

    def _parse(self) -> list[yaml.Node]:
        if self._roots is None:
            self._roots = []
            try:
                for node in yaml.compose_all(self._text, Loader=yaml.SafeLoader):
                    self._roots.append(node)
            except yaml.YAMLError:
                pass  # documents before the syntax error stay locatable
        return self._roots


def _child(node: yaml.Node, segment: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(segment, int):
        children: list[yaml.Node] = node.value
        return children[segment] if 0 <= segment < len(children) else None
    if isinstance(node, yaml.MappingNode):
        pairs: list[tuple[yaml.Node, yaml.Node]] = node.value
        for key, value in pairs:
            if isinstance(key, yaml.ScalarNode) and key.value == str(segment):
                return value
    return None
