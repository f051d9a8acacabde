"""``httpx.Headers`` read and rebuilt in one pass over its raw list.

Every request passes through here twice: the engine reads the caller's headers, and
each attempt sends a copy with a few edits (``Host``, ``x-request-id``,
``x-envoy-attempt-count``, the route's operations). Done through the public API, a copy
and three assignments rescan and re-encode the whole list four times, a tenth of what
meshlib costs per request. httpx keeps headers as a list of ``(raw name, lower-case
name, value)`` byte triples; this module is the one place meshlib reads that private list
(and builds a ``Headers`` around a new one). When an httpx release changes it, every
function falls back to the public API, which gives the same result.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from meshlib._core._headers import HeaderEdits

__all__ = ["ResponseHeaders", "edited", "read_headers"]

_Triples = list[tuple[bytes, bytes, bytes]]


def _triples(headers: httpx.Headers) -> _Triples | None:
    """httpx's own list, when it has the shape this module knows."""
    items = getattr(headers, "_list", None)
    if type(items) is not list or not hasattr(headers, "_encoding"):
        return None
    return items


def read_headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    """Every header line as ``(lower-case name, value)``, in order."""
    items = _triples(headers)
    if items is None:
        return headers.multi_items()
    encoding = headers.encoding
    return [(name.decode(encoding), value.decode(encoding)) for _, name, value in items]


class ResponseHeaders(Mapping[str, str]):
    """The engine's view of response headers: lower-case names, a header sent on
    several lines joined with ``, `` (as ``Headers.get`` joins them).

    The engine looks up one or two names per response (``grpc-status``, and
    ``x-envoy-ratelimited`` for some retry policies); each lookup scans the raw list,
    which is cheaper than building a dict of every header first.
    """

    __slots__ = ("_headers",)

    def __init__(self, headers: httpx.Headers) -> None:
        self._headers = headers

    def __getitem__(self, name: str) -> str:
        found: str | None = self.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name``, else ``default`` (without raising: the usual answer is
        that the header is not there)."""
        items = _triples(self._headers)
        if items is None:
            return self._headers.get(name, default)
        wanted = name.lower().encode("latin-1")
        values = [value for _, lower, value in items if lower == wanted]
        if not values:
            return default
        encoding = self._headers.encoding
        return ", ".join(value.decode(encoding) for value in values)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        items = _triples(self._headers)
        if items is None:
            return name in self._headers
        wanted = name.lower().encode("latin-1")
        return any(lower == wanted for _, lower, _ in items)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in read_headers(self._headers)))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def edited(headers: httpx.Headers, edits: HeaderEdits, host: str | None = None) -> httpx.Headers:
    """A copy of ``headers`` with ``edits`` applied (remove, then set, then add), and
    ``Host`` set to ``host`` if given; a header set keeps the place of its first line."""
    items = _triples(headers)
    if items is None:
        return _edited_publicly(headers, edits, host)
    encoding = headers.encoding
    # lower-case name → the line to put in its first place, or None once it is placed
    sets: dict[bytes, tuple[bytes, bytes, bytes] | None] = {}
    for name, value in edits.set:
        raw, lower = _encoded(name, encoding)
        sets[lower] = (raw, lower, value.encode(encoding))
    if host is not None:
        sets[b"host"] = (b"host", b"host", host.encode(encoding))
    removed = {_encoded(name, encoding)[1] for name in edits.remove} if edits.remove else ()
    lines: _Triples = []
    for line in items:
        lower = line[1]
        if lower in sets:
            replacement = sets[lower]
            if replacement is not None:  # its first line takes the value; later lines go
                lines.append(replacement)
                sets[lower] = None
        elif lower not in removed:
            lines.append(line)
    for replacement in sets.values():
        if replacement is not None:  # a header the request did not have
            lines.append(replacement)
    for name, value in edits.add:
        raw, lower = _encoded(name, encoding)
        lines.append((raw, lower, value.encode(encoding)))
    copy = httpx.Headers.__new__(httpx.Headers)
    copy._list = lines
    copy._encoding = encoding
    return copy


@functools.lru_cache(maxsize=1024)
def _encoded(name: str, encoding: str) -> tuple[bytes, bytes]:
    """A header name as httpx stores it, and lower-cased: names come from the
    configuration and the mesh's own headers, a small set worth remembering."""
    raw = name.encode(encoding)
    return raw, raw.lower()


def _edited_publicly(
    headers: httpx.Headers, edits: HeaderEdits, host: str | None
) -> httpx.Headers:
    copy = headers.copy()
    for name in edits.remove:
        if name in copy:
            del copy[name]
    for name, value in edits.set:
        copy[name] = value
    if edits.add:  # httpx.Headers appends a repeated value only through update()
        copy.update(httpx.Headers([*copy.multi_items(), *edits.add]))
    if host is not None:
        copy["host"] = host
    return copy
