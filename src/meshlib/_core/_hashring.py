"""Envoy's consistent-hash tables, entry for entry: the ketama ring and Maglev.

Istio's ``consistentHash`` selects Envoy's ``RING_HASH`` (``ringHash``, or no algorithm
given) or ``MAGLEV`` (``maglev``) load balancer (``istio-api.md`` §2.3,
``envoy-semantics.md`` §5.8). A client that wants the same request to land on the same
endpoint as a sidecar would must build the very same table, so this module reproduces
Envoy's construction, not just its idea. Behaviour followed (read in Envoy's source):

* Host key (``HashingLoadBalancer::hashKey``, ``thread_aware_lb_impl.h``): the endpoint
  metadata ``envoy.lb/hash_key`` if set, else the hostname when
  ``use_hostname_for_hashing``, else the address as Envoy prints it: ``10.0.0.7:8080``,
  ``[fd00::7]:8080``. Istio never turns on ``use_hostname_for_hashing``
  (``ApplyRingHashLoadBalancer`` in ``cluster_traffic_policy.go`` writes no
  ``consistent_hashing_lb_config``) and is not known to set ``hash_key`` on endpoints, so
  for a mesh the key is :func:`host_key` of the endpoint's IP and port.
* Weights (``normalizeHostWeights`` / ``normalizeLocalityWeights``,
  ``thread_aware_lb_impl.cc``): ``weight * locality_share / sum_of_weights`` in doubles,
  per locality when locality weights are in play; localities of weight 0 are left out.
* Ring (``RingHashLoadBalancer::Ring``, ``ring_hash_lb.cc``): ``scale = min(ceil(min_w *
  min_ring) / min_w, max_ring)``; walking hosts in order, a running target grows by
  ``scale * w`` and the host gets entries ``"<key>_0"``, ``"<key>_1"``, … while a running
  count stays below it; each entry is ``XXH64(entry, seed 0)``; the ring is sorted by hash.
  Lookup is ketama's binary search: the first entry whose hash is ``>= h``, wrapping to
  entry 0 past the end; host-selection attempt ``k > 0`` takes ``ring[(i + k) % size]``.
* Maglev (``MaglevTable``, ``maglev_lb.cc``; Google's paper, listing 1): hosts sorted by
  key bytes; ``offset = XXH64(key, 0) % M``, ``skip = XXH64(key, 1) % (M - 1) + 1``; rounds
  ``1, 2, …`` over the sorted hosts, a host taking a turn when ``round * w >=`` its target
  (then the target grows by the largest weight) and claiming the next free slot of its
  permutation ``(offset + skip * j) % M``. Lookup is ``table[h % M]``; attempt ``k > 0``
  first flips the hash with ``h ^ (2**64 - k)``. One host: every lookup is that host.

Which hosts: Envoy builds one table per priority from that priority's healthy hosts (all
of them when the priority is in panic); callers pass that set, in Envoy's host order.

The floating-point steps are done in the same order as Envoy's C++ (IEEE doubles both),
so rounding quirks match too; that is what pins the tables to Envoy's own test vectors.
Two things Envoy leaves unspecified are made deterministic here: entries with equal
hashes keep host order (Envoy's ``std::sort`` is unstable), and Maglev hosts with equal
keys keep input order (Envoy breaks that tie by pointer).

Both tables build off the request path: flat ``list[int]`` of hashes and owners, no
per-entry objects. Lookups are a ``bisect`` and a list index.
"""

from __future__ import annotations

import ipaddress
import math
from bisect import bisect_left
from collections.abc import Sequence

from xxhash import xxh64_intdigest

__all__ = [
    "DEFAULT_MAGLEV_TABLE_SIZE",
    "DEFAULT_MAX_RING_SIZE",
    "DEFAULT_MIN_RING_SIZE",
    "Host",
    "Locality",
    "Maglev",
    "RingHash",
    "host_key",
    "ip_text",
    "is_prime",
]

#: Envoy's ring defaults (``ring_hash_lb.h``): 1024 and 8M entries.
DEFAULT_MIN_RING_SIZE = 1024
DEFAULT_MAX_RING_SIZE = 8 * 1024 * 1024
#: Envoy's Maglev default (``maglev_lb.h``, the paper's recommendation): 65537, a prime.
DEFAULT_MAGLEV_TABLE_SIZE = 65537

_UINT32_MAX = (1 << 32) - 1
_UINT64 = 1 << 64

#: One endpoint: its hash key (see :func:`host_key`) and its weight (>= 1).
Host = tuple[str, int]
#: One locality: its weight (0 leaves it out) and its hosts.
Locality = tuple[int, Sequence[Host]]


def host_key(ip: str, port: int) -> str:
    """The key Envoy hashes for an endpoint: its address as Envoy prints it.

    ``10.0.0.7:8080`` for IPv4, ``[fd00::7]:8080`` for IPv6 (compressed, lower case, as
    ``inet_ntop`` writes it).
    """
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        return f"{address}:{port}"
    return f"[{ip_text(address)}]:{port}"


def ip_text(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An IP address as ``inet_ntop`` writes it (IPv4-mapped IPv6 keeps a dotted tail)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def is_prime(n: int) -> bool:
    """Is ``n`` prime? (Envoy requires a prime Maglev table size.)"""
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    return all(n % d for d in range(3, math.isqrt(n) + 1, 2))


class _Normalized:
    """Hosts after Envoy's weight normalisation: ids, key bytes, weights, extremes."""

    __slots__ = ("ids", "keys", "max_weight", "min_weight", "weights")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.keys: list[bytes] = []
        self.weights: list[float] = []
        self.min_weight = 1.0
        self.max_weight = 0.0

    def add_locality(self, hosts: Sequence[Host], first_id: int, share: float) -> None:
        """Append ``hosts`` (ids from ``first_id``) with weights scaled to ``share``."""
        total = _weight_sum(hosts, "hosts in a locality")
        for offset, (key, weight) in enumerate(hosts):
            if not key:
                raise ValueError("a host key cannot be empty")
            normalized = weight * share / total
            self.ids.append(first_id + offset)
            self.keys.append(key.encode())
            self.weights.append(normalized)
            self.min_weight = min(self.min_weight, normalized)
            self.max_weight = max(self.max_weight, normalized)

    @classmethod
    def flat(cls, hosts: Sequence[Host]) -> _Normalized:
        """One implicit locality: weights divided by their sum."""
        normalized = cls()
        normalized.add_locality(hosts, 0, 1.0)
        return normalized

    @classmethod
    def by_locality(cls, localities: Sequence[Locality]) -> _Normalized:
        """Locality shares ``lw / sum(lw)``, then host shares within each locality."""
        normalized = cls()
        total = 0
        for weight, _ in localities:
            if weight < 0:
                raise ValueError(f"a locality weight cannot be negative: {weight}")
            total += weight
        if total > _UINT32_MAX:
            raise ValueError(f"locality weights add up to more than {_UINT32_MAX}")
        first_id = 0
        for weight, hosts in localities:
            if total and weight:
                normalized.add_locality(hosts, first_id, weight / total)
            first_id += len(hosts)
        return normalized


def _weight_sum(hosts: Sequence[Host], what: str) -> int:
    """The sum of host weights, checked as Envoy checks it (each >= 1, sum fits uint32)."""
    total = 0
    for key, weight in hosts:
        if weight < 1:
            raise ValueError(f"host {key!r}: weight must be at least 1, got {weight}")
        total += weight
    if total > _UINT32_MAX:
        raise ValueError(f"weights of {what} add up to more than {_UINT32_MAX}")
    return total


class RingHash:
    """Envoy's ``RING_HASH`` table for one set of hosts; :meth:`pick` maps a hash to a host.

    ``hosts`` are ``(key, weight)`` in Envoy's host order (the order matters: entry counts
    come from running sums). :meth:`pick` returns an index into ``hosts``.
    """

    __slots__ = ("_hashes", "_owners", "hashes_per_host", "host_count")

    def __init__(
        self,
        hosts: Sequence[Host],
        minimum_ring_size: int = DEFAULT_MIN_RING_SIZE,
        maximum_ring_size: int = DEFAULT_MAX_RING_SIZE,
    ) -> None:
        self._build(_Normalized.flat(hosts), len(hosts), minimum_ring_size, maximum_ring_size)

    @classmethod
    def from_localities(
        cls,
        localities: Sequence[Locality],
        minimum_ring_size: int = DEFAULT_MIN_RING_SIZE,
        maximum_ring_size: int = DEFAULT_MAX_RING_SIZE,
    ) -> RingHash:
        """The ring with locality weights; hosts are numbered across localities in order."""
        ring = cls.__new__(cls)
        count = sum(len(hosts) for _, hosts in localities)
        ring._build(
            _Normalized.by_locality(localities), count, minimum_ring_size, maximum_ring_size
        )
        return ring

    def _build(self, hosts: _Normalized, count: int, min_size: int, max_size: int) -> None:
        if min_size < 1:
            raise ValueError(f"ring hash: minimum_ring_size must be at least 1, got {min_size}")
        if min_size > max_size:
            raise ValueError(
                f"ring hash: minimum_ring_size ({min_size}) > maximum_ring_size ({max_size})"
            )
        if not hosts.ids:
            raise ValueError("ring hash: no hosts to build a ring from")
        self.host_count = count
        scale = min(math.ceil(hosts.min_weight * min_size) / hosts.min_weight, float(max_size))
        hashes, owners, self.hashes_per_host = _ring_entries(hosts, scale, count)
        order = sorted(range(len(hashes)), key=hashes.__getitem__)
        self._hashes = [hashes[i] for i in order]
        self._owners = [owners[i] for i in order]

    def __len__(self) -> int:
        return len(self._hashes)

    def entries(self) -> list[tuple[int, int]]:
        """The ring in order: ``(hash, host index)`` pairs (a copy; for tests and tools)."""
        return list(zip(self._hashes, self._owners, strict=True))

    def pick(self, hash: int, attempt: int = 0) -> int:
        """The host for ``hash`` (``0 <= hash < 2**64``) on host-selection ``attempt``.

        The first entry whose hash is ``>= hash`` (wrapping to the first entry); attempt
        ``k > 0`` walks ``k`` entries further round the ring, which may be the same host.
        """
        hashes = self._hashes
        index = bisect_left(hashes, hash)
        if index == len(hashes):
            index = 0
        if attempt:
            index = (index + attempt) % len(hashes)
        return self._owners[index]


def _ring_entries(
    hosts: _Normalized, scale: float, count: int
) -> tuple[list[int], list[int], list[int]]:
    """Unsorted ring hashes, their owners, and the entries per host (Envoy's running sums).

    Envoy loops ``while current < target: add entry; current += 1.0``; ``current`` is a
    whole number, so the loop adds ``ceil(target) - current`` entries when positive.
    """
    hashes: list[int] = []
    owners: list[int] = []
    per_host = [0] * count
    current = 0
    target = 0.0
    for host, key, weight in zip(hosts.ids, hosts.keys, hosts.weights, strict=True):
        target += scale * weight
        entries = math.ceil(target) - current
        if entries <= 0:
            continue
        prefix = key + b"_"
        hashes.extend([xxh64_intdigest(prefix + b"%d" % i) for i in range(entries)])
        owners.extend([host] * entries)
        per_host[host] = entries
        current += entries
    return hashes, owners, per_host


class Maglev:
    """Envoy's ``MAGLEV`` table for one set of hosts; :meth:`pick` maps a hash to a host.

    ``hosts`` are ``(key, weight)``; their order does not matter (Envoy sorts them by
    key). :meth:`pick` returns an index into ``hosts``. ``table_size`` must be prime.
    """

    __slots__ = ("_size", "_table", "entries_per_host", "host_count")

    def __init__(self, hosts: Sequence[Host], table_size: int = DEFAULT_MAGLEV_TABLE_SIZE) -> None:
        self._build(_Normalized.flat(hosts), len(hosts), table_size)

    @classmethod
    def from_localities(
        cls, localities: Sequence[Locality], table_size: int = DEFAULT_MAGLEV_TABLE_SIZE
    ) -> Maglev:
        """The table with locality weights; hosts are numbered across localities in order."""
        table = cls.__new__(cls)
        count = sum(len(hosts) for _, hosts in localities)
        table._build(_Normalized.by_locality(localities), count, table_size)
        return table

    def _build(self, hosts: _Normalized, count: int, size: int) -> None:
        if not is_prime(size):
            raise ValueError(f"the table size of maglev must be a prime number, got {size}")
        if not hosts.ids:
            raise ValueError("maglev: no hosts to build a table from")
        self._size = size
        self.host_count = count
        self.entries_per_host = [0] * count
        if len(hosts.ids) == 1:
            # Envoy's degenerate table: one host answers every lookup.
            self._table = [hosts.ids[0]] * size
            self.entries_per_host[hosts.ids[0]] = 1
            return
        order = sorted(range(len(hosts.ids)), key=hosts.keys.__getitem__)
        keys = [hosts.keys[i] for i in order]
        slots, counts = _maglev_fill(
            [xxh64_intdigest(key) % size for key in keys],
            [xxh64_intdigest(key, 1) % (size - 1) + 1 for key in keys],
            [hosts.weights[i] for i in order],
            hosts.max_weight,
            size,
        )
        ids = [hosts.ids[i] for i in order]
        self._table = [ids[slot] for slot in slots]
        for position, entries in enumerate(counts):
            self.entries_per_host[ids[position]] = entries

    def __len__(self) -> int:
        return self._size

    def table(self) -> list[int]:
        """The table: the host index in each slot (a copy; for tests and tools)."""
        return list(self._table)

    def pick(self, hash: int, attempt: int = 0) -> int:
        """The host for ``hash`` (``0 <= hash < 2**64``) on host-selection ``attempt``.

        ``table[hash % size]``; attempt ``k > 0`` looks up ``hash ^ (2**64 - k)`` instead.
        """
        if attempt:
            hash ^= _UINT64 - attempt
        return self._table[hash % self._size]


def _maglev_fill(
    offsets: list[int], skips: list[int], weights: list[float], max_weight: float, size: int
) -> tuple[list[int], list[int]]:
    """Fill ``size`` slots from the sorted hosts' permutations; slots hold sorted positions.

    A host's next candidate slot, ``(offset + skip * next) % size``, is kept and advanced
    by ``skip`` rather than recomputed: the same sequence without the products.
    """
    if all(weight == max_weight for weight in weights):
        return _maglev_fill_equal(offsets, skips, size)
    return _maglev_fill_weighted(offsets, skips, weights, max_weight, size)


def _maglev_fill_equal(
    offsets: list[int], skips: list[int], size: int
) -> tuple[list[int], list[int]]:
    """Equal weights: every host takes every turn, so the weight test can be left out.

    At turn ``t`` a host's target is ``t - 1`` additions of ``w``, which stays below
    ``t * w`` (the rounding of at most ``size`` additions is far under one ``w``).
    """
    occupied = bytearray(size)
    table = [0] * size
    position = list(offsets)
    counts = [0] * len(offsets)
    filled = 0
    while True:
        for i, skip in enumerate(skips):
            slot = position[i]
            while occupied[slot]:
                slot += skip
                if slot >= size:
                    slot -= size
            occupied[slot] = 1
            table[slot] = i
            slot += skip
            position[i] = slot - size if slot >= size else slot
            counts[i] += 1
            filled += 1
            if filled == size:
                return table, counts


def _maglev_fill_weighted(
    offsets: list[int], skips: list[int], weights: list[float], max_weight: float, size: int
) -> tuple[list[int], list[int]]:
    """Envoy's turns: host ``i`` goes when ``turn * w[i] >= target[i]``, then ``target += max``."""
    occupied = bytearray(size)
    table = [0] * size
    position = list(offsets)
    targets = [0.0] * len(offsets)
    counts = [0] * len(offsets)
    filled = 0
    turn = 1
    while True:
        for i, weight in enumerate(weights):
            if turn * weight < targets[i]:
                continue
            targets[i] += max_weight
            slot = position[i]
            skip = skips[i]
            while occupied[slot]:
                slot += skip
                if slot >= size:
                    slot -= size
            occupied[slot] = 1
            table[slot] = i
            slot += skip
            position[i] = slot - size if slot >= size else slot
            counts[i] += 1
            filled += 1
            if filled == size:
                return table, counts
        turn += 1
