"""Path and authority rewrites, and redirect locations (``istio-api.md`` §1.5, §1.6).

* ``rewrite.uri`` is Envoy's ``prefix_rewrite``: it replaces the matched prefix, the
  whole path for an ``exact`` or ``regex`` match, and ``/`` when the rule has no URI match
  (so ``/foo`` with ``uri: /new`` becomes ``/newfoo``); the query string is kept.
* ``rewrite.uriRegexRewrite`` replaces every RE2 match in the path (``\\1`` refers to a
  group), query kept.
* ``redirect.uri`` replaces the whole path; ``prefixRewrite`` only the matched prefix.
"""

from __future__ import annotations

from meshlib._core._match import MatchKind, StringMatcher
from meshlib._core._request import RequestHead
from meshlib._regex import compile_re2
from meshlib.config import HTTPRedirect, HTTPRewrite, RedirectPortSelection

__all__ = ["redirect_location", "redirect_status", "rewrite_path"]

_REDIRECT_STATUS = {0: 301, 301: 301, 302: 302, 303: 303, 307: 307, 308: 308}


def _matched_prefix_length(path: str, uri: StringMatcher | None) -> int:
    """How much of ``path`` the rule's URI match consumed, for prefix replacement."""
    if uri is None:
        return 1 if path.startswith("/") else 0  # Istio's implicit match is prefix "/"
    if uri.kind is MatchKind.PREFIX:
        return len(uri.value)
    return len(path)  # exact and regex matches: the whole path


def rewrite_path(path: str, rewrite: HTTPRewrite | None, uri: StringMatcher | None) -> str:
    """The path after ``rewrite`` (``path`` has no query string)."""
    if rewrite is None:
        return path
    if rewrite.uri:
        return rewrite.uri + path[_matched_prefix_length(path, uri) :]
    regex = rewrite.uri_regex_rewrite
    if regex is not None and regex.match:
        return compile_re2(regex.match).sub(regex.rewrite, path)
    return path


def redirect_status(redirect: HTTPRedirect) -> int:
    """``redirectCode`` (301 by default); Istio implements 301, 302, 303, 307 and 308."""
    return _REDIRECT_STATUS.get(redirect.redirect_code, 301)


def _redirect_port(head: RequestHead, redirect: HTTPRedirect) -> int | None:
    """The port of the new location, or None to leave it out."""
    if redirect.port:
        return redirect.port
    if redirect.derive_port is RedirectPortSelection.FROM_REQUEST_PORT:
        return head.port
    unchanged = not redirect.authority and not redirect.scheme
    return head.port if unchanged and not head.default_port else None


def redirect_location(head: RequestHead, redirect: HTTPRedirect, uri: StringMatcher | None) -> str:
    """The ``Location`` Envoy sends for ``redirect`` (the query string is kept).

    The port is the redirect's ``port``, the request's with ``derivePort:
    FROM_REQUEST_PORT``, or kept when neither host nor scheme change; a scheme's default
    port is left out.
    """
    scheme = redirect.scheme or head.scheme
    host = redirect.authority or head.host
    port = _redirect_port(head, redirect)
    default = 80 if scheme == "http" else 443
    authority = host if ":" in host or port is None or port == default else f"{host}:{port}"
    if redirect.uri:
        path = redirect.uri
    elif redirect.prefix_rewrite is not None:
        path = redirect.prefix_rewrite + head.path[_matched_prefix_length(head.path, uri) :]
    else:
        path = head.path
    query = f"?{head.query}" if head.query else ""
    return f"{scheme}://{authority}{path}{query}"
