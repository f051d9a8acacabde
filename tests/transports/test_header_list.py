"""Headers read and rebuilt from httpx's raw list agree with httpx's public API."""

from __future__ import annotations

import httpx
import pytest

from meshlib._core._headers import HeaderEdits
from meshlib._transports import _header_list
from meshlib._transports._header_list import ResponseHeaders, edited, read_headers

HEADERS = [
    ("Host", "reviews"),
    ("X-Trace", "a"),
    ("Accept", "*/*"),
    ("x-trace", "b"),
    ("X-Drop", "gone"),
]
EDITS = HeaderEdits(
    set=(("X-Trace", "set"), ("x-new", "1")),
    add=(("accept", "text/plain"),),
    remove=("x-drop",),
)


@pytest.fixture(params=["raw list", "public api"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each case runs on httpx's private list and on the public fallback."""
    if request.param == "public api":
        monkeypatch.setattr(_header_list, "_triples", lambda headers: None)
    return str(request.param)


def test_edited_applies_remove_set_add_and_host(path: str) -> None:
    """A set header keeps its first line's place and loses its later lines; removed
    headers go; added lines come last; Host is replaced in place."""
    result = edited(httpx.Headers(HEADERS), EDITS, host="reviews.default:9080")
    items = [(k.lower(), v) for k, v in result.multi_items()]
    assert sorted(items) == sorted(
        [
            ("host", "reviews.default:9080"),
            ("x-trace", "set"),
            ("accept", "*/*"),
            ("x-new", "1"),
            ("accept", "text/plain"),
        ]
    )
    assert result.get_list("accept") == ["*/*", "text/plain"]
    if path == "raw list":
        assert [k for k, _ in items] == ["host", "x-trace", "accept", "x-new", "accept"]


def test_edited_leaves_the_original_alone(path: str) -> None:
    """The caller's headers are not touched (a retry starts from them again)."""
    original = httpx.Headers(HEADERS)
    edited(original, EDITS, host="elsewhere")
    assert original.multi_items() == httpx.Headers(HEADERS).multi_items()


def test_edited_result_behaves_as_headers(path: str) -> None:
    """The copy is a working httpx.Headers: lookups, assignment, raw bytes."""
    result = edited(httpx.Headers(HEADERS), HeaderEdits(), host="h")
    result["x-more"] = "v"
    assert result["X-TRACE"] == "a, b"
    assert (b"x-more", b"v") in result.raw
    assert result["host"] == "h"


def test_read_and_view_match_httpx(path: str) -> None:
    """Lines as ``multi_items`` gives them; the response view's values as
    ``Headers.get`` gives them, any case, repeated lines joined."""
    headers = httpx.Headers(HEADERS)
    assert list(read_headers(headers)) == headers.multi_items()
    view = ResponseHeaders(headers)
    assert dict(view) == {name: headers[name] for name in headers}
    assert view.get("X-TRACE") == "a, b"
    assert "accept" in view
    assert "missing" not in view
    assert view.get("missing") is None
    assert len(view) == 4
