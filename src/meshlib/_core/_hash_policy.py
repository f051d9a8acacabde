"""The request hash Envoy computes for a ``consistentHash`` key, and its generated cookie.

Istio turns a DestinationRule's ``consistentHash`` key into exactly one Envoy route hash
policy (``consistentHashToHashPolicy``, ``pilot/pkg/networking/core/route/route.go``);
Envoy evaluates it per request (``source/common/http/hash_policy.cc``). With a single
policy the request hash is that policy's value (``0 ^ value``: the rotate-and-xor
combining only matters for several policies). Per key, as Envoy does it:

* ``httpHeaderName``: every value of the header (one per header line, names compared in
  lower case), sorted bytewise, hashed as a chain: ``XXH64(v1, seed 0)``, then
  ``XXH64(v2, seed=that)``, … (``HashUtil::xxHash64(absl::Span)``; Envoy's
  ``hash_test.cc`` pins ``{"foo", "bar"}`` to 17745830980996999794). One value: plain
  ``XXH64(value)``. A present but empty header hashes ``""``; an absent one gives no hash.
* ``httpCookie``: the first cookie of that name across ``Cookie`` headers (split on ``;``,
  leading spaces dropped from names, one pair of surrounding double quotes dropped from
  values; ``Utility::parseCookieValue``) hashed with ``XXH64``. An empty or absent cookie
  with a ``ttl`` makes Envoy generate one (``Router::Filter::addDownstreamSetCookie``):
  value ``hex16(XXH64(remote_address + local_address))`` of the downstream connection
  (addresses as ``ip:port``, ``[v6]:port``), hashed like a received cookie, and sent back
  as ``Set-Cookie: name="value"[; Max-Age=s][; Path=p][; attr[=v]]…; HttpOnly``
  (``Utility::makeSetCookieValue``; ``Max-Age`` left out for a ttl of 0s, the session
  cookie; the ttl is whole seconds, fractions dropped). Without a ttl, no hash.
* ``useSourceIp``: ``XXH64`` of the downstream IP as text (``addressAsString``: no port,
  no brackets). ``useSourceIp: false`` adds no policy at all.
* ``httpQueryParameterName``: ``XXH64`` of the first value of that parameter in the raw
  query string, neither names nor values percent-decoded
  (``QueryParamsMulti::parseQueryString``); ``?p`` alone is the value ``""``.

No key (or no value for it): no hash, and Envoy's ring and Maglev then pick with a
random hash (``ThreadAwareLoadBalancerBase::LoadBalancerImpl::chooseHost``).

For meshlib there is no downstream connection: the caller gives the addresses a sidecar
would have seen. ``source_ip`` is the client's own address (what a sidecar sees as the
remote end of the application's connection), ``local_ip`` the address the request was
sent to; either may carry a port (``10.1.2.3:43210``), which only the generated cookie
uses. The generated value need not equal a sidecar's: it is opaque, and the client
hashes it the same way on every later request that carries it back.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from xxhash import xxh64_intdigest

from meshlib._core._hashring import (
    DEFAULT_MAGLEV_TABLE_SIZE,
    DEFAULT_MIN_RING_SIZE,
    Host,
    Locality,
    Maglev,
    RingHash,
    ip_text,
)
from meshlib.config._destination_rule import ConsistentHashLB, HTTPCookie, HTTPCookieAttribute

__all__ = [
    "HashResult",
    "HeaderValues",
    "address_text",
    "chained_xxh64",
    "cookie_value",
    "generated_cookie_value",
    "hash_table",
    "header_hash",
    "locality_hash_table",
    "query_parameters",
    "request_hash",
    "set_cookie_value",
]

#: A header's value as meshlib hands it over: one string (one header line, or several
#: joined with ``,``), or the separate values of repeated header lines.
HeaderValues = str | Sequence[str]


@dataclass(frozen=True, slots=True)
class HashResult:
    """The request's hash (``None``: no hash, pick at random) and a cookie to set, if any.

    ``set_cookie`` is the value of a ``Set-Cookie`` response header (no header name).
    """

    hash: int | None
    set_cookie: str | None = None


_NO_HASH = HashResult(None)


def request_hash(
    policy: ConsistentHashLB,
    headers: Mapping[str, HeaderValues],
    query: Mapping[str, str],
    source_ip: str | None = None,
    local_ip: str | None = None,
) -> HashResult:
    """The hash Envoy computes for ``policy``'s key on this request.

    ``headers`` has lower-case names; a value that is a sequence stands for repeated
    header lines (exact for Envoy's multi-value header hash and for several ``Cookie``
    lines), a string for one line. ``query`` maps each parameter to its first *raw*
    value, as :func:`query_parameters` parses a query string (a decoded mapping hashes
    differently from Envoy whenever a value is percent-encoded).
    """
    if policy.http_header_name is not None:
        values = _as_list(headers.get(policy.http_header_name.lower(), ()))
        return HashResult(header_hash(values)) if values else _NO_HASH
    if policy.http_cookie is not None:
        return _cookie_hash(policy.http_cookie, headers.get("cookie"), source_ip, local_ip)
    if policy.use_source_ip:
        text = address_text(source_ip)
        return _NO_HASH if text is None else HashResult(_xxh64(text[0]))
    if policy.http_query_parameter_name is not None:
        value = query.get(policy.http_query_parameter_name)
        return _NO_HASH if value is None else HashResult(_xxh64(value))
    return _NO_HASH


def locality_hash_table(
    policy: ConsistentHashLB, localities: Sequence[Locality]
) -> RingHash | Maglev:
    """:func:`hash_table` with locality weights (``distribute``): hosts are numbered
    across the localities, in order."""
    if policy.maglev is not None:
        size = policy.maglev.table_size or DEFAULT_MAGLEV_TABLE_SIZE
        return Maglev.from_localities(localities, size)
    ring = policy.ring_hash
    minimum = ring.minimum_ring_size if ring is not None else policy.minimum_ring_size
    return RingHash.from_localities(localities, minimum or DEFAULT_MIN_RING_SIZE)


def hash_table(policy: ConsistentHashLB, hosts: Sequence[Host]) -> RingHash | Maglev:
    """The table Istio has Envoy build for ``policy`` (``ApplyRingHashLoadBalancer``).

    ``maglev`` → Maglev of ``tableSize`` (0: Envoy's 65537); ``ringHash`` → a ring of
    ``minimumRingSize`` (0: Envoy's 1024); neither → a ring of the deprecated top-level
    ``minimumRingSize`` (0: 1024). Istio never sets a maximum ring size (Envoy's 8M).
    """
    if policy.maglev is not None:
        return Maglev(hosts, policy.maglev.table_size or DEFAULT_MAGLEV_TABLE_SIZE)
    if policy.ring_hash is not None:
        return RingHash(hosts, policy.ring_hash.minimum_ring_size or DEFAULT_MIN_RING_SIZE)
    return RingHash(hosts, policy.minimum_ring_size or DEFAULT_MIN_RING_SIZE)


def header_hash(values: Sequence[str]) -> int:
    """Envoy's hash of a header's values: sorted bytewise, then :func:`chained_xxh64`."""
    return chained_xxh64(sorted(values, key=_utf8))


def chained_xxh64(values: Sequence[str]) -> int:
    """``HashUtil::xxHash64(absl::Span)``: each value's ``XXH64`` seeded with the previous."""
    result = 0
    for value in values:
        result = xxh64_intdigest(_utf8(value), result)
    return result


def cookie_value(cookie_headers: HeaderValues | None, name: str) -> str:
    """The value of the first cookie called ``name``, ``""`` if none (``parseCookieValue``)."""
    if cookie_headers is None:
        return ""
    for header in _as_list(cookie_headers):
        for pair in header.split(";"):
            equals = pair.find("=")
            if not pair or equals < 0:
                continue
            if pair[:equals].lstrip(" ") != name:
                continue
            value = pair[equals + 1 :]
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                value = value[1:-1]
            return value
    return ""


def generated_cookie_value(source_address: str, local_address: str) -> str:
    """The value Envoy generates: 16 lower-case hex digits of ``XXH64(remote + local)``."""
    return f"{_xxh64(source_address + local_address):016x}"


def set_cookie_value(
    name: str,
    value: str,
    path: str,
    max_age: int,
    attributes: Sequence[HTTPCookieAttribute] = (),
    http_only: bool = True,
) -> str:
    """A ``Set-Cookie`` value as Envoy writes it (``Utility::makeSetCookieValue``)."""
    parts = [f'{name}="{value}"']
    if max_age:
        parts.append(f"Max-Age={max_age}")
    if path:
        parts.append(f"Path={path}")
    parts.extend(a.name if not a.value else f"{a.name}={a.value}" for a in attributes)
    if http_only:
        parts.append("HttpOnly")
    return "; ".join(parts)


def query_parameters(raw_query: str) -> dict[str, str]:
    """The first raw value of each parameter in ``raw_query`` (the part after ``?``).

    Split on ``&``, then at the first ``=``; a parameter without ``=`` has the value
    ``""``; nothing is percent-decoded (Envoy's ``parseQueryString``).
    """
    params: dict[str, str] = {}
    start = 0
    while start < len(raw_query):
        end = raw_query.find("&", start)
        if end < 0:
            end = len(raw_query)
        name, _, value = raw_query[start:end].partition("=")
        params.setdefault(name, value)
        start = end + 1
    return params


@lru_cache(maxsize=4096)
def address_text(address: str | None) -> tuple[str, str] | None:
    """``(ip, as_string)`` the way Envoy prints an address, or ``None`` if not an IP.

    ``address`` is ``ip``, ``ip:port`` or ``[v6]:port``; ``ip`` comes back as
    ``addressAsString`` gives it (``10.0.0.1``, ``fd00::1``), ``as_string`` as ``asString``
    (``10.0.0.1:80``, ``[fd00::1]:80``; without a port given, just the IP as written).
    Cached: a client's addresses repeat from request to request.
    """
    if not address:
        return None
    host, port = _split_port(address)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    text = ip_text(ip)
    if port is None:
        return text, text
    return text, (f"{text}:{port}" if ip.version == 4 else f"[{text}]:{port}")


def _split_port(address: str) -> tuple[str, str | None]:
    """``"[v6]:p"`` → ``("v6", "p")``; ``"v4:p"`` → ``("v4", "p")``; a bare IP → no port."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, (rest[1:] if rest.startswith(":") and rest[1:].isdigit() else None)
    if address.count(":") == 1:
        host, _, port = address.partition(":")
        return host, (port if port.isdigit() else None)
    return address, None


def _cookie_hash(
    cookie: HTTPCookie,
    cookie_headers: HeaderValues | None,
    source_ip: str | None,
    local_ip: str | None,
) -> HashResult:
    """Hash the named cookie, or generate one when it is missing and a ttl is set."""
    existing = cookie_value(cookie_headers, cookie.name)
    if existing:
        return HashResult(_xxh64(existing))
    if cookie.ttl is None:
        return _NO_HASH
    source, local = address_text(source_ip), address_text(local_ip)
    if source is None or local is None:
        return _NO_HASH
    value = generated_cookie_value(source[1], local[1])
    max_age = cookie.ttl.nanos // 1_000_000_000
    header = set_cookie_value(cookie.name, value, cookie.path, max_age, cookie.attributes)
    return HashResult(_xxh64(value), header)


def _as_list(values: HeaderValues) -> list[str]:
    """One header line as a one-item list; repeated lines as they are."""
    return [values] if isinstance(values, str) else list(values)


def _utf8(text: str) -> bytes:
    return text.encode()


def _xxh64(text: str) -> int:
    return xxh64_intdigest(text.encode())
