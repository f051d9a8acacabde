"""Label selection, as ``labels.Instance.SubsetOf`` in Istio."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["selects"]


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Does ``selector`` select ``labels``: is every selector label carried, same value?

    An empty selector selects everything (a subset without labels has every endpoint).
    """
    return all(labels.get(key) == value for key, value in selector.items())
