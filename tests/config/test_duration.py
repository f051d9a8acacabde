"""Go ``time.ParseDuration`` syntax, as Istio reads every Duration field."""

from __future__ import annotations

import pytest

from meshlib.config import Duration, parse_duration


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("0", 0),
        ("5s", 5_000_000_000),
        ("0.5s", 500_000_000),
        (".5s", 500_000_000),
        ("5.s", 5_000_000_000),
        ("250ms", 250_000_000),
        ("1h30m", 5_400_000_000_000),
        ("1m0.5s", 60_500_000_000),
        ("1.5ms", 1_500_000),
        ("1us", 1_000),
        ("1µs", 1_000),
        ("1μs", 1_000),
        ("100ns", 100),
        ("-1s", -1_000_000_000),
        ("+2m", 120_000_000_000),
        ("24h", 86_400_000_000_000),
    ],
)
def test_parses_go_durations(text: str, nanos: int) -> None:
    """Every form Go accepts gives the exact number of nanoseconds."""
    assert parse_duration(text) == Duration(nanos)


@pytest.mark.parametrize("text", ["", "5", "s", "1.5", ".s", "1S", "1sec", "1 s", "1d", "--1s"])
def test_rejects_what_go_rejects(text: str) -> None:
    """Missing units, unknown units, spaces and bare numbers are errors, as in Go."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_rejects_overflow() -> None:
    """Go durations are int64 nanoseconds; larger values are rejected, not wrapped."""
    with pytest.raises(ValueError, match="too large"):
        parse_duration("3000000h")


@pytest.mark.parametrize(("nanos", "text"), [(5_000_000_000, "5s"), (250_000_000, "250ms")])
def test_renders_canonical_text(nanos: int, text: str) -> None:
    """``str()`` gives back a short Go-style spelling."""
    assert str(Duration(nanos)) == text
    assert Duration(nanos).seconds == nanos / 1e9
