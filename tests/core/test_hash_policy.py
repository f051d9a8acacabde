"""The request hash for each consistentHash key, and the cookie Envoy generates.

Pinned expectations come from Envoy's tests, named in each test's comment:
``test/common/common/hash_test.cc`` (xxHash64 values), ``test/common/http/hash_policy_test.cc``
(one test per hash method), ``test/common/http/utility_test.cc`` (cookie parsing and the
``Set-Cookie`` format) and the ring/Maglev ``*LbWithHashPolicy`` tests (generated cookie).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xxhash import xxh64_intdigest

from meshlib._core._hash_policy import (
    HashResult,
    address_text,
    chained_xxh64,
    cookie_value,
    generated_cookie_value,
    hash_table,
    header_hash,
    query_parameters,
    request_hash,
    set_cookie_value,
)
from meshlib._core._hashring import Maglev, RingHash
from meshlib.config._destination_rule import (
    ConsistentHashLB,
    HTTPCookie,
    HTTPCookieAttribute,
    MagLev,
)
from meshlib.config._destination_rule import RingHash as RingHashSettings
from meshlib.config._values import Duration


def xxh64(text: str) -> int:
    return xxh64_intdigest(text.encode())


def cookie_policy(
    name: str = "test-cookie",
    ttl_seconds: float | None = None,
    path: str = "",
    attributes: tuple[HTTPCookieAttribute, ...] = (),
) -> ConsistentHashLB:
    ttl = None if ttl_seconds is None else Duration.from_seconds(ttl_seconds)
    return ConsistentHashLB(
        http_cookie=HTTPCookie(name=name, path=path, ttl=ttl, attributes=attributes)
    )


CLIENT = "10.1.2.3:43210"
SERVICE = "10.96.0.10:80"


# --- xxHash64 as Envoy uses it ---------------------------------------------------------------


def test_xxhash64_values_match_envoy() -> None:
    """XXH64 with seed 0 gives Envoy's pinned values; a span chains the seeds."""
    # hash_test.cc: Hash.xxHash and Hash.xxHashWithVector
    assert xxh64("foo") == 3728699739546630719
    assert xxh64("bar") == 5234164152756840025
    assert xxh64("foo\nbar") == 8917841378505826757
    assert xxh64("lyft") == 4400747396090729504
    assert xxh64("") == 17241709254077376921
    assert chained_xxh64(["foo", "bar"]) == 17745830980996999794


# --- httpHeaderName --------------------------------------------------------------------------


def test_header_single_value() -> None:
    """One header value hashes as XXH64 of the value."""
    # hash_policy_test.cc: HeaderHashForSingleHeaderValue
    policy = ConsistentHashLB(http_header_name="x-test-header")
    result = request_hash(policy, {"x-test-header": "test-value"}, {})
    assert result == HashResult(xxh64("test-value"))


def test_header_multiple_values_sorted_then_chained() -> None:
    """Repeated header lines hash sorted and chained, whatever their order."""
    # hash_policy_test.cc: MultipleHeaderValues, HeaderHashMethodSameHashForDifferentHeaderOrder
    policy = ConsistentHashLB(http_header_name="x-multi-header")
    one = request_hash(policy, {"x-multi-header": ["value1", "value2"]}, {})
    other = request_hash(policy, {"x-multi-header": ("value2", "value1")}, {})
    assert one == other == HashResult(chained_xxh64(["value1", "value2"]))
    assert header_hash(["foo", "bar"]) == chained_xxh64(["bar", "foo"]) == 6648465492906218751


def test_header_absent_gives_no_hash() -> None:
    """No such header (or no values): no hash, so the balancer picks at random."""
    # hash_policy_test.cc: HeaderNotPresent
    policy = ConsistentHashLB(http_header_name="x-missing-header")
    assert request_hash(policy, {}, {}) == HashResult(None)
    assert request_hash(policy, {"x-missing-header": []}, {}) == HashResult(None)


def test_header_name_is_matched_in_lower_case_and_empty_value_hashes() -> None:
    """``X-User`` finds ``x-user``; a present but empty value hashes the empty string."""
    policy = ConsistentHashLB(http_header_name="X-User")
    assert request_hash(policy, {"x-user": "alice"}, {}).hash == xxh64("alice")
    assert request_hash(policy, {"x-user": ""}, {}).hash == xxh64("")


def test_header_joined_string_is_one_value() -> None:
    """A string is one header line: ``a,b`` hashes as written, unlike two lines a and b."""
    policy = ConsistentHashLB(http_header_name="x-user")
    assert request_hash(policy, {"x-user": "a,b"}, {}).hash == xxh64("a,b")
    assert request_hash(policy, {"x-user": ["a", "b"]}, {}).hash == chained_xxh64(["a", "b"])


# --- httpCookie ------------------------------------------------------------------------------


def test_cookie_present_hashes_its_value() -> None:
    """A present cookie hashes its value; nothing is set."""
    # hash_policy_test.cc: CookieHashForPresentCookie
    result = request_hash(cookie_policy(), {"cookie": "test-cookie=cookie-value"}, {})
    assert result == HashResult(xxh64("cookie-value"))


def test_cookie_absent_without_ttl_gives_no_hash() -> None:
    """No cookie and no ttl: no hash and no cookie."""
    # hash_policy_test.cc: CookieHashForAbsentCookieWithoutTTL
    assert request_hash(cookie_policy(), {}, {}, CLIENT, SERVICE) == HashResult(None)


def test_cookie_absent_with_ttl_is_generated_from_the_addresses() -> None:
    """No cookie, ttl set: hex16(XXH64(remote + local)) is set and hashed."""
    # hash_policy_test.cc: CookieHashForAbsentCookieWithTTL (the new value is hashed);
    # ring_hash_lb_test.cc RingHashLbWithHashPolicy: value = hex(XXH64(remote + local)).
    result = request_hash(cookie_policy(ttl_seconds=60), {}, {}, CLIENT, SERVICE)
    value = f"{xxh64(CLIENT + SERVICE):016x}"
    assert value == generated_cookie_value(CLIENT, SERVICE) == "eda70c72f55bb5aa"
    assert result == HashResult(xxh64(value), f'test-cookie="{value}"; Max-Age=60; HttpOnly')


def test_generated_cookie_value_keeps_leading_zeros() -> None:
    """The value is always 16 hex digits, zero-padded (Hex::uint64ToHex writes 8 bytes)."""
    assert generated_cookie_value("10.1.2.3:1488", SERVICE) == "0089c8b26510a2be"


def test_generated_cookie_needs_both_addresses() -> None:
    """Without a valid client or local address no cookie is made and no hash given."""
    # ring_hash_lb_test.cc RingHashLbWithHashPolicy: "no valid addresses" → random pick
    policy = cookie_policy(ttl_seconds=60)
    assert request_hash(policy, {}, {}, None, SERVICE) == HashResult(None)
    assert request_hash(policy, {}, {}, CLIENT, None) == HashResult(None)
    assert request_hash(policy, {}, {}, "not-an-ip", SERVICE) == HashResult(None)


def test_generated_cookie_addresses_are_printed_as_envoy_prints_them() -> None:
    """IPv6 addresses go in brackets with the port; without a port the IP alone."""
    policy = cookie_policy(ttl_seconds=1)
    v6 = request_hash(policy, {}, {}, "[FD00::1]:5000", "[fd00::a]:80")
    assert v6.hash == xxh64(f"{xxh64('[fd00::1]:5000[fd00::a]:80'):016x}")
    bare = request_hash(policy, {}, {}, "10.1.2.3", "10.96.0.10")
    assert bare.hash == xxh64(f"{xxh64('10.1.2.310.96.0.10'):016x}")


def test_generated_set_cookie_format() -> None:
    """Path, attributes in order (bare name when no value), HttpOnly last; ttl in whole s."""
    policy = cookie_policy(
        name="session",
        ttl_seconds=90.75,
        path="/app",
        attributes=(
            HTTPCookieAttribute(name="SameSite", value="Strict"),
            HTTPCookieAttribute(name="Secure"),
        ),
    )
    result = request_hash(policy, {}, {}, CLIENT, SERVICE)
    value = generated_cookie_value(CLIENT, SERVICE)
    assert result.set_cookie == (
        f'session="{value}"; Max-Age=90; Path=/app; SameSite=Strict; Secure; HttpOnly'
    )


def test_zero_ttl_makes_a_session_cookie() -> None:
    """ttl 0s still generates a cookie, without Max-Age (a session cookie)."""
    result = request_hash(cookie_policy(ttl_seconds=0, path="/"), {}, {}, CLIENT, SERVICE)
    value = generated_cookie_value(CLIENT, SERVICE)
    assert result == HashResult(xxh64(value), f'test-cookie="{value}"; Path=/; HttpOnly')
    below_a_second = request_hash(cookie_policy(ttl_seconds=0.5), {}, {}, CLIENT, SERVICE)
    assert below_a_second.set_cookie == f'test-cookie="{value}"; HttpOnly'


def test_empty_cookie_counts_as_absent() -> None:
    """``name=`` is no value: no hash without ttl, a generated cookie with one."""
    headers = {"cookie": "test-cookie=; other=1"}
    assert request_hash(cookie_policy(), headers, {}) == HashResult(None)
    generated = request_hash(cookie_policy(ttl_seconds=5), headers, {}, CLIENT, SERVICE)
    assert generated.set_cookie is not None


def test_set_cookie_format_matches_envoy() -> None:
    """Every Max-Age / Path / HttpOnly combination and attributes, as Envoy writes them."""
    # utility_test.cc: HttpUtility.TestMakeSetCookieValue
    cases = [
        ("", 10, False, 'name="value"; Max-Age=10'),
        ("", 0, False, 'name="value"'),
        ("", 10, True, 'name="value"; Max-Age=10; HttpOnly'),
        ("", 0, True, 'name="value"; HttpOnly'),
        ("/", 10, False, 'name="value"; Max-Age=10; Path=/'),
        ("/", 0, False, 'name="value"; Path=/'),
        ("/", 10, True, 'name="value"; Max-Age=10; Path=/; HttpOnly'),
        ("/", 0, True, 'name="value"; Path=/; HttpOnly'),
    ]
    for path, max_age, http_only, expected in cases:
        assert set_cookie_value("name", "value", path, max_age, http_only=http_only) == expected
    attributes = (
        HTTPCookieAttribute(name="SameSite", value="None"),
        HTTPCookieAttribute(name="Secure"),
        HTTPCookieAttribute(name="Partitioned"),
    )
    assert (
        set_cookie_value("name", "value", "/", 0, attributes)
        == 'name="value"; Path=/; SameSite=None; Secure; Partitioned; HttpOnly'
    )


def test_cookie_parsing_matches_envoy() -> None:
    """Quotes are stripped in pairs only; names lose leading spaces; lines searched in order."""
    # utility_test.cc: HttpUtility.TestParseCookieWithQuotes
    lines = [
        'dquote="; quoteddquote="""',
        'leadingdquote="foobar;',
        'abc=def; token="abc123"; Expires=Wed, 09 Jun 2021 10:18:14 GMT',
    ]
    assert cookie_value(lines, "token") == "abc123"
    assert cookie_value(lines, "dquote") == '"'
    assert cookie_value(lines, "quoteddquote") == '"'
    assert cookie_value(lines, "leadingdquote") == '"foobar'
    assert cookie_value(lines, "missing") == ""
    assert cookie_value(None, "token") == ""


def test_first_cookie_of_a_name_wins_even_if_empty() -> None:
    """With duplicates the first occurrence counts, across header lines."""
    # utility_test.cc: HttpUtility.TestParseCookiesDuplicates
    lines = ["a=; b=1; a=2", "a=3; b=2", "b=3"]
    assert cookie_value(lines, "a") == ""
    assert cookie_value(lines, "b") == "1"


# --- useSourceIp -----------------------------------------------------------------------------


def test_source_ip_hashes_the_ip_text() -> None:
    """The client IP, without port or brackets, hashed as text."""
    # hash_policy_test.cc: IpHashForValidIp
    policy = ConsistentHashLB(use_source_ip=True)
    assert request_hash(policy, {}, {}, "192.168.1.1").hash == xxh64("192.168.1.1")
    assert request_hash(policy, {}, {}, "192.168.1.1:5555").hash == xxh64("192.168.1.1")
    assert request_hash(policy, {}, {}, "[FD00::0:1]:80").hash == xxh64("fd00::1")


def test_source_ip_missing_gives_no_hash() -> None:
    """No client address (or not an IP): no hash."""
    # hash_policy_test.cc: IpHashForNullAddress
    policy = ConsistentHashLB(use_source_ip=True)
    assert request_hash(policy, {}, {}, None) == HashResult(None)
    assert request_hash(policy, {}, {}, "/run/app.sock") == HashResult(None)


def test_use_source_ip_false_is_no_policy() -> None:
    """``useSourceIp: false`` adds no hash policy: no hash."""
    policy = ConsistentHashLB(use_source_ip=False)
    assert request_hash(policy, {}, {}, "192.168.1.1") == HashResult(None)


# --- httpQueryParameterName ------------------------------------------------------------------


def test_query_parameter_hashes_its_first_raw_value() -> None:
    """The first value of the parameter, as sent (not percent-decoded)."""
    # hash_policy_test.cc: QueryParameterHashForExistingParameter
    policy = ConsistentHashLB(http_query_parameter_name="test-param")
    query = query_parameters("test-param=param-value")
    assert request_hash(policy, {}, query) == HashResult(xxh64("param-value"))
    query = query_parameters("test-param=a%20b&test-param=second")
    assert request_hash(policy, {}, query) == HashResult(xxh64("a%20b"))


def test_query_parameter_absent_gives_no_hash() -> None:
    """A query without the parameter, or no query at all: no hash."""
    # hash_policy_test.cc: QueryParameterHashForAbsentParameter, …ForMissingPathHeader
    policy = ConsistentHashLB(http_query_parameter_name="missing-param")
    assert request_hash(policy, {}, query_parameters("some-param=other-value")).hash is None
    assert request_hash(policy, {}, query_parameters("")).hash is None


def test_query_parsing_like_envoy() -> None:
    """Split on ``&`` then the first ``=``; no ``=`` means ``""``; names stay encoded."""
    assert query_parameters("a=1&a=2&flag&c=x=y&%41=z&") == {
        "a": "1",
        "flag": "",
        "c": "x=y",
        "%41": "z",
    }
    assert query_parameters("&a=1") == {"": "", "a": "1"}


# --- Which table Istio asks for -------------------------------------------------------------


def test_hash_table_follows_istio_defaults() -> None:
    """maglev → Maglev (0 → 65537); ringHash or nothing → ring (0 → 1024; deprecated field)."""
    hosts = [("10.0.0.1:80", 1), ("10.0.0.2:80", 1)]
    maglev = hash_table(ConsistentHashLB(maglev=MagLev()), hosts)
    assert isinstance(maglev, Maglev)
    assert len(maglev) == 65537
    assert len(hash_table(ConsistentHashLB(maglev=MagLev(table_size=17)), hosts)) == 17
    ring = hash_table(ConsistentHashLB(ring_hash=RingHashSettings()), hosts)
    assert isinstance(ring, RingHash)
    assert len(ring) == 1024
    sized = ConsistentHashLB(ring_hash=RingHashSettings(minimum_ring_size=4096))
    assert len(hash_table(sized, hosts)) == 4096
    assert len(hash_table(ConsistentHashLB(), hosts)) == 1024
    assert len(hash_table(ConsistentHashLB(minimum_ring_size=2048), hosts)) == 2048


# --- No key, and the address helper ----------------------------------------------------------


def test_no_hash_key_gives_no_hash() -> None:
    """A consistentHash without a key (accepted by Istio) hashes nothing."""
    policy = ConsistentHashLB()
    assert request_hash(policy, {"x": "y"}, {"q": "v"}, CLIENT, SERVICE) == HashResult(None)


def test_address_text_prints_like_envoy() -> None:
    """``(ip, address)`` as Envoy's addressAsString / asString; non-IPs are refused."""
    assert address_text("10.0.0.1:80") == ("10.0.0.1", "10.0.0.1:80")
    assert address_text("10.0.0.1") == ("10.0.0.1", "10.0.0.1")
    assert address_text("[FD00:0::1]:8080") == ("fd00::1", "[fd00::1]:8080")
    assert address_text("fd00::1") == ("fd00::1", "fd00::1")
    assert address_text("::ffff:10.0.0.1") == ("::ffff:10.0.0.1", "::ffff:10.0.0.1")
    assert address_text("svc.local:80") is None
    assert address_text("") is None


@settings(derandomize=True, max_examples=50)
@given(
    value=st.text(st.characters(codec="utf-8", exclude_characters=';"')),
    name=st.text(alphabet="abcdefghij-_", min_size=1, max_size=8),
)
def test_cookie_round_trip(value: str, name: str) -> None:
    """A cookie sent back as Envoy set it (quoted) hashes to the value it was set with."""
    header = f'other=1; {name}="{value}"'
    assert cookie_value([header], name) == value
    if value:
        policy = cookie_policy(name=name)
        assert request_hash(policy, {"cookie": header}, {}).hash == xxh64(value)


@pytest.mark.parametrize(
    "policy",
    [ConsistentHashLB(http_header_name="k"), ConsistentHashLB(http_query_parameter_name="k")],
)
def test_each_key_is_deterministic(policy: ConsistentHashLB) -> None:
    """The same request hashes the same way every time."""
    headers, query = {"k": "v"}, {"k": "v"}
    assert request_hash(policy, headers, query) == request_hash(policy, headers, query)
    assert request_hash(policy, headers, query).hash == xxh64("v")
