"""Host names as Istio treats them (``pkg/config/host``, ``ResolveShortnameToFQDN``)."""

from __future__ import annotations

import pytest

from meshlib._hostnames import expand, matches, more_specific, subset_of


@pytest.mark.parametrize(
    ("host", "namespace", "expected"),
    [
        ("reviews", "default", "reviews.default.svc.cluster.local"),
        ("Reviews", "shop", "reviews.shop.svc.cluster.local"),
        ("reviews.default", "shop", "reviews.default"),
        ("reviews.default.svc.cluster.local", "shop", "reviews.default.svc.cluster.local"),
        ("*", "shop", "*"),
        ("*.example.com", "shop", "*.example.com"),
        ("10.0.0.1", "shop", "10.0.0.1"),
        ("::1", "shop", "::1"),
        ("api.example.com", "shop", "api.example.com"),
    ],
)
def test_only_dotless_names_are_expanded(host: str, namespace: str, expected: str) -> None:
    """Short names take the resource's namespace; names with a dot, ``*`` and IPs do not."""
    assert expand(host, namespace) == expected


def test_domain_suffix_is_configurable() -> None:
    """The cluster domain is a setting, ``cluster.local`` by default."""
    assert expand("a", "b", "corp.example") == "a.b.svc.corp.example"


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*example.com", "example.com", True),
        ("*example.com", "myexample.com", True),
        ("*", "anything.at.all", True),
        ("a.example.com", "a.example.com", True),
        ("a.example.com", "b.example.com", False),
        ("*.com", "*.example.com", True),
        ("*.example.com", "*.com", True),
    ],
)
def test_matches(pattern: str, host: str, expected: bool) -> None:
    """``Matches``: either side may be a wildcard; ``*.x`` does not match ``x`` itself."""
    assert matches(pattern, host) is expected


@pytest.mark.parametrize(
    ("host", "pattern", "expected"),
    [
        ("a.example.com", "*.example.com", True),
        ("*.a.example.com", "*.example.com", True),
        ("*.example.com", "*.a.example.com", False),
        ("*.example.com", "a.example.com", False),
        ("a.example.com", "a.example.com", True),
    ],
)
def test_subset_of(host: str, pattern: str, expected: bool) -> None:
    """``SubsetOf``: every name ``host`` covers is covered by ``pattern``."""
    assert subset_of(host, pattern) is expected


def test_exact_beats_wildcard_and_longer_wildcard_beats_shorter() -> None:
    """The order used to pick the most specific VirtualService or DestinationRule host."""
    assert more_specific("a.example.com", "*.example.com")
    assert more_specific("*.a.example.com", "*.example.com")
    assert not more_specific("*", "*.example.com")
