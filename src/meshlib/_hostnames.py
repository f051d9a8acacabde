"""Host names as Istio treats them: short-name expansion and wildcard matching.

Follows ``pkg/config/host/name.go`` and ``model/config.go`` (``istio-api.md`` §5.4):

* a name **without a dot** is short: ``reviews`` in namespace ``default`` with domain
  ``cluster.local`` is ``reviews.default.svc.cluster.local``; ``reviews.default`` is left
  as written; ``*`` and IP addresses are never expanded;
* a wildcard is allowed only as the first label (``*.example.com``, ``*foo.com`` or ``*``);
  ``*.example.com`` matches ``a.example.com`` and ``a.b.example.com`` but not
  ``example.com``; comparisons ignore case.
"""

from __future__ import annotations

import ipaddress

__all__ = [
    "expand",
    "is_ip",
    "is_wildcard",
    "matches",
    "more_specific",
    "subset_of",
]

DEFAULT_DOMAIN = "cluster.local"


def is_wildcard(host: str) -> bool:
    """True for ``*`` and ``*…`` names."""
    return host.startswith("*")


def is_ip(host: str) -> bool:
    """True for IPv4 and IPv6 addresses (not CIDR ranges)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def expand(host: str, namespace: str, domain: str = DEFAULT_DOMAIN) -> str:
    """The FQDN Istio resolves ``host`` to, read in a resource of ``namespace``.

    Only dot-less names are expanded (``ResolveShortnameToFQDN``); the result is
    lower-cased, as pilot lower-cases hosts before matching.
    """
    host = host.lower()
    if "." in host or host == "*" or not host or (":" in host and is_ip(host)):
        return host  # a dot-less IP address can only be IPv6
    return f"{host}.{namespace}.svc.{domain}"


def matches(pattern: str, host: str) -> bool:
    """``host.Name.Matches``: do the two names overlap (either may be a wildcard)?"""
    if is_wildcard(pattern):
        if is_wildcard(host):
            shorter, longer = sorted((pattern[1:], host[1:]), key=len)
            return longer.endswith(shorter)
        return host.endswith(pattern[1:])
    if is_wildcard(host):
        return pattern.endswith(host[1:])
    return pattern == host


def subset_of(host: str, pattern: str) -> bool:
    """``host.Name.SubsetOf``: is every name ``host`` covers also covered by ``pattern``?"""
    if is_wildcard(pattern):
        suffix = pattern[1:]
        return host[1:].endswith(suffix) if is_wildcard(host) else host.endswith(suffix)
    return not is_wildcard(host) and host == pattern


def more_specific(a: str, b: str) -> bool:
    """Is ``a`` a more specific host than ``b``? Exact beats wildcard; longer wildcard wins.

    This is the order of ``host.MoreSpecific`` / ``MostSpecificHostMatch``.
    """
    if is_wildcard(a) != is_wildcard(b):
        return not is_wildcard(a)
    return len(a) > len(b)
