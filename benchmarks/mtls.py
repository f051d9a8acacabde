"""Istio mutual TLS on the wire: what it costs meshlib's sync client per request on a
kept-alive connection, and per new connection.

Servers, in a child process (their CPU is never the client's): **nginx** when it is
installed (one worker, a configuration generated in a temporary folder, ``nginx -g
'daemon off;'`` under :mod:`benchmarks._watchdog`), with two servers on loopback that
answer a fixed ``200 ok``: a plaintext one, and a TLS one (TLS 1.2-1.3) that requires a
client certificate (``ssl_verify_client on``; ``ssl_client_certificate`` is the root of a
development CA made for the run, :func:`meshlib._ca.init_ca`; its own certificate an
identity issued by that CA for ``spiffe://cluster.local/ns/default/sa/reviews``). nginx
knows only ``http/1.1`` in ALPN, and is expected to pick it from Istio's list (each run
records what both sides negotiated). Without nginx (or with
``--server python``) the same two listeners come from a Python ``ssl`` server
(:mod:`benchmarks._tls_server`): every row is still measured, but latencies and req/s are
the slower server's and compare with nothing measured against nginx; client CPU does.

Clients, all sync and sequential (one request in flight), against the same servers:

* ``meshlib plain``: ``httpx.Client(transport=mesh.transport())`` → ``http://reviews:9080``,
  a ``MESH_INTERNAL`` ServiceEntry whose endpoint (the plaintext server) has the service
  account ``reviews``, a VirtualService to subset ``v1``, and a DestinationRule with
  ``tls: {mode: DISABLE}``: the baseline;
* ``meshlib mTLS``: the same mesh but for the TLS server and ``tls: {mode: ISTIO_MUTUAL}``
  (the mesh's identity ``productpage``; SNI ``outbound_.9080_.v1_.<fqdn>``; ALPN
  ``istio-http/1.1, istio, http/1.1``; the server's URI SAN checked against the
  endpoint's SPIFFE ID);
* ``httpx plain`` and ``httpx mTLS``: references without meshlib: ``httpx.Client()``, and
  ``httpx.Client(verify=context)`` with an SSL context carrying the same client identity
  (ALPN ``http/1.1``, chain check only).

Phases, each in alternating rounds (A B C D, D C B A, …) after a warm-up, every value the
median over rounds, every comparison paired within a round (see :mod:`benchmarks._stats`):

1. **keep-alive**: one connection per client for the whole run; req/s, p50/p99 latency,
   client CPU per request (``time.process_time``). Target: ``meshlib mTLS`` adds at most
   20% CPU per request, or at most 80 µs, to ``meshlib plain``;
2. **new connection**: the four clients above with a new connection for every request
   (``Connection: close``, which the servers honour by closing), so each request pays a
   TCP connect and, over TLS, a full mutual-TLS handshake (never resumed); beside them,
   ``meshlib mTLS, new client`` builds a new ``httpx.Client(transport=mesh.transport())``
   per request instead, and ``raw ssl socket`` is the floor: the ``ssl`` module alone
   (httpx mTLS's context) and pre-built request bytes. Within each of those requests the
   **handshake** is timed on its own: from the start of the TCP connect to the end of the
   TLS handshake, meshlib's check of the peer's SPIFFE ID included (httpcore's
   ``connection.connect_tcp.started`` and ``connection.start_tls.complete`` trace
   events; ``socket.create_connection`` + ``wrap_socket`` for the floor). Target:
   ``meshlib mTLS`` handshake p50 ≤ 2 ms. The whole request on a new connection is
   reported beside it; it costs more than the handshake plus a kept-alive request,
   because in TLS 1.3 the client's handshake ends before the server has checked the
   client's certificate and sent its session tickets, and that work lands in the first
   response's latency. The SSL
   context must be built once for the whole run, never per request, connection or
   client: ``mesh.tls_contexts.built`` stays 1.

Checked before timing (a failure stops the run): each client's first response is a
``200``, routed by the VirtualService for meshlib, over TLS exactly for the mTLS clients;
the ALPN, TLS version and cipher each side negotiated are recorded. Checked after timing
(a failure is printed as ``CHECK FAILED`` and saved): in the keep-alive phase, one
connection served all of a client's timed requests (``$connection_requests``); in the
handshake phase, every request had a new connection and, over TLS, a full handshake
(``$ssl_session_reused``) with a verified client certificate.

Run: ``python -m benchmarks.mtls`` (about 60 s; ``--quick`` takes a few seconds);
``--server nginx|python`` to choose the server (default: nginx when installed).
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import httpx

import meshlib
from benchmarks import http
from benchmarks._processes import (
    TlsFiles,
    nginx,
    nginx_path,
    nginx_version,
    python_tls_servers,
)
from benchmarks._report import save
from benchmarks._stats import METRICS, Round, paired_difference, paired_ratio, summarize
from benchmarks.http import SyncRunner, alternate, time_client
from meshlib._ca import init_ca, issue
from meshlib._core._tls_policy import ISTIO_ALPN
from meshlib._identity import CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE

__all__ = ["main"]

TARGET_ADDED_CPU_FRACTION = 0.20  # meshlib mTLS CPU/request over meshlib plain, at most …
TARGET_ADDED_CPU_US = 80.0  # … or at most this much more CPU per request
TARGET_HANDSHAKE_P50_US = 2000.0  # TCP connect + mutual-TLS handshake + peer check, p50

SERVER_ID = "spiffe://cluster.local/ns/default/sa/reviews"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/productpage"
PATH = "/reviews/0"
PROBE = "/probe"  # the servers describe the connection (see benchmarks._processes)
MESH_BASE = "http://reviews:9080"
VS_NAME = "default/reviews"
RAW_PROBE = f"GET {PROBE} HTTP/1.1\r\nhost: reviews\r\nconnection: close\r\n\r\n".encode()
END_OF_HEAD = b"\r\n\r\n"
BASELINE = "meshlib plain"
MTLS = "meshlib mTLS"
RAW_SSL = "raw ssl socket"

MESH_YAML = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews}}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  endpoints:
  - address: 127.0.0.1
    ports: {{http: {port}}}
    labels: {{version: v1}}
    serviceAccount: reviews
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http: [{{route: [{{destination: {{host: reviews, subset: v1}}}}]}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec:
  host: reviews
  trafficPolicy: {{tls: {{mode: {mode}}}}}
  subsets: [{{name: v1, labels: {{version: v1}}}}]
"""

#: One phase's rounds, by client, in the order measured.
Phase = dict[str, list[Round]]
Send = Callable[[], httpx.Response]


@dataclass(frozen=True, slots=True)
class Settings:
    """How long to measure: ``rounds`` rounds per client of ``seconds`` (keep-alive) and
    ``handshake_seconds`` (a new connection per request), after one ``warmup``-second run
    of each; ``server``: ``auto`` (nginx if installed), ``nginx`` or ``python``."""

    rounds: int = 10
    seconds: float = 0.75
    handshake_seconds: float = 0.4
    warmup: float = 0.3
    server: str = "auto"

    @property
    def lifetime(self) -> float:
        """An upper bound on the run, for the servers to stop by themselves."""
        per_client = 2 * self.warmup + self.rounds * (self.seconds + self.handshake_seconds)
        return 60.0 + 3 * 6 * per_client  # at most 6 clients a phase

    def timing(self, seconds: float) -> http.Settings:
        """What :func:`benchmarks.http.alternate` takes: rounds of ``seconds``."""
        return http.Settings(
            rounds=self.rounds, seconds=seconds, warmup=self.warmup, haproxy=False
        )


QUICK = Settings(rounds=5, seconds=0.15, handshake_seconds=0.1, warmup=0.05)


# -------------------------------------------------------------------- identities, meshes


@dataclass(frozen=True, slots=True)
class Pki:
    """The run's identities: the server's TLS files (with the CA's root), and the
    client's folder in Istio's layout (``cert-chain.pem``, ``key.pem``, ``root-cert.pem``)."""

    server: TlsFiles
    client: Path


def make_pki(folder: Path) -> Pki:
    """A development CA in ``folder``, and an identity from it for each side."""
    init_ca(folder / "ca")
    issue(folder / "ca", SERVER_ID, folder / "reviews")
    issue(folder / "ca", CLIENT_ID, folder / "productpage")
    server = TlsFiles(
        cert=folder / "reviews" / CERT_CHAIN_FILE,
        key=folder / "reviews" / KEY_FILE,
        ca=folder / "ca" / ROOT_CERT_FILE,
    )
    return Pki(server=server, client=folder / "productpage")


def build_mesh(port: int, mode: str, pki: Pki) -> meshlib.Mesh:
    """The reviews mesh: one endpoint at 127.0.0.1:``port``, DestinationRule tls ``mode``;
    the client identity either way, so the TLS mode is the only difference."""
    return meshlib.Mesh.from_yaml(MESH_YAML.format(port=port, mode=mode), identity=pki.client)


def client_context(pki: Pki) -> ssl.SSLContext:
    """plain httpx's mTLS context: the client identity, the CA's root, no host-name check
    (the server's certificate names a SPIFFE ID, not a host)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.load_verify_locations(pki.server.ca)
    context.load_cert_chain(pki.client / CERT_CHAIN_FILE, pki.client / KEY_FILE)
    return context


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything the phases need: the servers' ports, the two meshes, the context of
    plain httpx's mTLS client."""

    plain_port: int
    tls_port: int
    plain_mesh: meshlib.Mesh
    mtls_mesh: meshlib.Mesh
    context: ssl.SSLContext

    def bases(self) -> dict[str, str]:
        """Each client's URL prefix, by name, in the order measured."""
        return {
            BASELINE: MESH_BASE,
            MTLS: MESH_BASE,
            "httpx plain": f"http://127.0.0.1:{self.plain_port}",
            "httpx mTLS": f"https://127.0.0.1:{self.tls_port}",
        }

    def client(self, name: str, headers: Mapping[str, str] | None = None) -> httpx.Client:
        """A new client of the kind ``name``, sending ``headers`` on every request."""
        if name in (BASELINE, MTLS):
            mesh = self.plain_mesh if name == BASELINE else self.mtls_mesh
            return httpx.Client(transport=mesh.transport(), headers=headers)
        if name == "httpx mTLS":
            return httpx.Client(verify=self.context, headers=headers)
        return httpx.Client(headers=headers)


# ------------------------------------------------------------------------------ checks


def parse_probe(body: bytes) -> dict[str, str]:
    """A ``/probe`` body (``conn=… requests=… reused=… …``) as a dict."""
    fields = (field.partition("=") for field in body.decode().split())
    return {key: value for key, _, value in fields}


def wire_facts(name: str, response: httpx.Response, probe: dict[str, str]) -> dict[str, object]:
    """Check a client's first response (a ``200``, routed by the VirtualService for
    meshlib, TLS exactly when the client's name says mTLS); what each side negotiated.

    Raises:
        RuntimeError: a check failed (a benchmark of the wrong path measures nothing).
    """
    info = response.extensions.get("meshlib")
    routed = getattr(info, "virtual_service", None) == VS_NAME
    stream = response.extensions.get("network_stream")
    tls = stream.get_extra_info("ssl_object") if stream is not None else None
    if response.status_code != 200 or (name.startswith("meshlib") and not routed):
        raise RuntimeError(f"{name}: not a routed 200: {response!r}, {info!r}")
    if (tls is not None) != name.endswith("mTLS") or (tls is not None) != bool(probe["protocol"]):
        raise RuntimeError(f"{name}: TLS expected {name.endswith('mTLS')}, got {tls!r}, {probe}")
    if tls is None:
        return {"tls": False}
    peer = dict(tls.getpeercert() or {})
    return {
        "tls": True,
        "client_sees": {
            "protocol": tls.version(),
            "cipher": (tls.cipher() or ("",))[0],
            "alpn": tls.selected_alpn_protocol(),
            "peer_uri_sans": [v for k, v in peer.get("subjectAltName", ()) if k == "URI"],
        },
        "server_sees": {key: probe.get(key, "") for key in ("protocol", "alpn", "sni", "verify")},
    }


def one_connection(probe: dict[str, str], rounds: Sequence[Round]) -> dict[str, object]:
    """Did one connection serve every timed request? It did if the requests on the
    probe's connection outnumber them (warm-up and checks come on top)."""
    on_connection = int(probe["requests"])
    timed = sum(r.requests for r in rounds)
    return {
        "requests_timed": timed,
        "requests_on_connection": on_connection,
        "ok": on_connection > timed,
    }


def new_connections(bodies: Sequence[bytes], *, tls: bool) -> dict[str, object]:
    """Did every request of the handshake phase have a new connection, with a full
    handshake (no session resumed) and a verified client certificate when ``tls``?"""
    probes = [parse_probe(body) for body in bodies]
    fresh = sum(probe.get("requests") == "1" for probe in probes)
    resumed = sum(probe.get("reused") == "r" for probe in probes)
    verified = sum(probe.get("verify") == "SUCCESS" for probe in probes)
    ok = fresh == len(probes) and (not tls or (resumed == 0 and verified == len(probes)))
    return {
        "requests": len(probes),
        "new_connections": fresh,
        "resumed_sessions": resumed,
        "client_verified": verified,
        "ok": ok,
    }


# ------------------------------------------------------------------------------ phases


def time_probed(send: Send, bodies: list[bytes], seconds: float) -> Round:
    """:func:`benchmarks.http.time_client` for any ``send``, keeping each response body
    (the probe lines, checked after the run)."""
    record = Round()
    latencies = record.latencies
    clock = time.perf_counter_ns
    errors = 0
    cpu = time.process_time()
    start = now = clock()
    end = start + int(seconds * 1e9)
    while now < end:
        before = now
        response = send()
        now = clock()
        latencies.append(now - before)
        errors += response.status_code != 200
        bodies.append(response.content)
    record.cpu = time.process_time() - cpu
    record.wall = (now - start) / 1e9
    record.requests, record.errors = len(latencies), errors
    return record


def keep_alive_phase(setup: Setup, settings: Settings) -> tuple[Phase, dict[str, object]]:
    """Every client on its one kept-alive connection; the rounds, and the checks."""
    bases = setup.bases()
    with ExitStack() as stack:
        clients = {name: stack.enter_context(setup.client(name)) for name in bases}
        wire = {}
        for name, client in clients.items():
            response = client.get(bases[name] + PROBE)
            wire[name] = wire_facts(name, response, parse_probe(response.content))
        runners: dict[str, SyncRunner] = {
            name: partial(time_client, client, bases[name] + PATH)
            for name, client in clients.items()
        }
        rounds = alternate(runners, settings.timing(settings.seconds))
        probes = {
            name: parse_probe(client.get(bases[name] + PROBE).content)
            for name, client in clients.items()
        }
    checks = {name: one_connection(probes[name], rounds[name]) for name in rounds}
    return rounds, {"wire": wire, "one_connection_per_client": checks}


class Handshakes:
    """How long each new connection took to become ready: from the start of the TCP
    connect to the end of the TLS handshake, the client's checks of the peer included.

    httpcore reports both steps to a request's ``trace`` extension, which meshlib hands
    on to the connection it opens, so every client is timed at the same two points.
    ``rounds`` keeps one list of durations (ns) per timed run, warm-up first.
    """

    def __init__(self) -> None:
        self.rounds: list[list[int]] = []
        self._started = 0

    def __call__(self, event: str, _info: Mapping[str, object]) -> None:
        if event == "connection.connect_tcp.started":
            self._started = time.perf_counter_ns()
        elif event == "connection.start_tls.complete":
            self.rounds[-1].append(time.perf_counter_ns() - self._started)

    def timed(self, send: Send, bodies: list[bytes], seconds: float) -> Round:
        """:func:`time_probed`, with this run's handshakes kept apart."""
        self.rounds.append([])
        return time_probed(send, bodies, seconds)

    def as_rounds(self, timed: int) -> list[Round]:
        """The last ``timed`` runs as :class:`Round` records whose latencies are the
        handshakes, for :func:`benchmarks._stats.summarize`."""
        return [Round(requests=len(r), latencies=r) for r in self.rounds[-timed:]]


def new_client_get(mesh: meshlib.Mesh, url: str, trace: Handshakes) -> httpx.Response:
    """``GET url`` on a new meshlib client, closed right after."""
    with httpx.Client(transport=mesh.transport()) as client:
        return client.get(url, extensions={"trace": trace})


def raw_tls_get(port: int, context: ssl.SSLContext, trace: Handshakes) -> httpx.Response:
    """The floor: TCP connect, a mutual-TLS handshake with the ``ssl`` module alone,
    pre-built ``GET /probe`` bytes, the response read by its ``content-length``."""
    started = time.perf_counter_ns()
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with context.wrap_socket(raw) as tls:
            trace.rounds[-1].append(time.perf_counter_ns() - started)
            tls.sendall(RAW_PROBE)
            data = b""
            while END_OF_HEAD not in data:
                data += _receive(tls)
            head, _, body = data.partition(END_OF_HEAD)
            lines = head.decode("latin-1").lower().split("\r\n")
            length = next(int(line[15:]) for line in lines if line.startswith("content-length:"))
            while len(body) < length:
                body += _receive(tls)
    return httpx.Response(int(lines[0].split()[1]), content=body)


def _receive(connection: ssl.SSLSocket) -> bytes:
    data = connection.recv(65536)
    if not data:
        raise ConnectionError("the server closed the connection before the response ended")
    return data


def handshake_phase(setup: Setup, settings: Settings) -> tuple[Phase, Phase, dict[str, object]]:
    """A new connection per request: the rounds of whole requests, the rounds of the
    handshakes alone (TLS clients only), and the checks."""
    bases = setup.bases()
    names = (BASELINE, MTLS, "httpx plain", "httpx mTLS")
    close = {"connection": "close"}
    traces = {name: Handshakes() for name in (*names, f"{MTLS}, new client", RAW_SSL)}
    with ExitStack() as stack:
        senders: dict[str, Send] = {
            name: partial(
                stack.enter_context(setup.client(name, close)).get,
                bases[name] + PROBE,
                extensions={"trace": traces[name]},
            )
            for name in names
        }
        senders[f"{MTLS}, new client"] = partial(
            new_client_get, setup.mtls_mesh, MESH_BASE + PROBE, traces[f"{MTLS}, new client"]
        )
        senders[RAW_SSL] = partial(raw_tls_get, setup.tls_port, setup.context, traces[RAW_SSL])
        bodies: dict[str, list[bytes]] = {name: [] for name in senders}
        runners: dict[str, SyncRunner] = {
            name: partial(traces[name].timed, send, bodies[name]) for name, send in senders.items()
        }
        rounds = alternate(runners, settings.timing(settings.handshake_seconds))
    handshakes = {
        name: trace.as_rounds(settings.rounds)
        for name, trace in traces.items()
        if "plain" not in name
    }
    checks = {name: new_connections(bodies[name], tls="plain" not in name) for name in rounds}
    return rounds, handshakes, {"new_connection_per_request": checks}


@contextmanager
def servers(settings: Settings, files: TlsFiles) -> Iterator[tuple[str, int, int]]:
    """The plaintext and mTLS servers: a description, and their two ports."""
    executable = nginx_path() if settings.server != "python" else None
    if executable is not None:
        version = ".".join(map(str, nginx_version(executable))) or "?"
        with nginx(executable, files, settings.lifetime) as (plain_port, tls_port):
            yield f"nginx {version}, 1 worker", plain_port, tls_port
        return
    if settings.server == "nginx":
        raise SystemExit("nginx is not installed (or choose --server python)")
    with python_tls_servers(files, settings.lifetime) as (plain_port, tls_port):
        yield (
            "Python ssl server (benchmarks._tls_server), thread per connection",
            plain_port,
            tls_port,
        )


# ----------------------------------------------------------------------------- results


def print_phase(title: str, phase: Phase) -> None:
    """One table row per client, with ratios to ``meshlib plain`` in parentheses."""
    print(f"\n{title}: {'req/s':>15} {'p50 µs':>15} {'p99 µs':>15} {'CPU µs/req':>15}")
    for client, rounds in phase.items():
        s = summarize(rounds)
        r = {name: paired_ratio(rounds, phase[BASELINE], m) for name, m in METRICS.items()}
        cells = [
            f"{s.rps:7.0f} ({r['rps']:.2f})",
            f"{s.p50_us:7.1f} ({r['p50']:.2f})",
            f"{s.p99_us:7.1f} ({r['p99']:.2f})",
            f"{s.cpu_us:7.1f} ({r['cpu']:.2f})",
        ]
        errors = f"  {s.errors} non-200" if s.errors else ""
        print(f"  {client:26} " + " ".join(f"{c:>15}" for c in cells) + errors)


def print_handshakes(handshakes: Phase) -> None:
    """The TCP connect + TLS handshake of each TLS client of the new-connection phase."""
    print(f"\nconnect + TLS handshake: {'count':>8} {'p50 µs':>9} {'p99 µs':>9}")
    for client, rounds in handshakes.items():
        s = summarize(rounds)
        print(f"  {client:26} {s.requests:>7} {s.p50_us:9.1f} {s.p99_us:9.1f}")


def handshake_record(rounds: Sequence[Round]) -> dict[str, object]:
    """The JSON for one client's handshakes."""
    s = summarize(rounds)
    return {"handshakes": s.requests, "p50_us": round(s.p50_us, 1), "p99_us": round(s.p99_us, 1)}


def phase_record(phase: Phase) -> dict[str, object]:
    """The JSON for one phase: every client's values, with ratios to ``meshlib plain``."""
    record: dict[str, object] = {}
    for name, rounds in phase.items():
        entry = summarize(rounds).as_dict()
        if name != BASELINE:
            entry["ratio_to_meshlib_plain"] = {
                metric: paired_ratio(rounds, phase[BASELINE], function)
                for metric, function in METRICS.items()
            }
        record[name] = entry
    return record


def added(rounds: Sequence[Round], baseline: Sequence[Round], metric: str) -> float:
    """What a client adds to the baseline (µs for latency and CPU), rounded."""
    return round(paired_difference(rounds, baseline, METRICS[metric]), 1)


def verdicts(
    keep_alive: Phase,
    handshake: Phase,
    handshakes: Phase,
    built: int,
    wire: Mapping[str, object],
) -> dict[str, object]:
    """The targets, and where this run stands against them (reported, never asserted)."""
    plain, mtls = keep_alive[BASELINE], keep_alive[MTLS]
    sides = wire[MTLS]
    assert isinstance(sides, dict)
    cpu_ratio = paired_ratio(mtls, plain, METRICS["cpu"])
    cpu_added = added(mtls, plain, "cpu")
    fresh = summarize(handshake[MTLS])
    ready = summarize(handshakes[MTLS])
    return {
        "keep_alive_added_cpu_us": cpu_added,
        "keep_alive_cpu_ratio": cpu_ratio,
        "keep_alive_cpu_target": (
            f"≤ {1 + TARGET_ADDED_CPU_FRACTION:.2f}x or ≤ +{TARGET_ADDED_CPU_US:.0f} µs"
        ),
        "keep_alive_cpu_met": cpu_ratio <= 1 + TARGET_ADDED_CPU_FRACTION
        or cpu_added <= TARGET_ADDED_CPU_US,
        "keep_alive_added_p50_us": added(mtls, plain, "p50"),
        "keep_alive_rps_ratio": paired_ratio(mtls, plain, METRICS["rps"]),
        "keep_alive_httpx_mtls_added_cpu_us": added(
            keep_alive["httpx mTLS"], keep_alive["httpx plain"], "cpu"
        ),
        "keep_alive_meshlib_over_httpx_cpu_us": {
            "plain": added(plain, keep_alive["httpx plain"], "cpu"),
            "mTLS": added(mtls, keep_alive["httpx mTLS"], "cpu"),
        },
        "handshake_p50_us": round(ready.p50_us, 1),
        "handshake_p99_us": round(ready.p99_us, 1),
        "handshake_p50_target_us": TARGET_HANDSHAKE_P50_US,
        "handshake_p50_met": ready.p50_us <= TARGET_HANDSHAKE_P50_US,
        "handshake_p50_by_client_us": {
            name: round(summarize(rounds).p50_us, 1) for name, rounds in handshakes.items()
        },
        "handshake_meshlib_over_floor_p50_us": added(handshakes[MTLS], handshakes[RAW_SSL], "p50"),
        "new_connection_request_p50_us": round(fresh.p50_us, 1),
        "new_connection_request_p99_us": round(fresh.p99_us, 1),
        "new_connection_added_p50_us": added(handshake[MTLS], handshake[BASELINE], "p50"),
        "new_connection_added_cpu_us": added(handshake[MTLS], handshake[BASELINE], "cpu"),
        "new_connection_meshlib_over_httpx_cpu_us": {
            "plain": added(handshake[BASELINE], handshake["httpx plain"], "cpu"),
            "mTLS": added(handshake[MTLS], handshake["httpx mTLS"], "cpu"),
        },
        "new_connection_floor_p50_us": round(summarize(handshake[RAW_SSL]).p50_us, 1),
        "new_connection_floor_cpu_us": round(summarize(handshake[RAW_SSL]).cpu_us, 1),
        "istio_alpn_negotiated": {
            "client": sides["client_sees"]["alpn"],
            "server": sides["server_sees"]["alpn"],
        },
        "tls_contexts_built": built,
        "tls_contexts_built_met": built == 1,
    }


def print_checks(checks: Mapping[str, object]) -> None:
    """The wire facts and connection checks, one line each; failures stand out."""
    for group, entries in checks.items():
        assert isinstance(entries, dict)
        for name, value in entries.items():
            failed = isinstance(value, dict) and value.get("ok") is False
            print(f"  {'CHECK FAILED ' if failed else ''}{group} {name}: {value}")


# -------------------------------------------------------------------------------- main


def measure(settings: Settings) -> dict[str, object]:
    """Make the identities, start the servers, run both phases, stop; the results."""
    with tempfile.TemporaryDirectory(prefix="meshlib-bench-pki-") as folder, ExitStack() as stack:
        pki = make_pki(Path(folder))
        server, plain_port, tls_port = stack.enter_context(servers(settings, pki.server))
        print(f"server: {server}")
        setup = Setup(
            plain_port=plain_port,
            tls_port=tls_port,
            plain_mesh=build_mesh(plain_port, "DISABLE", pki),
            mtls_mesh=build_mesh(tls_port, "ISTIO_MUTUAL", pki),
            context=client_context(pki),
        )
        keep_alive, keep_alive_checks = keep_alive_phase(setup, settings)
        built_after_keep_alive = setup.mtls_mesh.tls_contexts.built
        handshake, handshakes, handshake_checks = handshake_phase(setup, settings)
        built = setup.mtls_mesh.tls_contexts.built
    print_phase("keep-alive", keep_alive)
    print_phase("new connection per request", handshake)
    print_handshakes(handshakes)
    print()
    checks = {**keep_alive_checks, **handshake_checks}
    print_checks(checks)
    print(
        f"  mesh.tls_contexts.built: {built_after_keep_alive} after the keep-alive phase, "
        f"{built} after the handshake phase (plain mesh: {setup.plain_mesh.tls_contexts.built})"
    )
    wire = keep_alive_checks["wire"]
    assert isinstance(wire, dict)
    outcome = verdicts(keep_alive, handshake, handshakes, built, wire)
    print()
    for key, value in outcome.items():
        print(f"{key:34} {value}")
    return {
        "server": server,
        "identities": {"server": SERVER_ID, "client": CLIENT_ID, "keys": "ECDSA P-256"},
        "istio_alpn_offered": list(ISTIO_ALPN),
        "keep_alive": phase_record(keep_alive),
        "new_connection": phase_record(handshake),
        "handshake": {name: handshake_record(rounds) for name, rounds in handshakes.items()},
        "checks": checks,
        "tls_contexts_built": {
            "after_keep_alive": built_after_keep_alive,
            "after_handshake": built,
        },
        "targets": outcome,
    }


def parse(argv: Sequence[str] | None) -> Settings:
    """Command-line options → :class:`Settings`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mtls", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for a smoke run")
    parser.add_argument("--rounds", type=int, help="alternating rounds per client (10)")
    parser.add_argument("--seconds", type=float, help="seconds per client per keep-alive round")
    parser.add_argument(
        "--server",
        choices=("auto", "nginx", "python"),
        default="auto",
        help="nginx, the Python ssl server, or nginx when installed (default)",
    )
    args = parser.parse_args(argv)
    base = QUICK if args.quick else Settings()
    return replace(
        base,
        rounds=args.rounds or base.rounds,
        seconds=args.seconds or base.seconds,
        server=args.server,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, print the tables, the checks and the targets, save ``results/mtls.json``."""
    settings = parse(argv)
    if settings.server == "nginx" and nginx_path() is None:
        raise SystemExit("nginx is not installed (choose --server python, or auto)")
    if settings.server == "auto" and nginx_path() is None:
        print(
            "note: nginx is not installed: measuring against the Python ssl server instead "
            "(client CPU compares with nginx runs, latency and req/s do not)"
        )
    started = time.perf_counter()
    results = measure(settings)
    record: dict[str, object] = {
        "settings": {
            "rounds": settings.rounds,
            "seconds_per_round": settings.seconds,
            "handshake_seconds_per_round": settings.handshake_seconds,
            "warmup_seconds": settings.warmup,
        },
        "cpus": os.cpu_count(),
        **results,
        "elapsed_seconds": round(time.perf_counter() - started, 1),
    }
    print(f"saved to {save('mtls', record)}")


if __name__ == "__main__":
    main()
