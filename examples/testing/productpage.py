"""A small application: a product page built from two services, reviews and ratings.

It degrades as Bookinfo's product page does: without ratings the page still shows the
reviews, with a note instead of the stars.
"""

from __future__ import annotations

from typing import Any

import httpx


def product_page(client: httpx.Client, product: int) -> dict[str, Any]:
    """The page for ``product``: its reviews, and its rating when ratings answers."""
    reviews = client.get(f"http://reviews:9080/reviews/{product}")
    reviews.raise_for_status()
    page: dict[str, Any] = {"product": product, "reviews": reviews.json()["reviews"]}
    ratings = client.get(f"http://ratings:9080/ratings/{product}")
    if ratings.status_code == 200:
        page["stars"] = ratings.json()["stars"]
    else:
        page["stars"] = None
        page["note"] = f"ratings unavailable ({ratings.status_code})"
    return page
