"""Istio's request-timeouts task, in its two-hop shape, on loopback, through every shell.

The client calls ``reviews`` (v2, route timeout 0.5 s); the reviews server itself calls
``ratings`` through its own mesh, whose VirtualService delays those calls by 2 s. As in
the task, the client gets 504 ``upstream request timeout`` after about 0.5 s, and the
request is not retried (Istio's default retry policy does not retry timeouts).

The reviews server's 2 s delay runs on a clock whose sleeps end early when the test is
over, so no thread outlives the test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from meshlib import Mesh
from meshlib._clock import SystemClock
from tests.conftest import SAMPLES
from tests.servers import Answer, LocalServer, Seen, serving
from tests.transports.shells import Sent, Shell
from tests.transports.test_bookinfo import BOOKINFO

TASK = SAMPLES / "istio-io-tasks"


class StoppableClock(SystemClock):
    """Real time, but a sleep ends early once :meth:`stop` is called."""

    def __init__(self) -> None:
        self._stopped = threading.Event()

    def sleep(self, seconds: float) -> None:
        self._stopped.wait(seconds)

    def stop(self) -> None:
        self._stopped.set()


def entries(reviews: LocalServer, ratings: LocalServer) -> str:
    """ServiceEntries for reviews v2 and ratings v1 at the local servers."""

    def entry(service: str, version: str, port: int) -> str:
        return (
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
            f"metadata: {{name: {service}}}\n"
            f"spec:\n  hosts: [{service}.default.svc.cluster.local]\n"
            "  location: MESH_INTERNAL\n  resolution: STATIC\n"
            "  ports: [{number: 9080, name: http, protocol: HTTP}]\n"
            f"  endpoints:\n  - address: 127.0.0.1\n    ports: {{http: {port}}}\n"
            f"    labels: {{app: {service}, version: {version}}}\n"
        )

    return entry("reviews", "v2", reviews.port) + "---\n" + entry("ratings", "v1", ratings.port)


def mesh_of(*texts: str, **options: object) -> Mesh:
    rules = (BOOKINFO / "destination-rule-all.yaml").read_text()
    return Mesh.from_yaml("\n---\n".join([rules, *texts]), seed=7, **options)  # type: ignore[arg-type]


@pytest.fixture
def two_hops() -> Iterator[tuple[Mesh, LocalServer]]:
    """The client's mesh, and the reviews server (which calls ratings via its own mesh)."""
    clock = StoppableClock()
    ratings = LocalServer("ratings-v1")
    reviews_mesh: list[Mesh] = []

    def reviews_behaviour(seen: Seen) -> Answer:
        with httpx.Client(transport=reviews_mesh[0].transport()) as client:
            rating = client.get("http://ratings:9080/ratings/0")
        return Answer(rating.status_code, rating.content)

    reviews = LocalServer("reviews-v2", reviews_behaviour)
    with serving(ratings, reviews):
        service_entries = entries(reviews, ratings)
        reviews_mesh.append(
            mesh_of(
                service_entries,
                (TASK / "request-timeouts-2-ratings-delay-2s.yaml").read_text(),
                clock=clock,
            )
        )
        client_mesh = mesh_of(
            service_entries, (TASK / "request-timeouts-3-reviews-v2-timeout-0.5s.yaml").read_text()
        )
        try:
            yield client_mesh, reviews
        finally:
            clock.stop()


def test_the_client_times_out_after_half_a_second_not_retried(
    shell: Shell, two_hops: tuple[Mesh, LocalServer]
) -> None:
    """504 UT ``upstream request timeout`` at about 0.5 s, one attempt, although ratings
    is delayed 2 s behind reviews."""
    client_mesh, reviews = two_hops
    started = time.monotonic()
    (got,) = shell.send(client_mesh, [Sent("http://reviews:9080/reviews/0")])
    elapsed = time.monotonic() - started
    assert (got.status, got.text) == (504, "upstream request timeout")
    assert got.info is not None
    assert (got.info.flags, got.info.attempts) == (("UT",), 1)
    assert 0.45 <= elapsed < 1.5
    assert len(reviews.seen) == 1
    assert reviews.seen[0].headers["x-envoy-expected-rq-timeout-ms"] == "500"


def test_without_the_timeout_the_delay_is_felt(two_hops: tuple[Mesh, LocalServer]) -> None:
    """Control: with only the delay (task step 2), the reviews server's own call to
    ratings carries the fault flag DI and succeeds (checked on its mesh directly, in
    virtual time, so that nothing waits 2 s)."""
    from meshlib.testing import Backends, VirtualClock

    mesh = mesh_of(
        (TASK / "request-timeouts-2-ratings-delay-2s.yaml").read_text(), clock=VirtualClock()
    )
    backends = Backends(mesh)
    backends.mount("ratings", lambda request: httpx.Response(200), labels={"version": "v1"})
    response = httpx.Client(transport=backends.transport()).get("http://ratings:9080/ratings/0")
    assert response.status_code == 200
    assert response.extensions["meshlib"].flags == ("DI",)
    assert response.extensions["meshlib"].elapsed == 2.0
