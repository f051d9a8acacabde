"""The routing steps: every request to v1, the 80/20 canary, jason to v2."""

from __future__ import annotations

import sys
from collections import Counter

from meshlib._demo._story import REVIEWS, Stage, bar, sample, step, version

__all__ = ["all_to_v1", "canary", "jason"]


def all_to_v1(stage: Stage) -> None:
    step("All traffic to v1", "kubectl apply -f virtual-service-all-v1.yaml")
    stage.apply(sample("virtual-service-all-v1.yaml"))
    counts = Counter(version(stage.client.get(REVIEWS)) for _ in range(30))
    print(f"   30 requests: {bar(counts, 30)}")


def canary(stage: Stage) -> None:
    step("Canary: 80% v1, 20% v2", "kubectl apply -f virtual-service-reviews-80-20.yaml")
    stage.apply(sample("virtual-service-reviews-80-20.yaml"))
    counts: Counter[str] = Counter()
    for sent in range(1, 501):
        counts[version(stage.client.get(REVIEWS))] += 1
        if sent % 50 == 0:
            print(
                f"   {sent:3d} requests: {bar(counts, sent)}",
                end="\r" if sys.stdout.isatty() else "\n",
            )
    if sys.stdout.isatty():
        print()
    info = stage.client.get(REVIEWS).extensions["meshlib"]
    print(f"   last request: route {info.route}, cluster {info.cluster}, endpoint {info.endpoint}")


def jason(stage: Stage) -> None:
    step(
        "Header routing: end-user jason to v2",
        "kubectl apply -f virtual-service-reviews-test-v2.yaml",
    )
    stage.apply(sample("virtual-service-reviews-test-v2.yaml"))
    for user in ("jason", "alice", None):
        headers = {"end-user": user} if user else {}
        versions = Counter(version(stage.client.get(REVIEWS, headers=headers)) for _ in range(10))
        print(f"   {user or '(no user)':10} -> {dict(versions)}")
