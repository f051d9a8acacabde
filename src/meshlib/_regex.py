"""RE2, the regular-expression dialect of Istio and Envoy.

Envoy matches ``safe_regex`` with RE2: linear time, no backreferences, no lookaround, and
always against the whole string. meshlib compiles every configured regex with
``google-re2`` so that what matches in meshlib matches in a sidecar, and a pattern cannot
stall a request (no ReDoS). RE2's own error logging to stderr is switched off; errors are
reported as configuration problems instead.
"""

from __future__ import annotations

import functools
from typing import Protocol, cast

import re2

__all__ = ["MAX_REGEX_LENGTH", "Pattern", "RegexError", "compile_re2"]

#: Istio rejects longer regexes (``validateStringRegexp``).
MAX_REGEX_LENGTH = 1024


class Pattern(Protocol):
    """The part of a compiled RE2 pattern meshlib uses."""

    def fullmatch(self, text: str) -> object | None: ...

    def search(self, text: str) -> object | None: ...

    def sub(self, replacement: str, text: str) -> str: ...


class RegexError(ValueError):
    """The pattern is not valid RE2."""


def _options() -> object:
    options = re2.Options()
    options.log_errors = False
    return options


_OPTIONS = _options()


@functools.lru_cache(maxsize=4096)
def compile_re2(pattern: str) -> Pattern:
    """Compile ``pattern`` as RE2 (cached: configurations repeat their patterns).

    Raises:
        RegexError: with RE2's own explanation, e.g. ``missing ): (a``.
    """
    try:
        return cast("Pattern", re2.compile(pattern, _OPTIONS))
    except re2.error as error:
        reason = error.args[0] if error.args else error
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise RegexError(text) from None
