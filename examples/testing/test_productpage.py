"""Unit tests of the product page with meshlib's test kit: no servers, no real waiting.

Run them with ``pytest examples/testing``. The ``mesh`` fixture reads ``mesh/`` (the
``meshlib`` marker), runs on virtual time with a fixed seed, and ``mesh_backends`` plays
reviews and ratings in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from productpage import product_page

from meshlib import Mesh
from meshlib.testing import Backends

pytestmark = pytest.mark.meshlib("mesh")


def reviews(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"reviews": ["An extremely entertaining play."]})


def ratings(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"stars": 5})


@pytest.fixture
def client(mesh_backends: Backends) -> Iterator[httpx.Client]:
    mesh_backends.mount("reviews", reviews)
    mesh_backends.mount("ratings", ratings)
    with httpx.Client(transport=mesh_backends.transport()) as client:
        yield client


def test_the_page_shows_reviews_and_stars(client: httpx.Client) -> None:
    assert product_page(client, 0) == {
        "product": 0,
        "reviews": ["An extremely entertaining play."],
        "stars": 5,
    }


@pytest.mark.fault("ratings", delay=7)
def test_slow_ratings_make_a_slow_page_not_a_broken_one(client: httpx.Client, mesh: Mesh) -> None:
    """A 7 s delay (Istio's fault filter) is waited in virtual time: the test takes no
    time, the mesh's clock says 7 s, and the route timeout, which starts after the
    delay, does not fire."""
    assert product_page(client, 0)["stars"] == 5
    assert mesh.clock.now() == 7.0


@pytest.mark.fault("ratings", abort=503)
def test_ratings_down_degrades_the_page(client: httpx.Client, mesh_backends: Backends) -> None:
    """An abort answers for ratings, which never sees the request; the page still shows
    the reviews."""
    page = product_page(client, 0)
    assert page["reviews"] == ["An extremely entertaining play."]
    assert page["note"] == "ratings unavailable (503)"
    mesh_backends.assert_called("ratings", times=0)


def test_a_flaky_ratings_is_retried(mesh_backends: Backends) -> None:
    """The ratings route retries 5xx: one 503, then a 200, and the page is complete."""
    answers = iter([httpx.Response(503), httpx.Response(200, json={"stars": 4})])
    mesh_backends.mount("reviews", reviews)
    mesh_backends.mount("ratings", lambda _request: next(answers))
    with httpx.Client(transport=mesh_backends.transport()) as client:
        assert product_page(client, 0)["stars"] == 4
    mesh_backends.assert_called("ratings", times=2, statuses=[503, 200])


def test_a_slow_ratings_times_out_per_try(mesh: Mesh, mesh_backends: Backends) -> None:
    """ratings answering in 3 s against a 0.4 s per-try timeout, retried on 5xx: two
    attempts time out after 0.4 s each, the third is cut by the 1 s route timeout, and
    the page gets 504, all in virtual time."""
    mesh_backends.mount("reviews", reviews)
    mesh_backends.mount("ratings", ratings, latency=3.0)
    with httpx.Client(transport=mesh_backends.transport()) as client:
        page = product_page(client, 0)
    assert page["note"] == "ratings unavailable (504)"
    calls = mesh_backends.assert_called("ratings", times=3, statuses=[None, None, None])
    assert all(isinstance(call.error, httpx.ReadTimeout) for call in calls)
    assert mesh.clock.now() == 1.0
