"""HTTP/1.1 for a client, sans I/O: request heads and bodies out, responses in (RFC 9112).

meshlib's pools (:mod:`._http11`, :mod:`._async_http11`) speak HTTP/1.1 through this
codec. It accepts and rejects what h11 (httpx's own HTTP/1.1 codec, through httpcore)
accepts and rejects, with the same grammar (h11's ABNF: header names are tokens, values
have no NUL and no leading or trailing whitespace), so a request that httpx would send
goes out byte for byte as httpx would send it, and a response httpx would read is read
the same way:

- the body's framing follows RFC 9112 §6.3: none for ``HEAD``, ``204`` and ``304``;
  ``Transfer-Encoding: chunked`` before ``Content-Length``; else up to the close;
- ``Content-Length`` values must agree; only ``chunked`` is a supported transfer coding;
- interim ``1xx`` responses are skipped; ``101`` (an upgrade nobody asked for) is an error;
- obsolete line folding is unfolded; bare ``LF`` line ends are tolerated, as h11 does;
- a connection is kept for the next request only after a complete exchange, when both
  sides spoke HTTP/1.1 without ``Connection: close`` and the framing was not "until close".
  Stricter than h11, it is not kept after a response framed both ways (chunked and a
  length, RFC 9112 §6.3) or followed by bytes nobody asked for.

Why not h11 itself: its event objects validate every header through a regular expression
per call and run a general state machine for both roles; that was 40 µs per request, more
than all of meshlib's routing. This codec does the same checks once per head.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "LocalProtocolError",
    "RemoteProtocolError",
    "RequestBody",
    "Response",
    "ResponseReader",
    "encode_request_head",
]

#: The most a response head (or a chunk header) may take: httpcore's limit for h11.
MAX_HEAD = 100 * 1024
_MAX_LENGTH_DIGITS = 20  # as h11

_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_HEADER_LINE = re.compile(
    rb"([-!#$%&'*+.^_`|~0-9a-zA-Z]+):[ \t]*((?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*"
)
_STATUS_LINE = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: ((?:[ \t]|[^\x00\s])*))?")
_CHUNK_HEADER = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*")
_DIGITS = re.compile(rb"[0-9]+")
_HEAD_END = re.compile(rb"\n\r?\n")


class LocalProtocolError(Exception):
    """What meshlib was asked to send is not valid HTTP/1.1."""


class RemoteProtocolError(Exception):
    """What the peer sent is not valid HTTP/1.1 (or ended too early)."""


# --------------------------------------------------------------------------- sending


@dataclass(slots=True)
class RequestBody:
    """How the request body is framed on the wire, and what was sent of it."""

    chunked: bool
    length: int  # the declared Content-Length (unused when chunked)
    sent: int = 0

    def encode(self, data: bytes) -> bytes:
        """``data`` framed for the wire."""
        if self.chunked:
            return b"%x\r\n%b\r\n" % (len(data), data) if data else b""
        self.sent += len(data)
        if self.sent > self.length:
            raise LocalProtocolError("Too much data for declared Content-Length")
        return data

    def end(self) -> bytes:
        """The bytes that end the body."""
        if self.chunked:
            return b"0\r\n\r\n"
        if self.sent < self.length:
            raise LocalProtocolError("Too little data for declared Content-Length")
        return b""


#: Methods and header names already checked to be tokens (a handful, seen on every
#: request; bounded, so odd names cannot grow it without end).
_tokens: set[bytes] = set()


def encode_request_head(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[bytes, RequestBody, bool]:
    """The request line and headers as bytes, the body's framing, and whether the request
    asks to close the connection afterwards.

    Raises:
        LocalProtocolError: an illegal method, target, header name or value, no ``Host``
            or more than one, or framing headers h11 would refuse.
    """
    if method not in _tokens:
        _check_token(method, "method characters")
    if not _TARGET.fullmatch(target):
        raise LocalProtocolError(f"Illegal target characters {target!r}")
    host = b""
    parts: list[bytes] = []
    length: int | None = None
    chunked = close = False
    for name, value in headers:
        if name not in _tokens:
            _check_token(name, "header name")
        if not _FIELD_VALUE.fullmatch(value):
            raise LocalProtocolError(f"Illegal header value {value!r}")
        lowered = name.lower()
        if lowered == b"host":
            if host:
                raise LocalProtocolError("Found multiple Host: headers")
            host = b"%b: %b\r\n" % (name, value)  # sent first, as RFC 9110 §7.2 advises
            continue
        if lowered == b"content-length":
            seen, length = length, _content_length(value, length, LocalProtocolError)
            if seen is not None:
                continue  # the same length again: sent once, as h11 does
            value = b"%d" % length
        elif lowered == b"transfer-encoding":
            if chunked or value.lower() != b"chunked":
                raise LocalProtocolError("Only Transfer-Encoding: chunked is supported")
            chunked, value = True, b"chunked"
        elif lowered == b"connection":
            close = close or _has_token(value, b"close")
        parts += (name, b": ", value, b"\r\n")
    if not host:
        raise LocalProtocolError("Missing mandatory Host: header")
    head = b"%b %b HTTP/1.1\r\n%b%b\r\n" % (method, target, host, b"".join(parts))
    return head, RequestBody(chunked, length or 0), close


def _check_token(value: bytes, what: str) -> None:
    if not _TOKEN.fullmatch(value):
        raise LocalProtocolError(f"Illegal {what} {value!r}")
    if len(_tokens) < 1024:
        _tokens.add(value)


def _content_length(value: bytes, seen: int | None, error: type[Exception]) -> int:
    """A ``Content-Length`` value (a list of equal values counts as one), checked
    against one seen before."""
    values = {part.strip() for part in value.split(b",")}
    if len(values) != 1:
        raise error("conflicting Content-Length headers")
    digits = values.pop()
    if not _DIGITS.fullmatch(digits) or len(digits) > _MAX_LENGTH_DIGITS:
        raise error("bad Content-Length")
    length = int(digits)
    if seen is not None and seen != length:
        raise error("conflicting Content-Length headers")
    return length


def _has_token(value: bytes, token: bytes) -> bool:
    return any(part.strip().lower() == token for part in value.split(b","))


# ------------------------------------------------------------------------- receiving


@dataclass(slots=True)
class Response:
    """A final response's head."""

    status_code: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    http_version: bytes


# Body framings, and the chunked reader's steps.
_NONE, _LENGTH, _CHUNKED, _UNTIL_CLOSE = range(4)
_SIZE, _DATA, _DATA_END, _TRAILERS, _DONE = range(5)

#: Returned by :meth:`ResponseReader.next_body` when the body is complete.
END = b""


class ResponseReader:
    """Reads one response from a connection's bytes: its head, then its body.

    Feed received bytes with :meth:`receive` (``b""`` when the peer closed); ask for
    :meth:`next_head`, then :meth:`next_body` until it returns :data:`END`. Both return
    None when they need more bytes.
    """

    __slots__ = (
        "_buffer",
        "_closed",
        "_framing",
        "_left",
        "_step",
        "_total",
        "head_request",
        "keep_alive",
    )

    def __init__(self, head_request: bool, keep_alive: bool) -> None:
        self._buffer = bytearray()
        self._closed = False
        self._framing = _NONE
        self._left = 0  # bytes still due: of the body, or of the current chunk
        self._total = 0
        self._step = _SIZE
        self.head_request = head_request
        self.keep_alive = keep_alive  # the request allows reuse; the response may not

    def receive(self, data: bytes) -> None:
        """Bytes from the peer; ``b""``: the peer closed its side."""
        if data:
            self._buffer += data
        else:
            self._closed = True

    def next_head(self) -> Response | None:
        """The final response's head, or None until it is all in.

        Raises:
            RemoteProtocolError: a malformed or oversized head, an upgrade, or the end of
                the connection in the middle of a head.
        """
        while True:
            head = self._take_head()
            if head is None:
                return None
            if head.status_code >= 200:
                self._frame(head)
                return head
            if head.status_code == 101:
                raise RemoteProtocolError("protocol upgrades are not supported")

    def next_body(self) -> bytes | None:
        """The next piece of the body, :data:`END` when it is complete, or None until
        more bytes arrive.

        Raises:
            RemoteProtocolError: bad chunked framing, or the end of the connection
                before the end of the body.
        """
        framing = self._framing
        if framing == _LENGTH:
            return self._length_body()
        if framing == _CHUNKED:
            return self._chunked_body()
        if framing == _UNTIL_CLOSE:
            if self._buffer:
                data = bytes(self._buffer)
                self._buffer.clear()
                return data
            return END if self._closed else None
        return END

    @property
    def reusable(self) -> bool:
        """The exchange is complete and the connection may carry the next one."""
        return self.keep_alive and not self._buffer and not self._closed

    # ----------------------------------------------------------------- the head

    def _take_head(self) -> Response | None:
        buffer = self._buffer
        found = _HEAD_END.search(buffer)
        if found is None:
            if len(buffer) > MAX_HEAD:
                raise RemoteProtocolError("response head too long")
            if self._closed:
                raise RemoteProtocolError(
                    "Server disconnected without sending a response."
                    if not buffer
                    else "peer unexpectedly closed connection"
                )
            return None
        lines = bytes(buffer[: found.start()]).split(b"\n")
        del buffer[: found.end()]
        return _parse_head([line[:-1] if line.endswith(b"\r") else line for line in lines])

    def _frame(self, head: Response) -> None:
        """Work out the body's framing and whether the connection can be kept.

        ``Content-Length`` and ``Transfer-Encoding`` are reported as h11 reports them:
        one length, its digits only; the coding in lower case.
        """
        if head.http_version != b"1.1":
            self.keep_alive = False
        length: int | None = None
        chunked = repeated = False
        headers = head.headers
        for index, (name, value) in enumerate(headers):
            lowered = name.lower()
            if lowered == b"content-length":
                repeated = repeated or length is not None
                length = _content_length(value, length, RemoteProtocolError)
                headers[index] = (name, b"%d" % length)
            elif lowered == b"transfer-encoding":
                if chunked or value.lower() != b"chunked":
                    raise RemoteProtocolError("Only Transfer-Encoding: chunked is supported")
                chunked = True
                headers[index] = (name, b"chunked")
            elif lowered == b"connection" and _has_token(value, b"close"):
                self.keep_alive = False
        if repeated:
            head.headers = _first_length_only(headers)
        if self.head_request or head.status_code in (204, 304):
            self._framing = _NONE
        elif chunked:
            # RFC 9112 §6.3: chunked wins; the pair may be a smuggling attempt, so the
            # connection is not reused (h11 would reuse it).
            self._framing = _CHUNKED
            if length is not None:
                self.keep_alive = False
        elif length is not None:
            self._framing, self._left, self._total = _LENGTH, length, length
        else:
            self._framing = _UNTIL_CLOSE
            self.keep_alive = False

    # ----------------------------------------------------------------- the body

    def _length_body(self) -> bytes | None:
        left = self._left
        if not left:
            return END
        buffer = self._buffer
        if not buffer:
            if self._closed:
                raise RemoteProtocolError(
                    "peer closed connection without sending complete message body: "
                    f"received {self._total - left} bytes, expected {self._total}"
                )
            return None
        if len(buffer) <= left:
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:left])
            del buffer[:left]
        self._left = left - len(data)
        return data

    def _chunked_body(self) -> bytes | None:
        buffer = self._buffer
        while True:
            step = self._step
            if step == _DATA:
                if not buffer:
                    self._check_open()
                    return None
                data = bytes(buffer[: self._left])
                del buffer[: len(data)]
                self._left -= len(data)
                if not self._left:
                    self._step = _DATA_END
                return data
            if step == _DONE:
                return END
            if step == _DATA_END:
                if len(buffer) < 2:
                    self._check_open()
                    return None
                if buffer[:2] != b"\r\n":
                    raise RemoteProtocolError("missing CRLF after a chunk")
                del buffer[:2]
                self._step = _SIZE
                continue
            line = self._line()
            if line is None:
                self._check_open()
                return None
            if step == _SIZE:
                match = _CHUNK_HEADER.fullmatch(line)
                if match is None:
                    raise RemoteProtocolError(f"illegal chunk header: {line!r}")
                self._left = int(match.group(1), 16)
                self._step = _DATA if self._left else _TRAILERS
            elif not line:  # _TRAILERS: an empty line ends them (their fields are dropped)
                self._step = _DONE

    def _line(self) -> bytes | None:
        buffer = self._buffer
        end = buffer.find(b"\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                raise RemoteProtocolError("chunk header or trailer too long")
            return None
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        return line[:-1] if line.endswith(b"\r") else line

    def _check_open(self) -> None:
        """More of a chunked body is due: the peer must not have closed."""
        if self._closed:
            raise RemoteProtocolError(
                "peer closed connection without sending complete message body: "
                "incomplete chunked read"
            )
        return


def _first_length_only(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` without the repeats of ``Content-Length`` (they agree; h11 reports one)."""
    kept, seen = [], False
    for name, value in headers:
        if name.lower() == b"content-length":
            if seen:
                continue
            seen = True
        kept.append((name, value))
    return kept


def _parse_head(lines: list[bytes]) -> Response:
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise RemoteProtocolError(f"illegal status line: {lines[0]!r}")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):  # obsolete line folding: one value on two lines
            if not headers:
                raise RemoteProtocolError("continuation line at start of headers")
            name, value = headers[-1]
            more = line.strip(b" \t")
            if not _FIELD_VALUE.fullmatch(more):
                raise RemoteProtocolError(f"illegal header line: {line!r}")
            headers[-1] = (name, value + b" " + more if value else more)
            continue
        field = _HEADER_LINE.fullmatch(line)
        if field is None:
            raise RemoteProtocolError(f"illegal header line: {line!r}")
        headers.append((field.group(1), field.group(2)))
    version, status, reason = match.groups()
    return Response(int(status), reason or b"", headers, version)
