"""Telemetry on the request path: what meshlib's hooks cost, without and with an SDK.

Hooks, API only (no SDK installed: what every user without OpenTelemetry pays): the
hooks one request passes through, timed on their own in batches against a prepared
call and a canned response: :meth:`Telemetry.observe` (in ``Mesh.start_call``: both
providers looked up, no observer made), :func:`send_attempt` around the inner send (less
the send itself), :func:`answered`, and the observer check of ``Mesh.finish_call``.
Beside them, the engine's ``x-request-id`` (a UUID4 drawn from the mesh's generator),
which every request pays whatever the telemetry. Target: hooks ≤ ``TARGET_API_ONLY_US``.

Transport level: ``httpx.Client`` with the sync transport over
:class:`benchmarks.http.CannedTransport` (a canned ``200``, no I/O), one service on the
default route, in alternating rounds (see :mod:`benchmarks._stats`):

* ``API only``: no SDK anywhere;
* ``SDK lean``: explicit SDK providers: a ``TracerProvider`` whose
  ``BatchSpanProcessor`` hands spans to an exporter that drops them, a ``MeterProvider``
  whose reader never collects (what recording costs, not exporting); lean labels;
* ``SDK traces only`` and ``SDK metrics only (lean)``: one of the two providers each;
* ``SDK full``: the same with ``metric_labels="full"``;
* ``SDK lean + access log``: with the access log on, its logger at INFO with a handler
  that drops the records (formatting the line, not writing it).

Reported: CPU µs per request, and what each adds to ``API only`` (paired in rounds).
performance.md §3.3 puts one SDK span at about 22-30 µs with a BatchSpanProcessor; a
call makes two (INTERNAL and CLIENT) and records four metrics.

Run: ``python -m benchmarks.telemetry`` (about 40 s; ``--quick``: a few seconds).
"""

from __future__ import annotations

import argparse
import gc
import logging
import random
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from itertools import repeat

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import meshlib
from benchmarks._report import save
from benchmarks._stats import METRICS, Round, paired_difference, summarize
from benchmarks.http import CannedTransport, Settings, alternate, time_client
from meshlib._core._actions import Send
from meshlib._core._request_id import new_request_id
from meshlib._telemetry import answered, send_attempt
from meshlib._transports._common import Upstream, request_head

__all__ = ["main"]

TARGET_API_ONLY_US = 5.0  # hooks per request with no SDK, at most
URL = "http://svc/items"
SEED = 1
ROUNDS, QUICK_ROUNDS = 15, 5
BATCH = 20_000  # hook calls per timed batch
QUICK_BATCH = 5_000
TRANSPORT = Settings(rounds=10, seconds=0.5, warmup=0.2, haproxy=False)
QUICK_TRANSPORT = Settings(rounds=3, seconds=0.1, warmup=0.05, haproxy=False)


class DroppingExporter(SpanExporter):
    """A span exporter that drops every span."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # noqa: ARG002
        """Accept ``spans`` and do nothing with them."""
        return SpanExportResult.SUCCESS


def build_mesh(**options: object) -> meshlib.Mesh:
    """Service ``svc`` with three endpoints on the default route."""
    mesh = meshlib.Mesh(seed=SEED, **options)  # type: ignore[arg-type]
    mesh.set_endpoints("svc", [meshlib.Endpoint(f"10.0.0.{n}", port=8080) for n in (1, 2, 3)])
    return mesh


def sdk_options(labels: str) -> dict[str, object]:
    """Explicit SDK providers that record everything and export nothing."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return {
        "tracer_provider": tracer_provider,
        "meter_provider": meter_provider,
        "metric_labels": labels,
    }


# ----------------------------------------------------------------------- the hooks


def time_batch(step: Callable[[], object], count: int) -> float:
    """µs per call of ``step`` over ``count`` calls, the GC off."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in repeat(None, count):
            step()
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return elapsed / count / 1e3


def hook_steps() -> dict[str, Callable[[], object]]:
    """The steps timed: the hooks of one request with no SDK, the bare send they wrap,
    and the engine's request id."""
    mesh = build_mesh()
    request = httpx.Request("GET", URL)
    call = mesh.start_call(request_head(request))
    with mesh.lock:
        action = call.start()
    if not isinstance(action, Send) or call.observer is not None:
        raise RuntimeError("expected an attempt, and no observer without an SDK")
    attempt = action.attempt
    response = httpx.Response(200)
    telemetry = mesh.telemetry

    def send(_: httpx.Request) -> httpx.Response:
        return response

    def hooks() -> None:
        call.observer = telemetry.observe(call)
        send_attempt(call, attempt, send, request)
        answered(call, response)
        if call.observer is not None:  # finish_call's check
            raise RuntimeError("observed")

    rng = random.Random(SEED)
    return {
        "hooks": hooks,
        "send alone": partial(send, request),
        "x-request-id": partial(new_request_id, rng),
    }


def measure_hooks(rounds: int, batch: int) -> dict[str, float]:
    """Median µs per call of each step, in alternating rounds; the hooks less the send."""
    steps = hook_steps()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for number in range(rounds):
        for name in names if number % 2 == 0 else names[::-1]:
            samples[name].append(time_batch(steps[name], batch))
    hooks = statistics.median(
        h - s for h, s in zip(samples["hooks"], samples["send alone"], strict=True)
    )
    return {
        "hooks_api_only_us": round(hooks, 3),
        "x_request_id_us": round(statistics.median(samples["x-request-id"]), 3),
    }


# ----------------------------------------------------------------------- transport


def canned(_: Upstream) -> httpx.BaseTransport:
    """The inner transport of every endpoint: a canned ``200``, no I/O."""
    return CannedTransport()


def measure_transport(settings: Settings) -> dict[str, list[Round]]:
    """The four clients in alternating rounds."""
    access = logging.getLogger("meshlib.access")
    access.addHandler(logging.NullHandler())
    access.setLevel(logging.INFO)
    access.propagate = False
    lean = sdk_options("lean")
    meshes = {
        "API only": build_mesh(),
        "SDK traces only": build_mesh(tracer_provider=lean["tracer_provider"]),
        "SDK metrics only (lean)": build_mesh(meter_provider=lean["meter_provider"]),
        "SDK lean": build_mesh(**sdk_options("lean")),
        "SDK full": build_mesh(**sdk_options("full")),
        "SDK lean + access log": build_mesh(access_log=True, **sdk_options("lean")),
    }
    clients = {
        name: httpx.Client(transport=mesh.transport(canned)) for name, mesh in meshes.items()
    }
    try:
        for client in clients.values():
            response = client.get(URL)
            if response.status_code != 200:
                raise RuntimeError(f"unexpected {response!r}")
        runners = {name: partial(time_client, client, URL) for name, client in clients.items()}
        return alternate(runners, settings)
    finally:
        for client in clients.values():
            client.close()


def transport_record(phase: dict[str, list[Round]]) -> dict[str, object]:
    """Per client: req/s and CPU µs per request; µs added over API only, paired."""
    record: dict[str, object] = {
        name: summarize(rounds).as_dict() for name, rounds in phase.items()
    }
    baseline = phase["API only"]
    for name, rounds in phase.items():
        if name != "API only":
            record[f"{name} added_cpu_us"] = round(
                paired_difference(rounds, baseline, METRICS["cpu"]), 1
            )
    return record


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    """Measure the hooks and the transport, print, save ``results/telemetry.json``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.telemetry", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for a smoke run")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rounds = QUICK_ROUNDS if args.quick else ROUNDS
    hooks = measure_hooks(rounds, QUICK_BATCH if args.quick else BATCH)
    api_only = hooks["hooks_api_only_us"]
    met = api_only <= TARGET_API_ONLY_US
    print(
        f"hooks per request, API only: {api_only:.2f} µs (target ≤ {TARGET_API_ONLY_US:.0f} µs):"
        f" {'met' if met else 'MISSED'}; the engine's x-request-id:"
        f" {hooks['x_request_id_us']:.2f} µs"
    )
    settings = QUICK_TRANSPORT if args.quick else TRANSPORT
    phase = measure_transport(settings)
    transport = transport_record(phase)
    print(f"\nsync transport, canned 200: {'req/s':>9} {'CPU µs/req':>11} {'added µs':>9}")
    for name, rounds_of in phase.items():
        summary = summarize(rounds_of)
        added = transport.get(f"{name} added_cpu_us", 0.0)
        print(f"  {name:26} {summary.rps:>9.0f} {summary.cpu_us:>11.1f} {added:>9}")
    record = {
        "hooks": hooks,
        "transport": transport,
        "targets": {"api_only_us": TARGET_API_ONLY_US, "api_only_met": met},
        "settings": {
            "hook_rounds": rounds,
            "transport_rounds": settings.rounds,
            "transport_seconds_per_round": settings.seconds,
        },
        "elapsed_seconds": round(time.perf_counter() - started, 1),
    }
    print(f"saved to {save('telemetry', record)}")


if __name__ == "__main__":
    main()
