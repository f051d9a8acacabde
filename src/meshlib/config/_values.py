"""Scalar value types of the Istio API that are more than a number or a string.

``Duration`` follows ``google.protobuf.Duration`` as Istio reads it from YAML: a string in
Go's ``time.ParseDuration`` syntax (``"1h30m"``, ``"0.5s"``, ``"250ms"``), kept exactly in
nanoseconds so that Istio's "whole milliseconds" rule can be checked. ``Percent`` is
Istio's ``{value: <double>}`` message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Duration", "Percent", "parse_duration"]

_NANOS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 MICRO SIGN
    "μs": 1_000,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
# One "<number><unit>" term of a Go duration: digits, an optional fraction, a unit.
_TERM = re.compile(r"(\d*)(?:\.(\d*))?([a-zµμ]+)")
_MAX_NANOS = 2**63 - 1


@dataclass(frozen=True, slots=True, order=True)
class Duration:
    """A span of time, exact to the nanosecond."""

    nanos: int

    @property
    def seconds(self) -> float:
        """The duration in (fractional) seconds."""
        return self.nanos / 1e9

    @classmethod
    def from_seconds(cls, seconds: float) -> Duration:
        """Build a duration from seconds, rounded to the nanosecond."""
        return cls(round(seconds * 1e9))

    def __str__(self) -> str:
        if self.nanos % 1_000_000_000 == 0:
            return f"{self.nanos // 1_000_000_000}s"
        if self.nanos % 1_000_000 == 0:
            return f"{self.nanos // 1_000_000}ms"
        return f"{self.nanos / 1e9:.9f}".rstrip("0") + "s"


def parse_duration(text: str) -> Duration:
    """Parse Go ``time.ParseDuration`` syntax (as Istio does for every Duration field).

    Raises:
        ValueError: the text is not a Go duration (the message says what was expected).
    """
    body = text
    sign = 1
    if body[:1] in "+-" and body:
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return Duration(0)
    if not body:
        raise ValueError(f'invalid duration "{text}"')
    total = 0
    position = 0
    while position < len(body):
        term = _TERM.match(body, position)
        if term is None or not (term.group(1) or term.group(2)):
            raise ValueError(f'invalid duration "{text}"')
        whole, fraction, unit = term.groups()
        scale = _NANOS_PER_UNIT.get(unit)
        if scale is None:
            raise ValueError(f'unknown unit "{unit}" in duration "{text}"')
        total += int(whole or "0") * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
        position = term.end()
    if total > _MAX_NANOS:
        raise ValueError(f'invalid duration "{text}": too large')
    return Duration(sign * total)


@dataclass(frozen=True, slots=True)
class Percent:
    """Istio's ``Percent``: ``value`` in [0, 100], 0.0001 % resolution when applied."""

    value: float = 0.0
