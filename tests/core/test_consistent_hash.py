"""Consistent hashing through the engine (``istio-api.md`` §2.3; ``envoy-semantics.md`` §5.8).

The tables themselves are pinned to Envoy's test vectors in ``test_hashring.py``; here the
engine must hash the right key, build the table over the right hosts, and keep retries
where Istio keeps them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx
from xxhash import xxh64_intdigest

from meshlib import Endpoint, Mesh
from meshlib._core._actions import Attempt, Deliver, Outcome, Responded, Send
from meshlib._core._hashring import Maglev, RingHash, host_key
from meshlib._transports._common import request_head
from tests.core.builders import HOST, URL, service_mesh
from tests.core.drive import drive

HEADER = "loadBalancer: {consistentHash: {httpHeaderName: x-user}}\n"
HOSTS = [f"10.0.0.{n}" for n in range(1, 6)]


def endpoint_for(mesh: Mesh, headers: dict[str, str] | None = None) -> str:
    return drive(mesh, URL, headers=headers).sends[0].address


def test_same_key_same_host_and_keys_spread() -> None:
    """Every request with x-user: alice lands on one host; 60 users use every host."""
    mesh = service_mesh(None, HEADER, endpoints=5)
    assert len({endpoint_for(mesh, {"x-user": "alice"}) for _ in range(30)}) == 1
    users = Counter(endpoint_for(mesh, {"x-user": f"user-{n}"}) for n in range(60))
    assert set(users) == set(HOSTS)


def test_the_host_is_the_one_envoys_ring_gives() -> None:
    """The pick is Envoy's: a 1024-entry ring over ``ip:port`` keys, looked up with
    XXH64 of the header value."""
    mesh = service_mesh(None, HEADER, endpoints=5)
    ring = RingHash([(host_key(h, 80), 1) for h in HOSTS], 1024)
    for user in ("alice", "bob", "carol", "dave"):
        expected = HOSTS[ring.pick(xxh64_intdigest(user.encode()))]
        assert endpoint_for(mesh, {"x-user": user}) == expected


def test_maglev_table_when_asked() -> None:
    """``maglev: {tableSize: 251}`` builds Envoy's Maglev table of that size."""
    policy = "loadBalancer: {consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 251}}}\n"
    mesh = service_mesh(None, policy, endpoints=5)
    table = Maglev([(host_key(h, 80), 1) for h in HOSTS], 251)
    for user in ("alice", "bob", "carol", "dave"):
        expected = HOSTS[table.pick(xxh64_intdigest(user.encode()))]
        assert endpoint_for(mesh, {"x-user": user}) == expected


def test_no_key_in_the_request_picks_at_random() -> None:
    """Without the header there is nothing to hash: Envoy picks with a random hash."""
    mesh = service_mesh(None, HEADER, endpoints=5)
    assert len({endpoint_for(mesh) for _ in range(60)}) == 5


def test_query_parameter_and_source_ip_keys() -> None:
    """httpQueryParameterName hashes the raw first value; useSourceIp the client's address."""
    mesh = service_mesh(
        None, "loadBalancer: {consistentHash: {httpQueryParameterName: u}}\n", endpoints=5
    )
    picks = {drive(mesh, URL + "?u=alice&u=bob").sends[0].address for _ in range(20)}
    assert len(picks) == 1
    by_ip = "loadBalancer: {consistentHash: {useSourceIp: true}}\n"
    for address in ("10.1.0.7", "10.1.0.8"):
        mesh = service_mesh(None, by_ip, endpoints=5, source_address=address)
        ring = RingHash([(host_key(h, 80), 1) for h in HOSTS], 1024)
        expected = HOSTS[ring.pick(xxh64_intdigest(address.encode()))]
        assert {endpoint_for(mesh) for _ in range(10)} == {expected}


def test_cookie_with_ttl_is_generated_once_then_followed() -> None:
    """httpCookie with a ttl: a request without the cookie gets Set-Cookie; sending it
    back keeps the client on one host."""
    policy = "loadBalancer: {consistentHash: {httpCookie: {name: affinity, ttl: 60s, path: /}}}\n"
    mesh = service_mesh(None, policy, endpoints=5)
    first = drive(mesh, URL)
    assert isinstance(first.final, Deliver)
    (cookie,) = [v for n, v in first.final.edits.add if n == "set-cookie"]
    assert cookie.startswith('affinity="')
    assert cookie.endswith("; Max-Age=60; Path=/; HttpOnly")
    value = cookie.split('"')[1]
    hosts = {endpoint_for(mesh, {"cookie": f"affinity={value}"}) for _ in range(20)}
    assert hosts == {first.sends[0].address}
    again = drive(mesh, URL, headers={"cookie": f"affinity={value}"})
    assert isinstance(again.final, Deliver)
    assert not [n for n, _ in again.final.edits.add if n == "set-cookie"]


def failing_on(address: str) -> Callable[[Attempt], Outcome]:
    def answer(attempt: Attempt) -> Outcome:
        return Responded(503 if attempt.address == address else 200)

    return answer


def test_retries_stay_on_the_hashed_host_for_a_single_destination() -> None:
    """With consistent hash and one destination Istio adds no previous_hosts predicate:
    every retry goes to the key's host again."""
    mesh = service_mesh("retries: {attempts: 2, retryOn: 5xx}\n", HEADER, endpoints=5)
    home = endpoint_for(mesh, {"x-user": "alice"})
    trace = drive(mesh, URL, headers={"x-user": "alice"}, upstream=failing_on(home))
    assert [a.address for a in trace.sends] == [home] * 3


def test_retry_ignore_previous_hosts_walks_the_ring() -> None:
    """``retryIgnorePreviousHosts: true`` puts the predicate back: retries go elsewhere."""
    rule = "retries: {attempts: 2, retryOn: 5xx, retryIgnorePreviousHosts: true}\n"
    mesh = service_mesh(rule, HEADER, endpoints=5)
    home = endpoint_for(mesh, {"x-user": "alice"})
    trace = drive(mesh, URL, headers={"x-user": "alice"}, upstream=failing_on(home))
    assert trace.sends[0].address == home
    assert trace.sends[1].address != home
    assert isinstance(trace.final, Deliver)


def test_an_ejected_host_hands_its_keys_to_the_others() -> None:
    """The table is built over healthy hosts: once the key's host is ejected the key
    moves, and it comes back when the host returns."""
    policy = HEADER + (
        "outlierDetection: {consecutive5xxErrors: 1, interval: 10s, baseEjectionTime: 30s,"
        " maxEjectionPercent: 100}\n"
    )
    mesh = service_mesh("retries: {attempts: 0}\n", policy, endpoints=5)
    home = endpoint_for(mesh, {"x-user": "alice"})
    drive(mesh, URL, headers={"x-user": "alice"}, upstream=failing_on(home))
    moved = endpoint_for(mesh, {"x-user": "alice"})
    assert moved != home
    mesh.clock.advance(40.0)  # type: ignore[attr-defined]
    assert endpoint_for(mesh, {"x-user": "alice"}) == home


def test_a_repeated_header_hashes_every_value_sorted() -> None:
    """``x-user`` sent on two lines hashes both values, sorted and chained (Envoy's
    multi-value header hash), not the ``,``-joined string."""
    from meshlib._core._hash_policy import header_hash

    mesh = service_mesh(None, HEADER, endpoints=5)
    ring = RingHash([(host_key(h, 80), 1) for h in HOSTS], 1024)
    expected = HOSTS[ring.pick(header_hash(["foo", "bar"]))]
    for lines in ([("x-user", "foo"), ("x-user", "bar")], [("x-user", "bar"), ("x-user", "foo")]):
        call = mesh.start_call(request_head(httpx.Request("GET", URL, headers=lines)))
        action = call.start()
        assert isinstance(action, Send)
        assert action.attempt.address == expected
        call.finish()


def test_locality_weights_go_into_one_table() -> None:
    """With ``distribute`` weighting two localities, Envoy builds one table over both,
    weighted by locality: a key always lands on the same endpoint (not once per
    locality), the one the locality-weighted ring gives."""
    policy = (
        "loadBalancer: {consistentHash: {httpHeaderName: x-user}, localityLbSetting:"
        " {distribute: [{from: 'r/z/*', to: {'r/a/*': 50, 'r/b/*': 50}}]}}\n"
    )
    mesh = Mesh.from_yaml(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: svc, namespace: default}\nspec:\n  host: svc\n  trafficPolicy:\n"
        "    " + policy,
        seed=5,
        locality="r/z/s",
    )
    a = [Endpoint(f"10.0.1.{n}", port=80, locality="r/a/s") for n in (1, 2)]
    b = [Endpoint(f"10.0.2.{n}", port=80, locality="r/b/s") for n in (1, 2)]
    mesh.set_endpoints(HOST, [*a, *b])
    ring = RingHash.from_localities(
        [
            (50, [(host_key(e.address, 80), 1) for e in a]),
            (50, [(host_key(e.address, 80), 1) for e in b]),
        ]
    )
    addresses = [e.address for e in (*a, *b)]
    users = [f"user-{n}" for n in range(40)]
    for user in users:
        picks = {endpoint_for(mesh, {"x-user": user}) for _ in range(5)}
        assert picks == {addresses[ring.pick(xxh64_intdigest(user.encode()))]}
    assert {endpoint_for(mesh, {"x-user": u})[:7] for u in users} == {"10.0.1.", "10.0.2."}
