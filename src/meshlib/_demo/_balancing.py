"""The load-balancing steps: session affinity, and least request around a slow endpoint."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from meshlib._demo._story import REVIEWS, VERSIONS, Stage, bar, step, version

__all__ = ["affinity", "least_request"]

AFFINITY = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: end-user}}
"""

LEAST_REQUEST = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
"""


def _without_reviews_rules(stage: Stage) -> str:
    """The base YAML minus Bookinfo's reviews DestinationRule (the step brings its own)."""
    documents = stage.base.split("\n---\n")
    return "\n---\n".join(
        d for d in documents if "name: reviews\n" not in d or "ServiceEntry" in d
    )


def affinity(stage: Stage) -> None:
    step(
        "Session affinity: consistent hash on the end-user header",
        "loadBalancer: {consistentHash: {httpHeaderName: end-user}}",
    )
    stage.mesh.apply(_without_reviews_rules(stage) + "\n---\n" + AFFINITY)
    for user in ("jason", "alice", "bob", "carol"):
        versions = Counter(
            version(stage.client.get(REVIEWS, headers={"end-user": user})) for _ in range(10)
        )
        print(f"   {user:6} -> {dict(versions)}")


def least_request(stage: Stage) -> None:
    step(
        "Least request: v2 answers 20x slower, and gets fewer requests",
        "loadBalancer: {simple: LEAST_REQUEST}",
    )
    stage.mesh.apply(_without_reviews_rules(stage) + "\n---\n" + LEAST_REQUEST)
    slow = stage.servers["v2"]
    slow.delay = 0.05
    try:
        with ThreadPoolExecutor(6) as pool:
            answered = list(pool.map(lambda _: version(stage.client.get(REVIEWS)), range(120)))
    finally:
        slow.delay = 0.0
    counts = Counter(answered)
    print(f"   120 requests, 6 at a time: {bar(counts, 120, VERSIONS)}")
