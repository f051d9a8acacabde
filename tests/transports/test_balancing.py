"""Load balancing against real servers on loopback, through every shell: which endpoint
each request reaches, counted by the servers themselves.

The servers run for the whole module; each scenario takes the ones it needs, named for
it and with nothing counted yet, and declares them as the endpoints of service ``svc``
(port 8000) in a ServiceEntry, with the endpoint ``weight`` and ``locality`` it needs; a
DestinationRule sets the ``loadBalancer`` under test. Meshes have a fixed seed, so
sequential scenarios send the same sequence in every shell; concurrent ones send from 8
threads (sync) or 8 tasks (asyncio, trio) through one client. Shares that depend on
draws are checked within 4.5 binomial standard deviations of the sample size; consistent
hashing is checked against Envoy's tables (ring hash, Maglev, pinned to Envoy's test
vectors in ``tests/core/test_hashring.py``) over the servers' ``ip:port`` keys. Slow
start and ejections run on a fake mesh clock: no test waits for them. The expected
behaviour is Envoy's as Istio configures it (``envoy-semantics.md`` §5, ``istio-api.md``
§2.3).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import anyio
import httpx
import pytest
from xxhash import xxh64_intdigest

from meshlib import Endpoint, Mesh
from meshlib._clock import Clock
from meshlib._core._hashring import Maglev, RingHash, host_key
from tests.core.drive import FakeClock
from tests.servers import Answer, Behaviour, LocalServer, Seen, closed_port, serving
from tests.transports.shells import Got, Sent, Shell
from tests.transports.test_bookinfo import within_binomial_bound

SERVICE = "svc.default.svc.cluster.local"
PORT = 8000
URL = f"http://svc:{PORT}/"
SEED = 2024
#: Workers of the concurrent scenarios: threads (sync) or tasks (asyncio, trio).
WORKERS = 8
CALLER_TIMEOUT = 5.0


# -------------------------------------------------------------------------- the servers


@pytest.fixture(scope="module")
def pool() -> Iterator[list[tuple[LocalServer, Behaviour]]]:
    """Five servers for the module, each with its default behaviour (answer its name)."""
    servers = [LocalServer(f"pool-{number}") for number in range(5)]
    with serving(*servers):
        yield [(server, server.behaviour) for server in servers]


Take = Callable[..., list[LocalServer]]


@pytest.fixture
def take(pool: list[tuple[LocalServer, Behaviour]]) -> Take:
    """``take("a", "b")``: two of the module's servers, named ``a`` and ``b``, answering
    their name, with nothing seen yet."""

    def take(*names: str) -> list[LocalServer]:
        assert len(names) <= len(pool)
        servers = []
        for (server, behaviour), name in zip(pool, names, strict=False):
            server.name, server.behaviour = name, behaviour
            server.seen.clear()
            server.max_in_flight = 0
            servers.append(server)
        return servers

    return take


def served_by(results: Sequence[Got]) -> list[str]:
    """The server that answered each result (its name, from the default answer body)."""
    names = []
    for result in results:
        assert result.status == 200, (result.status, result.body, result.error)
        names.append(json.loads(result.body)["server"])
    return names


def counts(servers: Sequence[LocalServer]) -> dict[str, int]:
    """How many requests each server received, by name."""
    return {server.name: len(server.seen) for server in servers}


# ----------------------------------------------------------------------------- the mesh


@dataclass(frozen=True)
class At:
    """One endpoint of ``svc``: a server, with its ServiceEntry ``weight`` and ``locality``."""

    server: LocalServer
    weight: int = 0
    locality: str = ""


def service_entry(endpoints: Sequence[At]) -> str:
    """A STATIC ServiceEntry for ``svc`` on port 8000 whose endpoints are the servers."""
    lines = []
    for at in endpoints:
        fields = f"address: 127.0.0.1, ports: {{http: {at.server.port}}}"
        if at.weight:
            fields += f", weight: {at.weight}"
        if at.locality:
            fields += f", locality: {at.locality}"
        lines.append(f"  - {{{fields}}}\n")
    return (
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
        "metadata: {name: svc}\n"
        f"spec:\n  hosts: [{SERVICE}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n"
        f"  ports: [{{number: {PORT}, name: http, protocol: HTTP}}]\n"
        f"  endpoints:\n{''.join(lines)}"
    )


def destination_rule(policy: str, host: str = "svc") -> str:
    """A DestinationRule for ``host`` whose trafficPolicy is ``policy`` (flow-style YAML)."""
    return (
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        f"metadata: {{name: svc}}\nspec:\n  host: {host}\n  trafficPolicy: {policy}\n"
    )


def mesh_for(
    endpoints: Sequence[At | LocalServer],
    policy: str = "",
    *,
    seed: int = SEED,
    clock: Clock | None = None,
    locality: str = "",
    source_address: str | None = None,
) -> Mesh:
    """A mesh whose ``svc`` has ``endpoints`` (in order), ``policy`` its DR's trafficPolicy."""
    ats = [at if isinstance(at, At) else At(at) for at in endpoints]
    documents = [service_entry(ats)]
    if policy:
        documents.append(destination_rule(policy))
    return Mesh.from_yaml(
        "---\n".join(documents),
        seed=seed,
        clock=clock,
        locality=locality,
        source_address=source_address,
    )


def envoy_home(table: RingHash | Maglev, servers: Sequence[LocalServer], key: str) -> str:
    """The server Envoy's ``table`` (built over the servers in order) gives ``key``."""
    return servers[table.pick(xxh64_intdigest(key.encode()))].name


def keys_of(servers: Sequence[LocalServer]) -> list[tuple[str, int]]:
    """The servers as Envoy keys hosts: ``127.0.0.1:<port>``, weight 1."""
    return [(host_key("127.0.0.1", server.port), 1) for server in servers]


# ---------------------------------------------------------------- concurrent sending


def send_concurrently(shell: Shell, mesh: Mesh, url: str, total: int) -> list[Got]:
    """Send ``total`` requests to ``url`` from 8 workers sharing one client of ``shell``.

    Each worker sends its share one request after the other, so about 8 are in flight at
    any time: what an application's thread pool (or task group) does.
    """
    per_worker = [total // WORKERS + (i < total % WORKERS) for i in range(WORKERS)]
    if shell.name == "sync":
        return _concurrently_sync(mesh, url, per_worker)
    return anyio.run(_concurrently_async, mesh, url, per_worker, backend=shell.name)


def _got(response: httpx.Response) -> Got:
    return Got(response.status_code, response.content, dict(response.headers))


def _concurrently_sync(mesh: Mesh, url: str, per_worker: list[int]) -> list[Got]:
    barrier = threading.Barrier(len(per_worker))
    with httpx.Client(transport=mesh.transport(), timeout=CALLER_TIMEOUT) as client:

        def worker(count: int) -> list[Got]:
            barrier.wait(timeout=5)
            return [_got(client.get(url)) for _ in range(count)]

        with ThreadPoolExecutor(len(per_worker)) as workers:
            return [got for gots in workers.map(worker, per_worker) for got in gots]


async def _concurrently_async(mesh: Mesh, url: str, per_worker: list[int]) -> list[Got]:
    results: list[Got] = []
    async with httpx.AsyncClient(
        transport=mesh.async_transport(), timeout=CALLER_TIMEOUT
    ) as client:

        async def worker(count: int) -> None:
            results.extend([_got(await client.get(url)) for _ in range(count)])

        async with anyio.create_task_group() as group:
            for count in per_worker:
                group.start_soon(worker, count)
    return results


# ------------------------------------------------------------------ sending in phases

#: One phase: something to do first (move the clock, reload), then requests to send.
Phase = tuple[Callable[[], object], int]


def send_in_phases(shell: Shell, mesh: Mesh, phases: Sequence[Phase]) -> list[list[Got]]:
    """For each phase, do its step, then send its number of requests to ``svc``, one
    after the other, all through one client of ``shell`` (one application, its mesh
    reloaded or its clock moved between the batches)."""
    if shell.name == "sync":
        with httpx.Client(transport=mesh.transport(), timeout=CALLER_TIMEOUT) as client:
            results = []
            for step, count in phases:
                step()
                results.append([_got(client.get(URL)) for _ in range(count)])
            return results
    return anyio.run(_phases_async, mesh, phases, backend=shell.name)


async def _phases_async(mesh: Mesh, phases: Sequence[Phase]) -> list[list[Got]]:
    results = []
    async with httpx.AsyncClient(
        transport=mesh.async_transport(), timeout=CALLER_TIMEOUT
    ) as client:
        for step, count in phases:
            step()
            results.append([_got(await client.get(URL)) for _ in range(count)])
    return results


# -------------------------------------------------------------------- 1. ROUND_ROBIN

ROUND_ROBIN = "{loadBalancer: {simple: ROUND_ROBIN}}"


def test_round_robin_gives_equal_endpoints_exactly_equal_shares(shell: Shell, take: Take) -> None:
    """``ROUND_ROBIN``, 4 equal endpoints, 40 requests: 10 each, in strict turns."""
    servers = take("a", "b", "c", "d")
    order = served_by(shell.send(mesh_for(servers, ROUND_ROBIN), [Sent(URL)] * 40))
    assert counts(servers) == {"a": 10, "b": 10, "c": 10, "d": 10}
    assert len(set(order[:4])) == 4
    assert order == order[:4] * 10


def test_round_robin_starts_at_a_random_endpoint(shell: Shell, take: Take) -> None:
    """Clients with different seeds start their turns at different endpoints."""
    servers = take("a", "b", "c", "d")
    firsts = [
        served_by(shell.send(mesh_for(servers, ROUND_ROBIN, seed=seed), [Sent(URL)]))[0]
        for seed in range(4)
    ]
    assert len(set(firsts)) > 1, firsts


def test_weighted_round_robin_follows_endpoint_weights(shell: Shell, take: Take) -> None:
    """Weights 1, 2, 3: exactly 10, 20, 30 of 60 requests; each endpoint within ±1 of its
    weight in every run of 6 consecutive requests."""
    light, middle, heavy = servers = take("w1", "w2", "w3")
    endpoints = [At(light, weight=1), At(middle, weight=2), At(heavy, weight=3)]
    order = served_by(shell.send(mesh_for(endpoints, ROUND_ROBIN), [Sent(URL)] * 60))
    assert counts(servers) == {"w1": 10, "w2": 20, "w3": 30}
    weights = {"w1": 1, "w2": 2, "w3": 3}
    for start in range(len(order) - 6 + 1):
        window = Counter(order[start : start + 6])
        assert all(abs(window[name] - w) <= 1 for name, w in weights.items()), (start, window)


# ------------------------------------------------------------------------- 2. RANDOM


def test_random_is_uniform_and_ignores_weights(shell: Shell, take: Take) -> None:
    """``RANDOM`` with weights 1, 2, 3: each endpoint about a third of 600 requests."""
    n = 600
    servers = take("w1", "w2", "w3")
    endpoints = [At(server, weight=w) for server, w in zip(servers, (1, 2, 3), strict=True)]
    mesh = mesh_for(endpoints, "{loadBalancer: {simple: RANDOM}}")
    served_by(shell.send(mesh, [Sent(URL)] * n))
    served = counts(servers)
    assert sum(served.values()) == n
    for count in served.values():
        # Following the weights would give 100, 200, 300: each outside the bound.
        assert within_binomial_bound(count, n, 1 / 3), served


# ------------------------------------------------------------------ 3. LEAST_REQUEST


def test_least_request_steers_around_a_slow_endpoint(shell: Shell, take: Take) -> None:
    """The default balancer, 8 at a time, 120 requests: an endpoint 20× slower (50 ms)
    gets fewer than each fast one."""
    fast_one, slow, fast_two = servers = take("fast-1", "slow", "fast-2")
    fast, late = Answer(delay=0.0025), Answer(delay=0.05)
    fast_one.behaviour = fast_two.behaviour = lambda seen: fast
    slow.behaviour = lambda seen: late
    results = send_concurrently(shell, mesh_for(servers), URL, 120)  # no DR: LEAST_REQUEST
    assert [r.status for r in results] == [200] * 120
    served = counts(servers)
    assert sum(served.values()) == 120
    assert served["slow"] < served["fast-1"], served
    assert served["slow"] < served["fast-2"], served


def test_least_request_shares_equal_endpoints_within_bounds(shell: Shell, take: Take) -> None:
    """``LEAST_REQUEST``, 8 at a time, endpoints equally fast: each about a third of 120."""
    n = 120
    servers = take("a", "b", "c")
    answer = Answer(delay=0.0025)
    for server in servers:
        server.behaviour = lambda seen: answer
    mesh = mesh_for(servers, "{loadBalancer: {simple: LEAST_REQUEST}}")
    results = send_concurrently(shell, mesh, URL, n)
    assert [r.status for r in results] == [200] * n
    served = counts(servers)
    assert sum(served.values()) == n
    for count in served.values():
        assert within_binomial_bound(count, n, 1 / 3), served


def test_least_request_with_unequal_weights_follows_them(shell: Shell, take: Take) -> None:
    """``LEAST_REQUEST``, weights 1, 2, 3, one request at a time (none in flight at any
    pick): earliest-deadline-first on the weights, 10, 20, 30 of 60, give or take one."""
    light, middle, heavy = servers = take("w1", "w2", "w3")
    endpoints = [At(light, weight=1), At(middle, weight=2), At(heavy, weight=3)]
    mesh = mesh_for(endpoints, "{loadBalancer: {simple: LEAST_REQUEST}}")
    served_by(shell.send(mesh, [Sent(URL)] * 60))
    served = counts(servers)
    assert sum(served.values()) == 60
    assert all(abs(served[name] - 10 * w) <= 1 for name, w in (("w1", 1), ("w2", 2), ("w3", 3)))


# ----------------------------------------------------------------- 4. consistent hash


@pytest.mark.parametrize(
    ("table", "envoy_table"),
    [
        ("", lambda keys: RingHash(keys, 1024)),
        (", maglev: {tableSize: 65537}", lambda keys: Maglev(keys, 65537)),
    ],
    ids=["ring-hash", "maglev"],
)
def test_header_hash_keeps_each_user_on_one_endpoint(
    shell: Shell,
    take: Take,
    table: str,
    envoy_table: Callable[[list[tuple[str, int]]], RingHash | Maglev],
) -> None:
    """``httpHeaderName: x-user``: 30 users spread over the three servers, 5 requests
    each (the header name in either case); every user's requests reach one server, the
    one Envoy's table gives XXH64 of the user."""
    servers = take("a", "b", "c")
    envoy = envoy_table(keys_of(servers))
    # Ten users for each server, as Envoy's table places them.
    placed: dict[str, list[str]] = defaultdict(list)
    for user in (f"user-{number}" for number in range(300)):
        home = envoy_home(envoy, servers, user)
        if len(placed[home]) < 10:
            placed[home].append(user)
    users = [user for home in ("a", "b", "c") for user in placed[home]]
    assert len(users) == 30
    policy = f"{{loadBalancer: {{consistentHash: {{httpHeaderName: x-user{table}}}}}}}"
    requests = [
        Sent(URL, headers={"x-user" if turn % 2 else "X-User": user})
        for turn in range(5)
        for user in users
    ]
    shell.send(mesh_for(servers, policy), requests)
    homes: dict[str, Counter[str]] = defaultdict(Counter)
    for server in servers:
        for seen in server.seen:
            homes[seen.headers["x-user"]][server.name] += 1
    assert {user: dict(homes[user]) for user in users} == {
        user: {envoy_home(envoy, servers, user): 5} for user in users
    }


def test_header_hash_without_the_header_spreads_requests(shell: Shell, take: Take) -> None:
    """A request without the hashed header gets a random hash: no affinity, every server."""
    servers = take("a", "b", "c")
    mesh = mesh_for(servers, "{loadBalancer: {consistentHash: {httpHeaderName: x-user}}}")
    served_by(shell.send(mesh, [Sent(URL)] * 30))
    assert all(count > 0 for count in counts(servers).values()), counts(servers)


COOKIE_POLICY = (
    "{loadBalancer: {consistentHash: {httpCookie: "
    "{name: session, path: /, ttl: 60s, attributes: [{name: SameSite, value: Lax}]}}}}"
)
#: Envoy's ``makeSetCookieValue``: quoted value, Max-Age, Path, the attributes, HttpOnly.
SET_COOKIE = re.compile(r'session="([0-9a-f]{16})"; Max-Age=60; Path=/; SameSite=Lax; HttpOnly')


def test_generated_cookie_is_set_once_then_sticks(shell: Shell, take: Take) -> None:
    """``httpCookie`` with a ttl: a client's first response sets Envoy's cookie, its
    cookie jar sends it back, and every request stays on the server Envoy's ring gives
    the cookie's value; the value sent by hand, unquoted, goes there too."""
    servers = take("a", "b", "c")
    ring = RingHash(keys_of(servers), 1024)
    mesh = mesh_for(servers, COOKIE_POLICY)
    clients = [shell.send(mesh, [Sent(URL)] * 4) for _ in range(6)]
    values = []
    for results in clients:
        first, *later = results
        match = SET_COOKIE.fullmatch(first.headers.get("set-cookie", ""))
        assert match is not None, first.headers
        values.append(match.group(1))
        assert all("set-cookie" not in result.headers for result in later)
        assert served_by(results) == [envoy_home(ring, servers, match.group(1))] * 4
    assert len(set(values)) == 6  # each request without the cookie gets a new value
    (by_hand,) = shell.send(mesh, [Sent(URL, headers={"cookie": f"session={values[0]}"})])
    assert served_by([by_hand]) == [envoy_home(ring, servers, values[0])]
    assert "set-cookie" not in by_hand.headers
    # On the wire: each client's first request had no cookie, the next three the
    # generated one, quoted as the Set-Cookie header gave it.
    cookies = Counter(seen.headers.get("cookie") for server in servers for seen in server.seen)
    expected: Counter[str | None] = Counter({f'session="{value}"': 3 for value in values})
    expected.update({None: 6, f"session={values[0]}": 1})
    assert cookies == expected


def test_source_ip_hash_follows_the_clients_address(shell: Shell, take: Take) -> None:
    """``useSourceIp``: each client's requests go where Envoy's ring puts XXH64 of its
    ``source_address`` (addresses chosen to cover every server); a second client with
    the same address, another seed, lands on the same server."""
    servers = take("a", "b", "c")
    ring = RingHash(keys_of(servers), 1024)
    homes: dict[str, str] = {}  # server -> the first address it is home to
    for address in (f"10.1.{n // 250}.{n % 250 + 1}" for n in range(500)):
        homes.setdefault(envoy_home(ring, servers, address), address)
    assert set(homes) == {"a", "b", "c"}
    policy = "{loadBalancer: {consistentHash: {useSourceIp: true}}}"
    for home, address in sorted(homes.items()):
        mesh = mesh_for(servers, policy, source_address=address)
        assert served_by(shell.send(mesh, [Sent(URL)] * 4)) == [home] * 4
        twin = mesh_for(servers, policy, source_address=address, seed=SEED + 1)
        assert served_by(shell.send(twin, [Sent(URL)])) == [home]
    assert counts(servers) == {"a": 5, "b": 5, "c": 5}


# -------------------------------------------------------------------- 5. PASSTHROUGH


def original_destination_entry(ports: Sequence[int], *, resolution: str, endpoint: int = 0) -> str:
    """A ServiceEntry ``legacy.example.com`` with ``addresses: [127.0.0.1]`` on ``ports``;
    with ``endpoint``, one STATIC endpoint 127.0.0.1:``endpoint``.

    An entry's addresses are authorities of its host (Istio's virtual-host domains), on
    its declared ports only: a call to ``http://127.0.0.1:<declared port>/`` is routed
    as ``legacy.example.com``, to its cluster ``outbound|<port>||legacy.example.com``.
    That cluster connects to the address called when the entry's resolution is NONE, or
    when its DestinationRule says ``simple: PASSTHROUGH``.
    """
    declared = ", ".join(f"{{number: {p}, name: http-{p}, protocol: HTTP}}" for p in ports)
    endpoints = ""
    if endpoint:
        targets = ", ".join(f"http-{p}: {endpoint}" for p in ports)
        endpoints = f"  endpoints: [{{address: 127.0.0.1, ports: {{{targets}}}}}]\n"
    return (
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
        "metadata: {name: legacy}\n"
        "spec:\n  hosts: [legacy.example.com]\n  addresses: [127.0.0.1]\n"
        f"  location: MESH_INTERNAL\n  resolution: {resolution}\n"
        f"  ports: [{declared}]\n{endpoints}"
    )


def test_resolution_none_sends_to_the_address_called(shell: Shell, take: Take) -> None:
    """``resolution: NONE``: a call to ``http://127.0.0.1:<port>/`` (the entry's address,
    a declared port) goes through the host's VirtualService to its own cluster, which
    connects to the address and port called. Under REGISTRY_ONLY, so not through Istio's
    PassthroughCluster: a port the entry does not declare is 502 ``BlackHoleCluster``."""
    one, two = take("one", "two")
    route = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: legacy}\nspec:\n  hosts: [legacy.example.com]\n"
        "  http: [{headers: {request: {set: {x-routed: legacy}}},"
        " route: [{destination: {host: legacy.example.com}}]}]\n"
    )
    entry = original_destination_entry([one.port, two.port], resolution="NONE")
    mesh = Mesh.from_yaml(
        entry + "---\n" + route, seed=SEED, outbound_traffic_policy="REGISTRY_ONLY"
    )
    called = [one.port, two.port, one.port]
    results = shell.send(
        mesh, [Sent(f"http://127.0.0.1:{port}/") for port in [*called, closed_port()]]
    )
    assert served_by(results[:3]) == ["one", "two", "one"]
    for result, port in zip(results[:3], called, strict=True):
        assert result.info is not None
        assert result.info.cluster == f"outbound|{port}||legacy.example.com"
        assert result.info.endpoint == f"127.0.0.1:{port}"
    assert [seen.headers["x-routed"] for seen in one.seen + two.seen] == ["legacy"] * 3
    assert [seen.headers["host"] for seen in one.seen] == [f"127.0.0.1:{one.port}"] * 2
    assert results[3].status == 502
    assert results[3].info is not None
    assert results[3].info.cluster == "BlackHoleCluster"


def test_passthrough_load_balancer_ignores_the_endpoints(shell: Shell, take: Take) -> None:
    """A DR ``loadBalancer: {simple: PASSTHROUGH}`` (Envoy's ORIGINAL_DST) on a STATIC
    entry whose endpoint is another server: the request goes to the address and port the
    caller used (the entry's address 127.0.0.1, a declared port), not to the endpoint,
    which gets it without the DR."""
    called, endpoint = servers = take("called", "endpoint")
    entry = original_destination_entry([called.port], resolution="STATIC", endpoint=endpoint.port)
    plain = Mesh.from_yaml(entry, seed=SEED)
    passthrough = Mesh.from_yaml(
        entry
        + "---\n"
        + destination_rule("{loadBalancer: {simple: PASSTHROUGH}}", "legacy.example.com"),
        seed=SEED,
    )
    url = f"http://127.0.0.1:{called.port}/"
    assert served_by(shell.send(plain, [Sent(url)] * 2)) == ["endpoint"] * 2
    original = shell.send(passthrough, [Sent(url)] * 3)
    assert served_by(original) == ["called"] * 3
    assert counts(servers) == {"called": 3, "endpoint": 2}
    assert original[0].info is not None
    assert original[0].info.cluster == f"outbound|{called.port}||legacy.example.com"
    assert original[0].info.endpoint == f"127.0.0.1:{called.port}"


# ----------------------------------------------------------------------- 6. locality

CLIENT_LOCALITY = "us-west/z1/s1"
#: Outlier detection turns Istio's locality failover on; one 5xx ejects, for 30 s.
FAILOVER_POLICY = (
    "{outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s,"
    " maxEjectionPercent: 100}}"
)


class Switch:
    """A server's behaviour: 503 while ``failing``, else its usual answer."""

    def __init__(self, usual: Behaviour) -> None:
        self.usual = usual
        self.failing = False

    def __call__(self, seen: Seen) -> Answer:
        return Answer(status=503, body=b"failing") if self.failing else self.usual(seen)


def test_locality_failover_walks_the_priorities(shell: Shell, take: Take) -> None:
    """Client in us-west/z1/s1, outlier detection on: everything goes to its subzone;
    when that answers 503 (ejected on the first), to its zone; when the zone's server
    stops (refused, ejected, retried), to its region; never to the other region while a
    nearer one is healthy; after the 30 s ejection (fake clock), back to the subzone."""
    clock = FakeClock()
    remote, region, subzone = take("remote", "region", "subzone")
    switch = subzone.behaviour = Switch(subzone.behaviour)
    zone = LocalServer("zone").start()  # its own: this scenario stops it
    servers = [remote, region, zone, subzone]
    endpoints = [  # the farthest first: the order of the entry plays no part
        At(remote, locality="eu-west/z1/s1"),
        At(region, locality="us-west/z2/s1"),
        At(zone, locality="us-west/z1/s2"),
        At(subzone, locality=CLIENT_LOCALITY),
    ]
    try:
        mesh = mesh_for(endpoints, FAILOVER_POLICY, clock=clock, locality=CLIENT_LOCALITY)
        nearest = served_by(shell.send(mesh, [Sent(URL)] * 12))
        assert counts(servers) == {"remote": 0, "region": 0, "zone": 0, "subzone": 12}

        switch.failing = True
        failing = shell.send(mesh, [Sent(URL)] * 12)
        assert (failing[0].status, failing[0].body) == (503, b"failing")  # 503: not retried
        assert served_by(failing[1:]) == ["zone"] * 11
        assert counts(servers) == {"remote": 0, "region": 0, "zone": 11, "subzone": 13}

        zone.stop()
        refused = shell.send(mesh, [Sent(URL)] * 12)
        assert served_by(refused) == ["region"] * 12
        assert refused[0].info is not None
        assert refused[0].info.attempts == 2  # refused by the zone, retried in the region
        assert counts(servers) == {"remote": 0, "region": 12, "zone": 11, "subzone": 13}

        switch.failing = False
        clock.advance(31)  # past the 30 s ejection, at a 1 s sweep
        back = served_by(shell.send(mesh, [Sent(URL)] * 12))
    finally:
        zone.stop()
    assert nearest == back == ["subzone"] * 12
    assert len(remote.seen) == 0


def test_without_outlier_detection_locality_is_ignored(shell: Shell, take: Take) -> None:
    """No ``outlierDetection``: Istio sets no failover priorities, every locality serves."""
    servers = take("subzone", "zone", "region", "remote")
    localities = [CLIENT_LOCALITY, "us-west/z1/s2", "us-west/z2/s1", "eu-west/z1/s1"]
    endpoints = [At(s, locality=loc) for s, loc in zip(servers, localities, strict=True)]
    served_by(shell.send(mesh_for(endpoints, locality=CLIENT_LOCALITY), [Sent(URL)] * 40))
    assert all(count > 0 for count in counts(servers).values()), counts(servers)


def test_distribute_weights_localities(shell: Shell, take: Take) -> None:
    """``distribute``: the first rule whose ``from`` matches the client applies. Its 80 %
    for us-west/z1/* is shared by endpoint weight (3 and 1: 60 % and 20 %), us-west/z2/*
    and eu-west/* get 10 % each, and a locality no entry names gets nothing."""
    n = 300
    servers = take("subzone", "zone", "region", "remote", "unnamed")
    subzone, zone, region, remote, unnamed = servers
    endpoints = [
        At(subzone, weight=3, locality=CLIENT_LOCALITY),
        At(zone, weight=1, locality="us-west/z1/s2"),
        At(region, locality="us-west/z2/s1"),
        At(remote, locality="eu-west/z1/s1"),
        At(unnamed, locality="ap-south/z1/s1"),
    ]
    policy = (
        "{loadBalancer: {localityLbSetting: {distribute: ["
        '{from: eu-west/*, to: {"eu-west/*": 100}}, '
        '{from: us-west/z1/*, to: {"us-west/z1/*": 80, "us-west/z2/*": 10, "eu-west/*": 10}}'
        "]}}}"
    )
    served_by(shell.send(mesh_for(endpoints, policy, locality=CLIENT_LOCALITY), [Sent(URL)] * n))
    served = counts(servers)
    assert served["unnamed"] == 0
    shares = {"subzone": 0.6, "zone": 0.2, "region": 0.1, "remote": 0.1}
    for name, share in shares.items():
        assert within_binomial_bound(served[name], n, share), served


# --------------------------------------------------------------------- 7. slow start


@pytest.mark.parametrize(
    ("policy", "floor"),
    [
        ("{loadBalancer: {simple: ROUND_ROBIN, warmupDurationSecs: 10s}}", 0.1),
        (
            "{loadBalancer: {simple: ROUND_ROBIN, warmup: {duration: 10s, minimumPercent: 50}}}",
            0.5,
        ),
        ("{loadBalancer: {warmup: {duration: 10s}}}", 0.1),
    ],
    ids=["round-robin-warmupDurationSecs", "round-robin-minimum-50", "least-request-default"],
)
def test_slow_start_ramps_up_a_new_endpoint(
    shell: Shell, take: Take, policy: str, floor: float
) -> None:
    """Endpoints there from the start share equally; one added later with
    ``set_endpoints`` gets its weight times ``minimumPercent`` while its window is young,
    and its full share once the window has passed (a fake clock: no waiting)."""
    n = 42
    clock = FakeClock()
    servers = take("first", "second", "late")
    mesh = mesh_for(servers[:2], policy, clock=clock)

    def add_late_endpoint() -> None:
        clock.advance(20)  # the first two have warmed up
        mesh.set_endpoints("svc", [Endpoint("127.0.0.1", port=s.port) for s in servers])

    start, young, warm = (
        Counter(served_by(results))
        for results in send_in_phases(
            shell,
            mesh,
            [
                (lambda: None, n),  # the cluster is built now: both warm up together
                (add_late_endpoint, n),  # brand new: its weight is at the floor
                (lambda: clock.advance(10), n),  # its window has passed
            ],
        )
    )
    assert counts(servers) == start + young + warm  # as the servers counted them
    assert start == {"first": n // 2, "second": n // 2}
    assert abs(young["late"] - n * floor / (2 + floor)) <= 1, young
    assert abs(young["first"] - young["second"]) <= 1, young
    if "ROUND_ROBIN" in policy:
        assert warm == {"first": n // 3, "second": n // 3, "late": n // 3}
    else:  # two random choices again
        assert all(within_binomial_bound(count, n, 1 / 3) for count in warm.values()), warm
        assert warm["late"] > young["late"] + 3, (young, warm)


def test_slow_start_counts_from_the_reload_that_added_the_endpoint(
    shell: Shell, take: Take
) -> None:
    """A new endpoint ages from the reload that adds it, as an Envoy host does from the
    update that adds it: once its window has passed, with no request in between, it has
    its full share at once."""
    n = 42
    policy = "{loadBalancer: {simple: ROUND_ROBIN, warmupDurationSecs: 10s}}"
    clock = FakeClock()
    servers = take("first", "second", "late")
    mesh = mesh_for(servers[:2], policy, clock=clock)

    def add_late_endpoint() -> None:
        clock.advance(20)
        mesh.set_endpoints("svc", [Endpoint("127.0.0.1", port=s.port) for s in servers])
        clock.advance(20)  # the late endpoint's 10 s window passes before any request

    _, warm = send_in_phases(shell, mesh, [(lambda: None, n), (add_late_endpoint, n)])
    assert Counter(served_by(warm)) == {"first": n // 3, "second": n // 3, "late": n // 3}
