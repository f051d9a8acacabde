"""Header manipulation: VirtualService ``headers`` set/add/remove, with Envoy format strings.

``set`` overwrites (Envoy ``OVERWRITE_IF_EXISTS_OR_ADD``), ``add`` appends another value
(``APPEND_IF_EXISTS_OR_ADD``), ``remove`` deletes; ``:authority`` and ``host`` in
``request.set``/``add`` rewrite the authority instead (``istio-api.md`` §1.12). Values
are Envoy format strings: ``%%`` is a literal ``%``; meshlib substitutes ``%HOSTNAME%``,
``%REQ(header)%``, ``%PROTOCOL%``, ``%UPSTREAM_REMOTE_ADDRESS%`` and
``%UPSTREAM_CLUSTER%``; other variables render as an empty string.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from meshlib.config import HeaderOperations, Headers

__all__ = ["FormatContext", "HeaderEdits", "edits_for", "render"]

_TOKEN = re.compile(r"%%|%([A-Z_0-9]+)(?:\(([^)]*)\))?%")


@dataclass(frozen=True, slots=True)
class FormatContext:
    """What format variables can refer to."""

    hostname: str = ""
    request_headers: Mapping[str, str] | None = None
    protocol: str = "HTTP/1.1"
    upstream_address: str = ""
    upstream_cluster: str = ""


@functools.lru_cache(maxsize=4096)
def _parts(template: str) -> tuple[str | tuple[str, str], ...]:
    """Split a format string into literal text and ``(variable, argument)`` pairs."""
    parts: list[str | tuple[str, str]] = []
    position = 0
    for match in _TOKEN.finditer(template):
        parts.append(template[position : match.start()])
        if match.group(0) == "%%":
            parts.append("%")
        else:
            parts.append((match.group(1), (match.group(2) or "").strip().strip('"')))
        position = match.end()
    parts.append(template[position:])
    return tuple(p for p in parts if p != "")


def render(template: str, context: FormatContext) -> str:
    """The value of an Envoy format string."""
    if "%" not in template:
        return template
    return "".join(
        part if isinstance(part, str) else _variable(*part, context) for part in _parts(template)
    )


def _variable(name: str, argument: str, context: FormatContext) -> str:
    if name == "HOSTNAME":
        return context.hostname
    if name == "REQ":
        header = argument.split("?")[0].lower()
        return (context.request_headers or {}).get(header, "")
    if name == "PROTOCOL":
        return context.protocol
    if name == "UPSTREAM_REMOTE_ADDRESS":
        return context.upstream_address
    if name == "UPSTREAM_CLUSTER":
        return context.upstream_cluster
    return ""


@dataclass(frozen=True, slots=True)
class HeaderEdits:
    """Header operations to apply, in order: ``remove``, then ``set``, then ``add``."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()
    authority: str | None = None

    def __bool__(self) -> bool:
        return bool(self.set or self.add or self.remove or self.authority is not None)

    def then(self, other: HeaderEdits) -> HeaderEdits:
        """These edits followed by ``other`` (a later ``set`` of a header wins)."""
        if not other:
            return self
        if not self:
            return other
        return HeaderEdits(
            self.set + other.set,
            self.add + other.add,
            self.remove + other.remove,
            other.authority if other.authority is not None else self.authority,
        )


_NO_EDITS = HeaderEdits()


def _is_authority(name: str) -> bool:
    return name.lower() in (":authority", "host")


def edits_for(
    operations: HeaderOperations | None, context: FormatContext, *, request: bool
) -> HeaderEdits:
    """Render one ``HeaderOperations`` block; internal names are dropped from ``remove``."""
    if operations is None:
        return _NO_EDITS
    authority: dict[str, str] = {}
    sets: list[tuple[str, str]] = []
    adds: list[tuple[str, str]] = []
    for kind, source, target in (("set", operations.set, sets), ("add", operations.add, adds)):
        for name, template in source.items():
            if request and _is_authority(name):
                authority[kind] = render(template, context)  # set wins over add
            else:
                target.append((name.lower(), render(template, context)))
    removes = tuple(
        name.lower()
        for name in operations.remove
        if not name.startswith(":") and not _is_authority(name)
    )
    return HeaderEdits(
        tuple(sets), tuple(adds), removes, authority.get("set", authority.get("add"))
    )


def request_edits(headers: Headers | None, context: FormatContext) -> HeaderEdits:
    """The request-side edits of a ``Headers`` block."""
    return edits_for(headers.request if headers else None, context, request=True)


def response_edits(headers: Headers | None, context: FormatContext) -> HeaderEdits:
    """The response-side edits of a ``Headers`` block."""
    return edits_for(headers.response if headers else None, context, request=False)
