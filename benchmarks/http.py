"""End-to-end cost of meshlib's transports against plain httpx, on one local server.

What is measured: sequential requests on one keep-alive client (one request in flight),
against a raw-socket HTTP/1.1 server (:mod:`benchmarks._server`) that answers a fixed
``200 OK`` from a separate process, so its CPU is not the client's. Clients, all in this
run and against the same server:

* ``plain``: ``httpx.Client()`` → ``http://127.0.0.1:PORT/reviews/0``, the baseline;
* ``meshlib``: ``httpx.Client(transport=mesh.transport())`` → ``http://reviews:9080/reviews/0``
  with Istio's Bookinfo ``virtual-service-reviews-80-20.yaml`` + ``destination-rule-all.yaml``,
  both ``reviews`` subsets set in code to the same local server;
* ``meshlib, httpx core``: the same, with ``httpx.HTTPTransport`` as the inner transport
  instead of meshlib's own HTTP/1.1 pool (the sync shell's default): the cost of
  meshlib's routing over httpcore, where ``meshlib`` also has the cheaper HTTP/1.1 core;
* ``haproxy`` (when ``haproxy`` is installed): plain httpx through one HAProxy hop on
  loopback, the stand-in for a sidecar;
* ``raw socket``: pre-built request bytes on a bare socket, the loopback + server floor;
* the sync ``plain``/``meshlib`` pair again against **nginx** (one worker, ``return 200``)
  when it is installed, the server performance.md's B1 names;
* the same ``plain``/``meshlib`` pair with ``httpx.AsyncClient`` on asyncio (and on trio
  with ``--trio``);
* the sync pair again with no socket at all: both over an inner transport that returns a
  canned response, so the difference is meshlib's own CPU, free of network and server
  noise (the number to watch on a busy machine).

Each phase runs its clients in alternating rounds (A B C, C B A, …) after a warm-up, so
drift on a shared machine hits every client alike. Reported per client, each as the
median over rounds: requests/s, p50 and p99 latency (µs), client CPU per request
(``time.process_time`` of this process, µs); and each ratio to plain httpx as the median
over rounds of the ratio within a round (paired), which cancels most bursts of load from
other processes. The issue's target: meshlib's sync throughput ≥ 0.9 × plain httpx.

Run: ``python -m benchmarks.http`` (~50 s; ``--quick`` takes a few seconds). Always run it
as a module: ``python benchmarks/http.py`` would shadow the standard library's ``http``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
import httpx

import meshlib
from benchmarks import _server
from benchmarks._processes import (
    haproxy,
    haproxy_path,
    local_server,
    nginx_path,
    nginx_version,
    plain_nginx,
)
from benchmarks._report import save
from benchmarks._stats import (
    METRICS,
    Round,
    paired_difference,
    paired_ratio,
    paired_ratios,
    summarize,
)

__all__ = ["main"]

SAMPLES = Path(__file__).resolve().parent.parent / "tests/istio-samples/bookinfo-networking"
MESH_FILES = ("virtual-service-reviews-80-20.yaml", "destination-rule-all.yaml")
PATH = "/reviews/0"
MESH_URL = f"http://reviews:9080{PATH}"
VS_NAME = "default/reviews"  # the VirtualService that must route the meshlib requests
RAW_REQUEST = f"GET {PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode()
CANNED_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"2")]

TARGET_THROUGHPUT_RATIO = 0.9  # meshlib sync req/s ÷ plain httpx req/s, at least
TARGET_ADDED_CPU_US = 25.0  # performance.md §6 B1: at most this much CPU per request
TARGET_HOP_FRACTION = 0.5  # §6 B4: meshlib's added p50 ÷ the HAProxy hop's, at most

SyncRunner = Callable[[float], Round]
AsyncRunner = Callable[[float], Awaitable[Round]]


@dataclass(frozen=True, slots=True)
class Settings:
    """How long to measure: ``rounds`` rounds of ``seconds`` per client, after one
    ``warmup``-second run of each; which optional clients to add."""

    rounds: int = 10
    seconds: float = 0.75
    warmup: float = 0.3
    haproxy: bool = True
    nginx: bool = True
    trio: bool = False

    @property
    def lifetime(self) -> float:
        """An upper bound on the run, for the child processes to stop by themselves."""
        clients = 6 + 2 * (2 if self.trio else 1)
        return 60.0 + 3 * clients * (self.rounds * self.seconds + self.warmup)


QUICK = Settings(rounds=4, seconds=0.2, warmup=0.1)


# ------------------------------------------------------------------------ the clients


def bookinfo_mesh(port: int) -> meshlib.Mesh:
    """The 80/20 reviews mesh, both subsets pointing at the local server."""
    mesh = meshlib.Mesh.from_paths(*(SAMPLES / name for name in MESH_FILES))
    endpoints = [
        meshlib.Endpoint("127.0.0.1", port=port, labels={"version": version})
        for version in ("v1", "v2")
    ]
    mesh.set_endpoints("reviews", endpoints)
    return mesh


def check_routed(response: httpx.Response) -> None:
    """Fail loudly unless the reviews VirtualService routed ``response`` to a 200: a
    benchmark of the wrong path (say, a passthrough) would measure nothing useful."""
    info = response.extensions.get("meshlib")
    if response.status_code != 200 or getattr(info, "virtual_service", None) != VS_NAME:
        raise RuntimeError(f"not routed by {VS_NAME}: {response!r}, {info!r}")


def time_client(client: httpx.Client, url: str, seconds: float) -> Round:
    """Sequential ``GET url`` (body read) for about ``seconds``; one latency per request."""
    record = Round()
    latencies = record.latencies
    get, clock = client.get, time.perf_counter_ns
    errors = 0
    cpu = time.process_time()
    start = now = clock()
    end = start + int(seconds * 1e9)
    while now < end:
        before = now
        status = get(url).status_code
        now = clock()
        latencies.append(now - before)
        errors += status != 200
    record.cpu = time.process_time() - cpu
    record.wall = (now - start) / 1e9
    record.requests, record.errors = len(latencies), errors
    return record


async def time_async_client(client: httpx.AsyncClient, url: str, seconds: float) -> Round:
    """The async twin of :func:`time_client`: one task, one request in flight."""
    record = Round()
    latencies = record.latencies
    get, clock = client.get, time.perf_counter_ns
    errors = 0
    cpu = time.process_time()
    start = now = clock()
    end = start + int(seconds * 1e9)
    while now < end:
        before = now
        status = (await get(url)).status_code
        now = clock()
        latencies.append(now - before)
        errors += status != 200
    record.cpu = time.process_time() - cpu
    record.wall = (now - start) / 1e9
    record.requests, record.errors = len(latencies), errors
    return record


def time_raw_socket(connection: socket.socket, seconds: float) -> Round:
    """The floor: pre-built request bytes, read exactly the known response size."""
    record = Round()
    latencies = record.latencies
    size, clock = len(_server.RESPONSE), time.perf_counter_ns
    cpu = time.process_time()
    start = now = clock()
    end = start + int(seconds * 1e9)
    while now < end:
        before = now
        connection.sendall(RAW_REQUEST)
        received = 0
        while received < size:
            received += len(connection.recv(65536))
        now = clock()
        latencies.append(now - before)
    record.cpu = time.process_time() - cpu
    record.wall = (now - start) / 1e9
    record.requests = len(latencies)
    return record


class CannedTransport(httpx.BaseTransport):
    """An inner transport with no I/O: a new ``200 ok`` response for every request."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """The canned response, as a network transport would build it."""
        return httpx.Response(
            200, headers=CANNED_HEADERS, stream=httpx.ByteStream(_server.BODY), request=request
        )


# ------------------------------------------------------------------ alternating rounds


def _order(names: Sequence[str], number: int) -> Sequence[str]:
    """A B C, then C B A, …: each client runs first and last equally often."""
    return names if number % 2 == 0 else names[::-1]


def alternate(runners: Mapping[str, SyncRunner], settings: Settings) -> dict[str, list[Round]]:
    """Warm every client up, then time them in alternating rounds."""
    for run in runners.values():
        run(settings.warmup)
    rounds: dict[str, list[Round]] = {name: [] for name in runners}
    for number in range(settings.rounds):
        for name in _order(list(runners), number):
            gc.collect()  # the previous client's garbage is not this one's to collect
            rounds[name].append(runners[name](settings.seconds))
    return rounds


async def alternate_async(
    runners: Mapping[str, AsyncRunner], settings: Settings
) -> dict[str, list[Round]]:
    """:func:`alternate` for async clients, on the running event loop."""
    for run in runners.values():
        await run(settings.warmup)
    rounds: dict[str, list[Round]] = {name: [] for name in runners}
    for number in range(settings.rounds):
        for name in _order(list(runners), number):
            gc.collect()
            rounds[name].append(await runners[name](settings.seconds))
    return rounds


# ----------------------------------------------------------------------------- phases


#: meshlib with httpx's own transport underneath (see the module docstring).
HTTPX_CORE = "meshlib, httpx core"
#: The phase against nginx.
NGINX = "sync, nginx"


def sync_phase(port: int, hop: int | None, settings: Settings) -> dict[str, list[Round]]:
    """Plain httpx, meshlib, the HAProxy hop (if ``hop``) and the raw-socket floor."""
    mesh = bookinfo_mesh(port)
    with ExitStack() as stack:
        plain = stack.enter_context(httpx.Client())
        meshed = stack.enter_context(httpx.Client(transport=mesh.transport()))
        over_httpcore = mesh.transport(lambda up: httpx.HTTPTransport(limits=up.pool_limits()))
        meshed_httpcore = stack.enter_context(httpx.Client(transport=over_httpcore))
        runners: dict[str, SyncRunner] = {
            "plain": partial(time_client, plain, f"http://127.0.0.1:{port}{PATH}"),
            "meshlib": partial(time_client, meshed, MESH_URL),
            HTTPX_CORE: partial(time_client, meshed_httpcore, MESH_URL),
        }
        if hop is not None:
            hopped = stack.enter_context(httpx.Client())
            runners["haproxy"] = partial(time_client, hopped, f"http://127.0.0.1:{hop}{PATH}")
        raw = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The floor is steady and cheap to time: a quarter of each round is plenty.
        runners["raw socket"] = lambda seconds: time_raw_socket(raw, seconds / 4)
        check_routed(meshed.get(MESH_URL))
        check_routed(meshed_httpcore.get(MESH_URL))
        return alternate(runners, settings)


def nginx_phase(port: int, settings: Settings) -> dict[str, list[Round]]:
    """Plain httpx and meshlib against nginx on ``port``."""
    mesh = bookinfo_mesh(port)
    with httpx.Client() as plain, httpx.Client(transport=mesh.transport()) as meshed:
        runners: dict[str, SyncRunner] = {
            "plain": partial(time_client, plain, f"http://127.0.0.1:{port}{PATH}"),
            "meshlib": partial(time_client, meshed, MESH_URL),
        }
        check_routed(meshed.get(MESH_URL))
        return alternate(runners, settings)


def no_socket_phase(settings: Settings) -> dict[str, list[Round]]:
    """Plain httpx and meshlib over :class:`CannedTransport`: CPU without I/O."""
    mesh = bookinfo_mesh(9)  # the port is never dialled
    with ExitStack() as stack:
        plain = stack.enter_context(httpx.Client(transport=CannedTransport()))
        transport = mesh.transport(transport_factory=lambda _: CannedTransport())
        meshed = stack.enter_context(httpx.Client(transport=transport))
        runners: dict[str, SyncRunner] = {
            "plain": partial(time_client, plain, f"http://127.0.0.1:9{PATH}"),
            "meshlib": partial(time_client, meshed, MESH_URL),
        }
        check_routed(meshed.get(MESH_URL))
        return alternate(runners, settings)


async def async_phase(port: int, settings: Settings) -> dict[str, list[Round]]:
    """Plain ``httpx.AsyncClient`` and meshlib's async transport, on the running loop."""
    mesh = bookinfo_mesh(port)
    async with (
        httpx.AsyncClient() as plain,
        httpx.AsyncClient(transport=mesh.async_transport()) as meshed,
    ):
        runners: dict[str, AsyncRunner] = {
            "plain": partial(time_async_client, plain, f"http://127.0.0.1:{port}{PATH}"),
            "meshlib": partial(time_async_client, meshed, MESH_URL),
        }
        check_routed(await meshed.get(MESH_URL))
        return await alternate_async(runners, settings)


def run_async(backend: str, port: int, settings: Settings) -> dict[str, list[Round]]:
    """:func:`async_phase` on ``asyncio`` or ``trio``."""
    rounds: dict[str, list[Round]] = anyio.run(async_phase, port, settings, backend=backend)
    return rounds


# ---------------------------------------------------------------------------- results

#: One phase's rounds, by client, in the order measured.
Phase = dict[str, list[Round]]


def ratios(rounds: Sequence[Round], plain: Sequence[Round]) -> dict[str, float]:
    """Each reported value ÷ plain httpx's in the same round; medians over rounds."""
    return {name: paired_ratio(rounds, plain, metric) for name, metric in METRICS.items()}


def added(rounds: Sequence[Round], plain: Sequence[Round], metric: str) -> float:
    """What a client adds to plain httpx (µs for latency and CPU), rounded."""
    return round(paired_difference(rounds, plain, METRICS[metric]), 1)


def phase_record(phase: Phase) -> dict[str, object]:
    """The JSON for one phase: every client's values, with ratios to plain httpx."""
    record: dict[str, object] = {}
    for name, rounds in phase.items():
        entry = summarize(rounds).as_dict()
        if name != "plain":
            entry["ratio_to_plain"] = ratios(rounds, phase["plain"])
        record[name] = entry
    return record


def verdicts(phases: Mapping[str, Phase]) -> dict[str, object]:
    """The targets, and where this run stands against them (reported, never asserted)."""
    plain, mesh = phases["sync"]["plain"], phases["sync"]["meshlib"]
    throughput = paired_ratio(mesh, plain, METRICS["rps"])
    per_round = paired_ratios(mesh, plain, METRICS["rps"])
    result: dict[str, object] = {
        "sync_throughput_ratio": throughput,
        "sync_throughput_ratio_range": [round(min(per_round), 3), round(max(per_round), 3)],
        "sync_throughput_target": TARGET_THROUGHPUT_RATIO,
        "sync_throughput_met": throughput >= TARGET_THROUGHPUT_RATIO,
        "sync_added_cpu_us": added(mesh, plain, "cpu"),
        "sync_added_cpu_target_us": TARGET_ADDED_CPU_US,
        "sync_added_p50_us": added(mesh, plain, "p50"),
        "sync_throughput_ratio_httpx_core": paired_ratio(
            phases["sync"][HTTPX_CORE], plain, METRICS["rps"]
        ),
        "sync_added_cpu_us_httpx_core": added(phases["sync"][HTTPX_CORE], plain, "cpu"),
    }
    for name in ("asyncio", "trio", "no socket"):
        if name in phases:
            phase = phases[name]
            key = f"{name.replace(' ', '_')}_added_cpu_us"
            result[key] = added(phase["meshlib"], phase["plain"], "cpu")
    if NGINX in phases:
        phase = phases[NGINX]
        result["nginx_sync_throughput_ratio"] = paired_ratio(
            phase["meshlib"], phase["plain"], METRICS["rps"]
        )
        result["nginx_sync_added_cpu_us"] = added(phase["meshlib"], phase["plain"], "cpu")
    hop = phases["sync"].get("haproxy")
    if hop is not None:
        hop_p50 = added(hop, plain, "p50")
        result["haproxy_added_p50_us"] = hop_p50
        result["meshlib_added_p50_over_haproxy_hop"] = (
            round(added(mesh, plain, "p50") / hop_p50, 3) if hop_p50 > 0 else None
        )
        result["meshlib_added_p50_over_haproxy_hop_target"] = TARGET_HOP_FRACTION
    return result


def print_phase(name: str, phase: Phase) -> None:
    """One table row per client, with ratios to plain httpx in parentheses."""
    print(f"\n{name:22} {'req/s':>15} {'p50 µs':>15} {'p99 µs':>15} {'CPU µs/req':>15}")
    for client, rounds in phase.items():
        s, r = summarize(rounds), ratios(rounds, phase["plain"])
        cells = [
            f"{s.rps:7.0f} ({r['rps']:.2f})",
            f"{s.p50_us:7.1f} ({r['p50']:.2f})",
            f"{s.p99_us:7.1f} ({r['p99']:.2f})",
            f"{s.cpu_us:7.1f} ({r['cpu']:.2f})",
        ]
        errors = f"  {s.errors} non-200" if s.errors else ""
        print(f"  {client:20} " + " ".join(f"{c:>15}" for c in cells) + errors)


def haproxy_version(executable: str) -> str:
    """The first line of ``haproxy -v``."""
    output = subprocess.run([executable, "-v"], capture_output=True, text=True, check=False)
    return output.stdout.splitlines()[0] if output.stdout else "haproxy"


def _nginx_version() -> str | None:
    server = nginx_path()
    return ".".join(map(str, nginx_version(server))) if server else None


# ------------------------------------------------------------------------------- main


def measure(settings: Settings) -> dict[str, Phase]:
    """Start the server (and HAProxy), run every phase, stop them; the rounds."""
    executable = haproxy_path() if settings.haproxy else None
    phases: dict[str, Phase] = {}
    with ExitStack() as stack:
        port = stack.enter_context(local_server(settings.lifetime))
        hop = stack.enter_context(haproxy(executable, port)) if executable else None
        phases["sync"] = sync_phase(port, hop, settings)
        phases["asyncio"] = run_async("asyncio", port, settings)
        if settings.trio:
            phases["trio"] = run_async("trio", port, settings)
        server = nginx_path() if settings.nginx else None
        if server is not None:
            nginx_port = stack.enter_context(plain_nginx(server, settings.lifetime))
            phases[NGINX] = nginx_phase(nginx_port, settings)
    short = dataclasses.replace(settings, seconds=settings.seconds / 2)
    phases["no socket"] = no_socket_phase(short)
    return phases


def parse(argv: Sequence[str] | None) -> Settings:
    """Command-line options → :class:`Settings`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for a smoke run")
    parser.add_argument("--rounds", type=int, help="alternating rounds per client")
    parser.add_argument("--seconds", type=float, help="seconds per client per round")
    parser.add_argument("--no-haproxy", action="store_true", help="skip the HAProxy hop")
    parser.add_argument("--no-nginx", action="store_true", help="skip the nginx phase")
    parser.add_argument("--trio", action="store_true", help="also run the async pair on trio")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else Settings()
    return Settings(
        rounds=args.rounds or base.rounds,
        seconds=args.seconds or base.seconds,
        warmup=base.warmup,
        haproxy=not args.no_haproxy,
        nginx=not args.no_nginx,
        trio=args.trio,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, print the tables and the targets, save ``results/http.json``."""
    settings = parse(argv)
    executable = haproxy_path() if settings.haproxy else None
    started = time.perf_counter()
    phases = measure(settings)
    for name, phase in phases.items():
        print_phase(name, phase)
    outcome = verdicts(phases)
    print()
    for key, value in outcome.items():
        print(f"{key:42} {value}")
    results: dict[str, object] = {
        "settings": {
            "rounds": settings.rounds,
            "seconds_per_round": settings.seconds,
            "warmup_seconds": settings.warmup,
        },
        "server": "raw-socket HTTP/1.1 keep-alive, thread per connection, separate process",
        "haproxy": haproxy_version(executable) if executable else None,
        "nginx": _nginx_version() if NGINX in phases else None,
        "mesh": {"config": list(MESH_FILES), "url": MESH_URL},
        **{name.replace(" ", "_"): phase_record(phase) for name, phase in phases.items()},
        "targets": outcome,
        "elapsed_seconds": round(time.perf_counter() - started, 1),
    }
    print(f"saved to {save('http', results)}")


if __name__ == "__main__":
    main()
