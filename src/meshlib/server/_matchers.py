"""The value matchers of AuthorizationPolicy, and the request path as Istio normalizes it.

Every string field of a rule takes Istio's four forms (``authorization_policy.proto``,
``Rule``): exact ``abc``, prefix ``abc*``, suffix ``*abc`` and ``*`` (any non-empty
value). Headers, hosts and methods are HTTP headers to Envoy, where ``*`` means the
header is present. Peer identities are matched on the URI SAN, ``spiffe://`` included,
the way Istio's generator writes them (``istio-api.md`` §4.2):

* ``principals`` compare the value with ``spiffe://`` put in front;
* ``namespaces`` are the regex ``.*/ns/<value, * as .*>/.*`` over the URI;
* ``serviceAccounts`` (``ns/sa`` or ``sa``, the policy's namespace by default) are the
  regex ``spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?``.

Paths go through Istio's default normalization (``BASE``) before they are matched and
before the application sees them: percent-encoded unreserved characters decoded, ``\\``
made ``/``, dot segments resolved, ``%00`` refused; the query is not part of the match.
``{*}`` and ``{**}`` make a path an Envoy URI template.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from meshlib._regex import compile_re2

__all__ = [
    "SPIFFE_PREFIX",
    "Matcher",
    "cidr_matcher",
    "namespace_matcher",
    "normalize_path",
    "path_matcher",
    "port_matcher",
    "principal_matcher",
    "service_account_matcher",
    "string_matcher",
    "trust_domain_of",
]

SPIFFE_PREFIX = "spiffe://"

#: Tests a value of the request; ``None`` is a value the request does not have.
Matcher = Callable[[str | None], bool]

# RFC 3986 unreserved characters: the escapes Istio's BASE normalization decodes.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# Envoy's URI-template literal characters: RFC 3986 pchar without "*" and "=".
_TEMPLATE_CHARS = r"[a-zA-Z0-9\-._~%!$&'()+,;:@]"


def string_matcher(pattern: str, *, ignore_case: bool = False, header: bool = False) -> Matcher:
    """Istio's exact / ``prefix*`` / ``*suffix`` / ``*`` match of one value.

    With ``header``, ``*`` only asks for the header to be there (Envoy's
    ``present_match``); otherwise it asks for a non-empty value.
    """
    fold: Callable[[str], str] = str.lower if ignore_case else str
    if pattern == "*":
        if header:
            return lambda value: value is not None
        return lambda value: bool(value)
    if pattern.startswith("*"):
        suffix = fold(pattern[1:])
        return lambda value: value is not None and fold(value).endswith(suffix)
    if pattern.endswith("*"):
        prefix = fold(pattern[:-1])
        return lambda value: value is not None and fold(value).startswith(prefix)
    exact = fold(pattern)
    return lambda value: value is not None and fold(value) == exact


def principal_matcher(pattern: str) -> Matcher:
    """``principals`` / ``source.principal``: ``spiffe://`` + the pattern, over the URI SAN.

    ``*`` is any authenticated peer; ``*suffix`` still needs the ``spiffe://`` scheme.
    """
    if pattern == "*":
        return lambda value: bool(value)
    if pattern.startswith("*"):
        suffix = pattern[1:]
        return lambda value: (
            value is not None and value.startswith(SPIFFE_PREFIX) and value.endswith(suffix)
        )
    return string_matcher(SPIFFE_PREFIX + pattern)


def namespace_matcher(pattern: str) -> Matcher:
    """``namespaces`` / ``source.namespace``: the namespace segment of the peer's URI SAN."""
    inner = ".*".join(re.escape(part) for part in pattern.split("*"))
    regex = compile_re2(f".*/ns/{inner}/.*")
    return lambda value: value is not None and regex.fullmatch(value) is not None


def service_account_matcher(value: str, policy_namespace: str) -> Matcher:
    """``serviceAccounts`` / ``source.serviceAccount``: ``ns/sa``, or ``sa`` in the policy's
    namespace, whatever the trust domain."""
    namespace, slash, account = value.partition("/")
    if not slash:
        namespace, account = policy_namespace, value
    regex = compile_re2(
        f"spiffe://.+/ns/{re.escape(namespace)}/(.+/|)sa/{re.escape(account)}(/.+)?"
    )
    return lambda peer: peer is not None and regex.fullmatch(peer) is not None


def trust_domain_of(spiffe_id: str | None) -> str | None:
    """The trust domain of a ``spiffe://`` URI, or ``None`` for anything else."""
    if spiffe_id is None or not spiffe_id.startswith(SPIFFE_PREFIX):
        return None
    domain = spiffe_id[len(SPIFFE_PREFIX) :].partition("/")[0]
    return domain or None


def cidr_matcher(block: str) -> Matcher:
    """``ipBlocks`` and the IP attributes: an address or a CIDR range (validated on load)."""
    network = ipaddress.ip_network(block, strict=False)

    def matches(value: str | None) -> bool:
        if not value:
            return False
        try:
            address = ipaddress.ip_address(value.partition("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address in network

    return matches


def port_matcher(port: str) -> Matcher:
    """``ports`` / ``destination.port``: the port number, compared as a number."""
    number = int(port)
    return lambda value: value is not None and value.isdigit() and int(value) == number


def path_matcher(pattern: str) -> Matcher:
    """``paths``: a string match, or an Envoy URI template when it holds ``{*}``/``{**}``.

    In a template ``{*}`` is one non-empty segment and ``{**}`` any run of characters,
    slashes included (it may be empty); the rest is literal.
    """
    if "{*}" not in pattern and "{**}" not in pattern:
        return string_matcher(pattern)
    parts = []
    for segment in pattern.lstrip("/").split("/"):
        if segment == "{*}":
            parts.append(_TEMPLATE_CHARS + "+")
        elif segment == "{**}":
            parts.append(_TEMPLATE_CHARS[:-1] + "/]*")
        else:
            parts.append(re.escape(segment))
    regex = compile_re2("/" + "/".join(parts))
    return lambda value: value is not None and regex.fullmatch(value) is not None


def normalize_path(path: str) -> str | None:
    """Istio's ``BASE`` normalization of a request path (no query); ``None`` to refuse it.

    Decodes ``%XX`` escapes of unreserved characters once (``%2F`` and ``%5C`` stay),
    turns ``\\`` into ``/`` and resolves ``.`` and ``..`` segments (RFC 3986 §5.2.4).
    A path with ``%00`` is refused (400), as Envoy does.
    """
    if "%00" in path:
        return None

    def decode(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else match.group(0)

    path = _ESCAPE.sub(decode, path).replace("\\", "/")
    if not path.startswith("/"):
        return path
    return _remove_dot_segments(path)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for an absolute path."""
    output: list[str] = []
    segments = path[1:].split("/")
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)
