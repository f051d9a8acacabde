"""Request matching: Istio's ``HTTPMatchRequest`` as Envoy evaluates it.

Matchers are built once, when the configuration is compiled, and evaluated per request
with no allocation beyond what the request already holds. Semantics (``istio-api.md``
§1.3, Envoy ``RouteMatch`` / ``HeaderMatcher`` / ``QueryParameterMatcher``):

* ``exact`` / ``prefix`` are case-sensitive; ``regex`` is RE2 and must match the whole
  value; ``ignoreUriCase`` makes the URI's exact and prefix matches case-insensitive.
* A header or query-parameter matcher with no match type, or ``regex: "*"``, only asks that
  the header (parameter) be present.
* Envoy joins the values of a repeated header with ``,`` before matching.
* ``withoutHeaders`` inverts the match; for value matchers a missing header counts as
  ``""`` (pilot sets ``treat_missing_header_as_empty``), so ``withoutHeaders: {x: {exact:
  foo}}`` matches a request without ``x``.
* Within one ``HTTPMatchRequest`` every condition must hold.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from meshlib._core._request import RequestHead
from meshlib._regex import Pattern

__all__ = ["HeaderCondition", "MatchKind", "QueryCondition", "RequestMatcher", "StringMatcher"]


class MatchKind(enum.Enum):
    """How a :class:`StringMatcher` compares."""

    EXACT = "exact"
    PREFIX = "prefix"
    REGEX = "regex"
    PRESENT = "present"


@dataclass(frozen=True, slots=True)
class StringMatcher:
    """One compiled ``StringMatch``."""

    kind: MatchKind
    value: str = ""
    pattern: Pattern | None = None
    ignore_case: bool = False

    def matches(self, text: str) -> bool:
        """Does ``text`` satisfy this matcher?"""
        kind = self.kind
        if kind is MatchKind.EXACT:
            return text.lower() == self.value.lower() if self.ignore_case else text == self.value
        if kind is MatchKind.PREFIX:
            if self.ignore_case:
                return text.lower().startswith(self.value.lower())
            return text.startswith(self.value)
        if kind is MatchKind.REGEX:
            assert self.pattern is not None  # compile() always sets it for REGEX
            return self.pattern.fullmatch(text) is not None
        return True

    def describe(self) -> str:
        """Istio's spelling of this matcher, for ``explain``."""
        if self.kind is MatchKind.PRESENT:
            return "present"
        suffix = " (ignoring case)" if self.ignore_case else ""
        return f'{self.kind.value} "{self.value}"{suffix}'


@dataclass(frozen=True, slots=True)
class HeaderCondition:
    """A header that must match (or, with ``invert``, must not)."""

    name: str
    matcher: StringMatcher
    invert: bool = False

    def holds(self, headers: Mapping[str, str]) -> bool:
        """Evaluate against lower-cased header names with repeated values joined by ``,``."""
        value = headers.get(self.name)
        if self.matcher.kind is MatchKind.PRESENT:
            return (value is not None) != self.invert
        if value is None:
            if not self.invert:
                return False
            value = ""  # treat_missing_header_as_empty
        return self.matcher.matches(value) != self.invert


@dataclass(frozen=True, slots=True)
class QueryCondition:
    """A query parameter that must be present or match."""

    name: str
    matcher: StringMatcher

    def holds(self, query: Mapping[str, str]) -> bool:
        """Evaluate against the first value of each parameter, as Envoy does."""
        value = query.get(self.name)
        if value is None:
            return False
        return self.matcher.kind is MatchKind.PRESENT or self.matcher.matches(value)


@dataclass(frozen=True, slots=True)
class RequestMatcher:
    """One compiled ``HTTPMatchRequest``: all conditions must hold.

    Conditions on the calling workload (``sourceLabels``, ``sourceNamespace``,
    ``gateways``) were settled when compiling: a matcher exists only if they hold. The
    ``port`` condition stays, because the port is known only per request.
    """

    name: str = ""
    uri: StringMatcher | None = None
    scheme: StringMatcher | None = None
    method: StringMatcher | None = None
    authority: StringMatcher | None = None
    port: int = 0
    headers: tuple[HeaderCondition, ...] = ()
    query: tuple[QueryCondition, ...] = ()

    def matches(self, head: RequestHead) -> bool:
        """Does the request satisfy every condition? (The path excludes the query string.)"""
        return (
            (not self.port or self.port == head.port)
            and (self.uri is None or self.uri.matches(head.path))
            and (self.method is None or self.method.matches(head.method))
            and (self.scheme is None or self.scheme.matches(head.scheme))
            and (self.authority is None or self.authority.matches(head.authority))
            and all(condition.holds(head.headers) for condition in self.headers)
            and (not self.query or all(c.holds(head.query_params) for c in self.query))
        )
