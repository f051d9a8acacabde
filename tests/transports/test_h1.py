"""The HTTP/1.1 client codec, sans I/O: table-driven, and checked against h11 itself.

h11 is the codec httpx uses (through httpcore); meshlib's codec must accept, reject and
frame exactly what h11 does for a client. Each response case is parsed by both, fed whole
and one byte at a time, and the outcomes (head, body, reuse, or an error) must agree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import h11
import pytest

from meshlib._transports import _h1 as h1


@dataclass(frozen=True)
class Outcome:
    status: int
    reason: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    reusable: bool


def ours(method: bytes, wire: bytes, *, bytewise: bool = False) -> Outcome | str:
    """What meshlib's reader makes of ``wire`` (then the peer closes), or "error"."""
    reader = h1.ResponseReader(method == b"HEAD", keep_alive=True)
    pieces = [wire[i : i + 1] for i in range(len(wire))] if bytewise else [wire]
    feed = iter([*pieces, b""])
    try:
        head = reader.next_head()
        while head is None:
            reader.receive(next(feed))
            head = reader.next_head()
        body = b""
        while True:
            data = reader.next_body()
            if data is None:
                reader.receive(next(feed))
            elif data == h1.END:
                break
            else:
                body += data
    except h1.RemoteProtocolError:
        return "error"
    for rest in feed:  # what arrives after the response (the pool sees it before reuse)
        if rest:
            reader.receive(rest)
    return Outcome(head.status_code, head.reason, tuple(head.headers), body, reader.reusable)


def theirs(method: bytes, wire: bytes) -> Outcome | str:
    """What h11, as httpcore drives it, makes of ``wire`` (then the peer closes)."""
    connection = h11.Connection(h11.CLIENT)
    connection.send(h11.Request(method=method, target=b"/", headers=[(b"Host", b"a")]))
    connection.send(h11.EndOfMessage())
    connection.receive_data(wire)
    closed = False
    try:
        event = connection.next_event()
        while type(event) is not h11.Response:
            if event is h11.NEED_DATA:
                if closed:
                    return "error"
                connection.receive_data(b"")
                closed = True
            elif type(event) is h11.InformationalResponse and event.status_code == 101:
                return "error"
            event = connection.next_event()
        head, body = event, b""
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                if closed:
                    return "error"
                connection.receive_data(b"")
                closed = True
            elif type(event) is h11.Data:
                body += event.data
            elif type(event) is h11.EndOfMessage:
                break
    except h11.RemoteProtocolError:
        return "error"
    reusable = connection.their_state is h11.DONE and not closed
    if reusable:
        connection.start_next_cycle()
        reusable = connection.next_event() is h11.NEED_DATA  # nothing left over
    headers = tuple(head.headers.raw_items())
    return Outcome(head.status_code, head.reason, headers, body, reusable)


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
RESPONSES = {
    "content length": (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "no reason phrase": (b"GET", b"HTTP/1.1 204\r\n\r\n"),
    "empty reason phrase": (b"GET", b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"),
    "long reason": (b"GET", b"HTTP/1.1 404 Not Found Here\r\nContent-Length: 0\r\n\r\n"),
    "header casing kept": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nX-Mixed-Case: V\r\nContent-length: 0\r\n\r\n",
    ),
    "value whitespace trimmed": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nA:   b c \t\r\nContent-Length: 0\r\n\r\n",
    ),
    "empty value": (b"GET", b"HTTP/1.1 200 OK\r\nA:\r\nContent-Length: 0\r\n\r\n"),
    "chunked": (
        b"GET",
        CHUNKED + b"3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n",
    ),
    "chunked with extensions and trailers": (
        b"GET",
        CHUNKED + b"3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    ),
    "chunked, upper-case coding": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
    ),
    "chunked wins over length": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n" + CHUNKED[17:] + b"1\r\nx\r\n0\r\n\r\n",
    ),
    "gzip coding": (b"GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx"),
    "two transfer-encoding headers": (
        b"GET",
        CHUNKED[:-2] + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    "bad chunk size": (b"GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    "missing CRLF after chunk": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy0\r\n\r\n",
    ),
    "chunked cut short": (b"GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
    "until close": (b"GET", b"HTTP/1.1 200 OK\r\n\r\nall of it"),
    "HTTP/1.0": (b"GET", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "connection close": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok",
    ),
    "equal lengths in a list": (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok"),
    "equal lengths twice": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
    ),
    "conflicting lengths": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    ),
    "negative length": (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
    "body cut short": (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
    "bytes beyond the body": (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"),
    "HEAD ignores the length": (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"),
    "304 has no body": (b"GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"),
    "interim responses skipped": (
        b"GET",
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
        ),
    ),
    "upgrade": (b"GET", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"),
    "obsolete line folding": (
        b"GET",
        b"HTTP/1.1 200 OK\r\nA: one\r\n  two\r\nContent-Length: 0\r\n\r\n",
    ),
    "fold at the start": (b"GET", b"HTTP/1.1 200 OK\r\n two\r\nContent-Length: 0\r\n\r\n"),
    "bare LF line ends": (b"GET", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
    "blank line before the head": (b"GET", b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    "space before the colon": (b"GET", b"HTTP/1.1 200 OK\r\nA : b\r\nContent-Length: 0\r\n\r\n"),
    "NUL in a value": (b"GET", b"HTTP/1.1 200 OK\r\nA: b\x00c\r\nContent-Length: 0\r\n\r\n"),
    "not HTTP": (b"GET", b"SSH-2.0-OpenSSH\r\n\r\n"),
    "status not three digits": (b"GET", b"HTTP/1.1 20 OK\r\n\r\n"),
    "head cut short": (b"GET", b"HTTP/1.1 200 OK\r\nContent-"),
    "nothing at all": (b"GET", b""),
}


#: Where meshlib is deliberately stricter than h11: it reads the response the same way
#: but does not reuse the connection afterwards.
NOT_REUSED = {
    # RFC 9112 §6.3: both framings at once "ought to be handled as an error" (a possible
    # smuggling attempt); h11 reuses the connection.
    "chunked wins over length",
    # Bytes after the response that nobody asked for: h11 keeps them in its buffer, and
    # httpcore would read them as the start of the next response.
    "bytes beyond the body",
}


@pytest.mark.parametrize("case", RESPONSES)
def test_responses_are_read_as_h11_reads_them(case: str) -> None:
    """Head, body and reuse as h11 has them (or both refuse), fed whole and bytewise."""
    method, wire = RESPONSES[case]
    expected = theirs(method, wire)
    if case in NOT_REUSED:
        assert isinstance(expected, Outcome)
        assert expected.reusable
        expected = dataclasses.replace(expected, reusable=False)
    assert ours(method, wire) == expected
    assert ours(method, wire, bytewise=True) == expected


def test_the_disconnect_message_is_httpcore_s() -> None:
    """A close before any byte of a response reads as httpcore says it."""
    reader = h1.ResponseReader(head_request=False, keep_alive=True)
    reader.receive(b"")
    with pytest.raises(h1.RemoteProtocolError, match="Server disconnected without sending"):
        reader.next_head()


def test_an_oversized_head_is_refused_before_it_ends() -> None:
    """A head past 100 KiB is refused without waiting for its end (httpcore's limit)."""
    reader = h1.ResponseReader(head_request=False, keep_alive=True)
    reader.receive(b"HTTP/1.1 200 OK\r\nA: " + b"x" * h1.MAX_HEAD)
    with pytest.raises(h1.RemoteProtocolError, match="too long"):
        reader.next_head()


def test_a_request_that_asked_to_close_leaves_nothing_to_reuse() -> None:
    """``Connection: close`` from our side ends the connection whatever the answer."""
    reader = h1.ResponseReader(head_request=False, keep_alive=False)
    reader.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert reader.next_head() is not None
    assert reader.next_body() == h1.END
    assert not reader.reusable


# -------------------------------------------------------------------------- requests


def h11_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes | str:
    connection = h11.Connection(h11.CLIENT)
    try:
        data = connection.send(h11.Request(method=method, target=target, headers=headers))
    except h11.LocalProtocolError:
        return "error"
    assert data is not None
    return data


def our_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes | str:
    try:
        return h1.encode_request_head(method, target, headers)[0]
    except h1.LocalProtocolError:
        return "error"


HOST = (b"Host", b"reviews:9080")
REQUESTS = {
    "plain GET": (b"GET", b"/a?b=c", [HOST, (b"Accept", b"*/*")]),
    "casing and order kept": (
        b"POST",
        b"/",
        [(b"X-B", b"1"), HOST, (b"x-a", b"2"), (b"Content-Length", b"0")],
    ),
    "inner spaces allowed": (b"GET", b"/", [HOST, (b"A", b"b \t c")]),
    "empty value": (b"GET", b"/", [HOST, (b"A", b"")]),
    "obs-text value": (b"GET", b"/", [HOST, (b"A", "é".encode())]),
    "CRLF injection": (b"GET", b"/", [HOST, (b"A", b"b\r\nEvil: 1")]),
    "LF injection": (b"GET", b"/", [HOST, (b"A", b"b\nEvil: 1")]),
    "NUL in a value": (b"GET", b"/", [HOST, (b"A", b"b\x00")]),
    "leading space in a value": (b"GET", b"/", [HOST, (b"A", b" b")]),
    "trailing space in a value": (b"GET", b"/", [HOST, (b"A", b"b ")]),
    "space in a name": (b"GET", b"/", [HOST, (b"A B", b"c")]),
    "colon in a name": (b"GET", b"/", [HOST, (b"A:", b"c")]),
    "empty name": (b"GET", b"/", [HOST, (b"", b"c")]),
    "space in the target": (b"GET", b"/a b", [HOST]),
    "empty target": (b"GET", b"", [HOST]),
    "space in the method": (b"G T", b"/", [HOST]),
    "no Host": (b"GET", b"/", [(b"Accept", b"*/*")]),
    "two Hosts": (b"GET", b"/", [HOST, HOST]),
    "conflicting lengths": (
        b"POST",
        b"/",
        [HOST, (b"Content-Length", b"1"), (b"Content-Length", b"2")],
    ),
    "bad length": (b"POST", b"/", [HOST, (b"Content-Length", b"x")]),
    "gzip coding": (b"POST", b"/", [HOST, (b"Transfer-Encoding", b"gzip")]),
    "chunked": (b"POST", b"/", [HOST, (b"Transfer-Encoding", b"chunked")]),
}


@pytest.mark.parametrize("case", REQUESTS)
def test_request_heads_are_the_bytes_h11_would_send(case: str) -> None:
    """Byte for byte, or both refuse."""
    method, target, headers = REQUESTS[case]
    assert our_head(method, target, headers) == h11_head(method, target, headers)


def test_request_body_framing() -> None:
    """Chunked framing, and the declared length held to, as h11 holds it."""
    _, chunked, _ = h1.encode_request_head(
        b"POST", b"/", [HOST, (b"Transfer-Encoding", b"chunked")]
    )
    assert chunked.encode(b"abc") + chunked.encode(b"") + chunked.end() == b"3\r\nabc\r\n0\r\n\r\n"
    _, sized, _ = h1.encode_request_head(b"POST", b"/", [HOST, (b"Content-Length", b"3")])
    assert sized.encode(b"ab") == b"ab"
    with pytest.raises(h1.LocalProtocolError, match="Too little"):
        sized.end()
    with pytest.raises(h1.LocalProtocolError, match="Too much"):
        sized.encode(b"cd")
    _, none, _ = h1.encode_request_head(b"GET", b"/", [HOST])
    assert none.end() == b""
    with pytest.raises(h1.LocalProtocolError, match="Too much"):
        none.encode(b"x")


def test_connection_close_in_the_request_is_noticed() -> None:
    """The request's own ``Connection: close`` is reported to the pool."""
    assert h1.encode_request_head(b"GET", b"/", [HOST, (b"Connection", b"close")])[2]
    assert not h1.encode_request_head(b"GET", b"/", [HOST, (b"Connection", b"keep-alive")])[2]
