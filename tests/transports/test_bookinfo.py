"""Istio's Bookinfo samples against real servers on loopback, through every shell.

One server per reviews version (and one for ratings), declared by a ServiceEntry with
labelled endpoints; the VirtualServices and DestinationRules are Istio's own files. The
split scenarios send 2,000 requests and check each version's share within a binomial
bound; with a fixed seed every shell sends exactly the same sequence.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator

import pytest

from meshlib import Mesh
from tests.conftest import SAMPLES
from tests.servers import LocalServer, serving
from tests.transports.shells import Sent, Shell

BOOKINFO = SAMPLES / "bookinfo-networking"
VERSIONS = ("v1", "v2", "v3")


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LocalServer]]:
    """reviews v1, v2, v3 and ratings v1, each its own server on 127.0.0.1."""
    named = {f"reviews-{v}": LocalServer(f"reviews-{v}") for v in VERSIONS}
    named["ratings-v1"] = LocalServer("ratings-v1")
    with serving(*named.values()):
        yield named


def service_entries(servers: dict[str, LocalServer]) -> str:
    """ServiceEntries declaring the Bookinfo services with the local servers as endpoints."""

    def entry(service: str, versions: tuple[str, ...]) -> str:
        endpoints = "".join(
            f"  - address: 127.0.0.1\n    ports: {{http: {servers[f'{service}-{v}'].port}}}\n"
            f"    labels: {{app: {service}, version: {v}}}\n"
            for v in versions
        )
        return (
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
            f"metadata: {{name: {service}}}\n"
            f"spec:\n  hosts: [{service}.default.svc.cluster.local]\n"
            "  location: MESH_INTERNAL\n  resolution: STATIC\n"
            "  ports: [{number: 9080, name: http, protocol: HTTP}]\n"
            f"  endpoints:\n{endpoints}"
        )

    return entry("reviews", VERSIONS) + "---\n" + entry("ratings", ("v1",))


def bookinfo_mesh(servers: dict[str, LocalServer], *files: str) -> Mesh:
    texts = [(BOOKINFO / "destination-rule-all.yaml").read_text(), service_entries(servers)]
    texts += [(BOOKINFO / name).read_text() for name in files]
    return Mesh.from_yaml("\n---\n".join(texts), seed=2024)


def versions_served(results: list) -> Counter[str]:  # type: ignore[type-arg]
    return Counter(json.loads(r.body)["server"].split("-")[1] for r in results)


def within_binomial_bound(count: int, n: int, p: float) -> bool:
    """|count - np| <= 4.5 standard deviations: a false alarm under 1e-5."""
    return abs(count - n * p) <= 4.5 * math.sqrt(n * p * (1 - p))


def test_all_v1_sends_everything_to_v1(shell: Shell, servers: dict[str, LocalServer]) -> None:
    """virtual-service-all-v1: every request to reviews (and ratings) reaches v1."""
    mesh = bookinfo_mesh(servers, "virtual-service-all-v1.yaml")
    results = shell.send(
        mesh,
        [Sent("http://reviews:9080/reviews/0")] * 50
        + [Sent("http://ratings:9080/ratings/0")] * 10,
    )
    assert versions_served(results[:50]) == Counter({"v1": 50})
    assert all(json.loads(r.body)["server"] == "ratings-v1" for r in results[50:])
    info = results[0].info
    assert info is not None
    assert (info.subset, info.virtual_service, info.attempts, info.flags) == (
        "v1",
        "default/reviews",
        1,
        (),
    )


@pytest.mark.parametrize(
    ("file", "shares"),
    [
        ("virtual-service-reviews-80-20.yaml", {"v1": 0.8, "v2": 0.2}),
        ("virtual-service-reviews-90-10.yaml", {"v1": 0.9, "v2": 0.1}),
        ("virtual-service-reviews-v2-v3.yaml", {"v2": 0.5, "v3": 0.5}),
    ],
)
def test_weighted_splits_converge(
    shell: Shell, servers: dict[str, LocalServer], file: str, shares: dict[str, float]
) -> None:
    """2,000 requests split by the VirtualService's weights, within a binomial bound."""
    n = 2000
    served = versions_served(
        shell.send(bookinfo_mesh(servers, file), [Sent("http://reviews:9080/reviews/0")] * n)
    )
    assert set(served) == set(shares)
    for version, share in shares.items():
        assert within_binomial_bound(served[version], n, share), served


@pytest.mark.parametrize(
    ("file", "jason", "others"),
    [
        ("virtual-service-reviews-test-v2.yaml", "v2", "v1"),
        ("virtual-service-reviews-jason-v2-v3.yaml", "v2", "v3"),
    ],
)
def test_end_user_jason_routing(
    shell: Shell, servers: dict[str, LocalServer], file: str, jason: str, others: str
) -> None:
    """``end-user: jason`` goes to one version, everyone else to another."""
    mesh = bookinfo_mesh(servers, file)
    requests = [Sent("http://reviews:9080/reviews/0", headers={"end-user": "jason"})] * 20
    requests += [Sent("http://reviews:9080/reviews/0", headers={"end-user": "alice"})] * 20
    requests += [Sent("http://reviews:9080/reviews/0")] * 20
    served = [json.loads(r.body)["server"] for r in shell.send(mesh, requests)]
    assert set(served[:20]) == {f"reviews-{jason}"}
    assert set(served[20:]) == {f"reviews-{others}"}


def test_the_wire_sees_the_service_authority(
    shell: Shell, servers: dict[str, LocalServer]
) -> None:
    """The endpoint receives Host ``reviews:9080`` and ``x-envoy-attempt-count: 1``."""
    mesh = bookinfo_mesh(servers, "virtual-service-reviews-v3.yaml")
    (result,) = shell.send(mesh, [Sent("http://reviews:9080/reviews/0?x=1")])
    seen = json.loads(result.body)
    assert seen["server"] == "reviews-v3"
    assert seen["path"] == "/reviews/0?x=1"
    assert seen["headers"]["host"] == "reviews:9080"
    assert seen["headers"]["x-envoy-attempt-count"] == "1"


def test_shells_make_identical_decisions(servers: dict[str, LocalServer]) -> None:
    """With one seed, the sync shell and both async shells pick the same sequence."""
    from tests.transports.shells import SHELLS

    sequences = []
    for shell in SHELLS:
        mesh = bookinfo_mesh(servers, "virtual-service-reviews-80-20.yaml")
        results = shell.send(mesh, [Sent("http://reviews:9080/")] * 100)
        sequences.append([r.info.subset for r in results if r.info])
    assert sequences[0] == sequences[1] == sequences[2]
