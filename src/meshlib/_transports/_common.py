"""What the sync and async shells share: conversions, never I/O.

``httpx.Request`` → :class:`RequestHead` for the engine; an engine :class:`Attempt` →
the inner ``httpx.Request`` (the endpoint's URL, the service's ``Host``, header edits,
timeouts); a local reply → ``httpx.Response``; an httpx exception → Envoy's failure kind.
"""

from __future__ import annotations

import functools
import os
import re
import ssl
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from meshlib._core._actions import Attempt, Failed, Outcome, Responded, RouteTimeout
from meshlib._core._headers import HeaderEdits
from meshlib._core._replies import LocalReply
from meshlib._core._request import RequestHead
from meshlib._core._retry import Failure
from meshlib._info import MeshInfo
from meshlib._transports._deadline import Bound, Expired
from meshlib._transports._header_list import ResponseHeaders, edited, read_headers
from meshlib._transports._tls import TlsContexts

if TYPE_CHECKING:
    from meshlib._identity import IdentitySource

__all__ = [
    "Budget",
    "PlainKey",
    "Upstream",
    "apply_edits",
    "body_position",
    "bound_for",
    "budget_for",
    "default_ssl_context",
    "failure_of",
    "inner_request",
    "local_response",
    "outcome_of_error",
    "outcome_of_expiry",
    "plaintext_key",
    "replayable",
    "request_head",
    "responded",
    "rewind",
    "upstream_for",
]

EXTENSION = "meshlib"


@dataclass(frozen=True, slots=True)
class Upstream:
    """What an inner transport is created for: one endpoint of one cluster.

    ``cluster`` is ``outbound|port|subset|host``, or ``None`` for a request sent as is
    (an unknown host under ``ALLOW_ANY``). Two clusters on one endpoint never share a
    transport, so their connection pools (and, with mTLS, their TLS settings) stay apart.
    ``idle_timeout`` is the cluster's ``connectionPool.http.idleTimeout`` in seconds
    (None: httpx's keep-alive expiry, 5 s). ``ssl_context`` is set when the mesh
    originates TLS (a DestinationRule's ``tls``, or auto-mTLS): give it to the transport
    (``httpx.HTTPTransport(verify=upstream.ssl_context)``); the scheme is then ``https``.
    A new workload identity after a rotation comes with a new context, hence a new key.
    """

    scheme: str
    address: str
    port: int
    cluster: str | None = None
    idle_timeout: float | None = None
    ssl_context: ssl.SSLContext | None = None

    def pool_limits(self) -> httpx.Limits:
        """The inner pool's limits: none on connections, since the mesh's circuit breakers
        count them (Istio's default is no limit at all); ``idleTimeout`` as the keep-alive
        expiry."""
        expiry = self.idle_timeout if self.idle_timeout is not None else 5.0
        return httpx.Limits(
            max_connections=None, max_keepalive_connections=None, keepalive_expiry=expiry
        )


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context, made once: building one loads the CA bundle
    (tens of milliseconds), and every endpoint has its own inner transport."""
    return httpx.create_ssl_context()


def upstream_for(
    attempt: Attempt, contexts: TlsContexts, identity: IdentitySource | None
) -> Upstream:
    """The inner transport's key for ``attempt``, with its SSL context when it has TLS.

    Raises:
        httpx.ConnectError: the TLS material cannot be loaded (no workload identity for
            ``ISTIO_MUTUAL``, an unreadable ``caCertificates`` file): a connect failure.
    """
    context = None
    if attempt.tls is not None:
        current = identity.current() if identity is not None else None
        try:
            context = contexts.context_for(attempt.tls, current)
        except (ssl.SSLError, OSError) as error:
            raise httpx.ConnectError(f"TLS setup failed: {error}") from error
    cluster = attempt.cluster.name if attempt.cluster is not None else None
    return Upstream(
        attempt.scheme, attempt.address, attempt.port, cluster, attempt.idle_timeout, context
    )


#: What identifies a plaintext attempt's :class:`Upstream`: scheme, address, port,
#: cluster name and idle timeout (a plain tuple, quicker to hash than the dataclass).
PlainKey = tuple[str, str, int, str | None, float | None]


def plaintext_key(attempt: Attempt) -> PlainKey | None:
    """The key of ``attempt``'s upstream when it has no TLS to originate, else None
    (a TLS upstream's key includes the SSL context of the identity in force)."""
    if attempt.tls is not None:
        return None
    cluster = attempt.cluster.name if attempt.cluster is not None else None
    return (attempt.scheme, attempt.address, attempt.port, cluster, attempt.idle_timeout)


def request_head(request: httpx.Request) -> RequestHead:
    """The engine's view of ``request``."""
    url = request.url
    lines = read_headers(request.headers)  # names come lower-cased
    headers = dict(lines)
    repeated: dict[str, tuple[str, ...]] = {}
    if len(headers) < len(lines):  # a header sent on several lines
        headers, repeated = _joined_lines(lines)
    raw_path = url.raw_path.decode("ascii", "replace")
    path, _, query = raw_path.partition("?")
    scheme = url.scheme
    authority = headers.get("host")
    return RequestHead(
        method=request.method,
        scheme=scheme,
        host=url.host,
        port=RequestHead.port_for(scheme, url.port),
        authority=authority if authority is not None else url.netloc.decode("ascii"),
        path=path or "/",
        query=query,
        headers=headers,
        replayable=replayable(request),
        repeated=repeated,
    )


def _joined_lines(
    lines: Sequence[tuple[str, str]],
) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Header lines as the engine matches them (a header on several lines joined with
    ``,``), and the separate values of those headers (consistent hashing keeps them)."""
    headers: dict[str, str] = {}
    repeated: dict[str, tuple[str, ...]] = {}
    for key, value in lines:
        if key in headers:
            repeated[key] = (*repeated.get(key, (headers[key],)), value)
            headers[key] = ",".join(repeated[key])
        else:
            headers[key] = value
    return headers, repeated


def replayable(request: httpx.Request) -> bool:
    """Can the body be sent again? Buffered bodies can, and seekable files (rewound).

    A generator, or any other stream, is sent once: meshlib does not retry or mirror
    such a request (``request.read()`` beforehand makes it replayable).
    """
    stream = request.stream
    return isinstance(stream, httpx.ByteStream) or _seekable_file(stream) is not None


def _seekable_file(stream: object) -> Any:
    """The seekable file behind httpx's stream for a file body, if that is what it is.

    httpx wraps ``content=open(...)`` in an iterator stream over the file; reaching the
    file means reading httpx's private ``_stream`` attribute, hence this one guarded place.
    """
    inner = getattr(stream, "_stream", None)
    if (
        hasattr(inner, "seek")
        and hasattr(inner, "tell")
        and getattr(inner, "seekable", lambda: False)()
    ):
        return inner
    return None


def rewind(request: httpx.Request, position: int | None) -> None:
    """Rewind a file body to ``position`` before sending it again."""
    inner = _seekable_file(request.stream)
    if inner is not None and position is not None:
        inner.seek(position)
        if hasattr(request.stream, "_is_stream_consumed"):
            request.stream._is_stream_consumed = False


def body_position(request: httpx.Request) -> int | None:
    """Where a file body starts, to rewind to it for a retry (None for other bodies)."""
    if isinstance(request.stream, httpx.ByteStream):  # the usual body: bytes in memory
        return None
    inner = _seekable_file(request.stream)
    return int(inner.tell()) if inner is not None else None


@dataclass(slots=True)  # built per attempt: not frozen, for speed (see _actions)
class Budget:
    """The timeouts for one attempt, and whether the mesh's (not the caller's) bind."""

    timeouts: Mapping[str, float | None]
    mesh_read: bool
    route_binds: bool


def _smallest(first: float | None, second: float | None) -> float | None:
    """The smaller of two optional timeouts (None: no bound)."""
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)


def budget_for(request: httpx.Request, attempt: Attempt, now: float) -> Budget:
    """The inner request's timeouts: the caller's, tightened by the mesh's.

    The caller's ``httpx.Timeout`` stays in force as the application's own bound; the
    connect timeout is Istio's (10 s by default, ``connectionPool.tcp.connectTimeout``);
    reads and writes end at the per-try timeout or the route deadline when those come
    first, and such a timeout is then the mesh's, not the caller's.
    """
    caller: Mapping[str, Any] = request.extensions.get("timeout", {})
    remaining = attempt.deadline - now if attempt.deadline is not None else None
    if remaining is not None:
        remaining = max(remaining, 0.0)
    mesh = _smallest(attempt.per_try_timeout, remaining)
    read = caller.get("read")
    mesh_read = mesh is not None and (read is None or mesh < read)
    route_binds = remaining is not None and (
        attempt.per_try_timeout is None or remaining <= attempt.per_try_timeout
    )
    connect = _smallest(attempt.connect_timeout, remaining)
    return Budget(
        {
            "connect": connect if connect is not None else caller.get("connect"),
            "read": mesh if mesh_read else read,
            "write": _smallest(mesh, caller.get("write")),
            "pool": caller.get("pool"),
        },
        mesh_read,
        route_binds,
    )


def apply_edits(headers: httpx.Headers, edits: HeaderEdits) -> httpx.Headers:
    """Response headers after the edits (remove, then set, then add): a copy when there
    are edits, ``headers`` itself when there are none."""
    if not edits:
        return headers
    return edited(headers, edits)


def inner_request(
    request: httpx.Request, attempt: Attempt, budget: Budget, head: RequestHead
) -> httpx.Request:
    """The request for the endpoint: its URL, the service's ``Host``, edited headers.

    The caller's request stays as it is (a retry starts from it again); the copy shares
    its body stream, which :func:`rewind` resets between attempts.
    """
    headers = edited(request.headers, attempt.edits, host=attempt.authority)
    extensions = {**request.extensions, "timeout": dict(budget.timeouts)}
    if attempt.tls is not None:
        extensions["sni_hostname"] = attempt.tls.sni
    elif attempt.scheme == "https" and "sni_hostname" not in extensions:
        # TLS to an endpoint's address: name and verify the service, not the address.
        extensions["sni_hostname"] = (
            attempt.authority.rsplit(":", 1)[0]
            if not attempt.authority.endswith("]")
            else attempt.authority
        )
    # A shallow copy, not httpx.Request(...): the constructor re-parses the URL and
    # re-normalises every header, a third of meshlib's cost per request.
    inner = httpx.Request.__new__(httpx.Request)
    inner.__dict__.update(request.__dict__)
    inner.url = endpoint_url(request.url, attempt, head)
    inner.headers = headers
    inner.extensions = extensions
    return inner


_PLAIN_HOST = re.compile(r"[a-z0-9.-]+")
#: The fields of httpx's parsed URL (a named tuple), in order.
_URI_FIELDS = ("scheme", "userinfo", "host", "port", "path", "query", "fragment")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.lru_cache(maxsize=4096)
def _plain_host(address: str) -> bool:
    """Does an endpoint's address go into a URL as it is (no IDNA, no brackets)?"""
    return _PLAIN_HOST.fullmatch(address) is not None


def endpoint_url(original: httpx.URL, attempt: Attempt, head: RequestHead) -> httpx.URL:
    """The URL of ``attempt``: the caller's URL with the endpoint's scheme, host and port.

    When the path and query are the caller's and the host needs no encoding, the caller's
    parsed URL is reused with those three parts replaced (httpx keeps it as a named
    tuple with the fields in ``_URI_FIELDS``); anything else is parsed from scratch.
    """
    reference: Any = getattr(original, "_uri_reference", None)
    if (
        getattr(reference, "_fields", None) != _URI_FIELDS
        or attempt.path != head.path
        or attempt.query != head.query
        or not _plain_host(attempt.address)
    ):
        return httpx.URL(attempt.url)
    port = None if _DEFAULT_PORTS.get(attempt.scheme) == attempt.port else attempt.port
    _, userinfo, _, _, path, query, fragment = reference
    url = httpx.URL.__new__(httpx.URL)
    url._uri_reference = type(reference)(
        attempt.scheme, userinfo, attempt.address, port, path, query, fragment
    )
    return url


def local_response(request: httpx.Request, reply: LocalReply, info: MeshInfo) -> httpx.Response:
    """An httpx response for a local reply, as the application would get it from Envoy.

    The body is handed over as a stream, as a network transport hands it over (the
    client reads it); building it through ``content=`` would read it here, ten times
    the cost of the rest: an overflow must fail fast.
    """
    return httpx.Response(
        reply.status,
        headers=_reply_headers(reply.headers, len(reply.body)),
        stream=httpx.ByteStream(reply.body),
        request=request,
        extensions={EXTENSION: info},
    )


@functools.lru_cache(maxsize=256)
def _reply_headers(headers: tuple[tuple[str, str], ...], length: int) -> httpx.Headers:
    """A local reply's headers, normalised once: most replies are the same few (a
    response copies the list, so sharing one is safe)."""
    return httpx.Headers([*headers, ("content-length", str(length))])


def failure_of(error: httpx.TransportError) -> Failure | None:
    """The Envoy failure an httpx exception stands for, or None when the mesh must not
    treat it as an upstream failure (it is re-raised to the caller as it is)."""
    if isinstance(error, httpx.ConnectTimeout):
        return Failure.CONNECT_TIMEOUT
    if isinstance(error, httpx.ConnectError):
        return Failure.CONNECT
    if isinstance(error, httpx.PoolTimeout):
        return None  # local queueing: never an upstream failure
    if isinstance(error, (httpx.ReadTimeout, httpx.WriteTimeout)):
        return Failure.TIMEOUT
    if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        # Over HTTP/1.1 a peer that closes or resets the connection before the response
        # is Envoy's ConnectionTermination (UC); "remote reset" is an HTTP/2 stream reset.
        return Failure.TERMINATED
    if isinstance(error, httpx.CloseError):
        return Failure.TERMINATED
    return None


def transport_failure(error: BaseException) -> str:
    """What Envoy adds as ``transport failure reason`` for a failed connect: the socket
    error (``delayed connect error: Connection refused``) or the TLS error
    (``TLS_error:|CERTIFICATE_VERIFY_FAILED: ...:TLS_error_end``)."""
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLError):
            return f"TLS_error:|{_tls_reason(cause)}:TLS_error_end"
        if isinstance(cause, OSError) and cause.errno:
            return f"delayed connect error: {os.strerror(cause.errno)}"
    return ""


def _tls_reason(error: ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"{error.reason}: {error.verify_message}"
    reason = getattr(error, "reason", None)
    return str(reason) if reason and not str(error).startswith(str(reason)) else str(error)


def _tls_alert(error: BaseException) -> bool:
    """Did the peer end the connection with a TLS alert?

    Under TLS 1.3 a server checks the client's certificate after the client has finished
    its handshake, so a rejection arrives on the first read. Envoy then reports a
    connection termination (``UC``), with the alert as the transport failure reason;
    meshlib does the same when it gets to read the alert (the async shells often see
    only the reset that follows it).
    """
    return any(
        isinstance(cause, ssl.SSLError) and "ALERT" in str(getattr(cause, "reason", "") or "")
        for cause in _causes(error)
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, what caused it, and the members of exception groups on the way (trio
    reports a failed connect as a group of per-address errors)."""
    pending, seen = [error], set()
    while pending:
        cause = pending.pop(0)
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        yield cause
        members = getattr(cause, "exceptions", None)  # an exception group (3.10: backport)
        if isinstance(members, (list, tuple)):
            pending.extend(m for m in members if isinstance(m, BaseException))
        pending.extend(c for c in (cause.__cause__, cause.__context__) if c is not None)


def bound_for(attempt: Attempt, now: float) -> Bound | None:
    """The attempt's deadlines in real time (the route deadline is on the mesh's clock);
    None when it has neither a route nor a per-try timeout."""
    if attempt.deadline is None and attempt.per_try_timeout is None:
        return None
    route = None
    if attempt.deadline is not None:
        route = time.monotonic() + (attempt.deadline - now)
    return Bound(route=route, per_try=attempt.per_try_timeout)


def outcome_of_expiry(bound: Bound) -> Outcome | None:
    """The outcome when the attempt's own deadline cut it short (None: it did not)."""
    if bound.expired is Expired.ROUTE:
        return RouteTimeout()
    if bound.expired is Expired.PER_TRY:
        return Failed(Failure.TIMEOUT)
    return None


def outcome_of_error(
    error: httpx.TransportError, attempt: Attempt, budget: Budget, now: float
) -> Outcome | None:
    """The outcome of an attempt that raised, or None to re-raise it to the caller.

    A timeout is the mesh's only when the mesh's budget was the tighter one: the route
    deadline (``RouteTimeout``) or the per-try timeout (``Failed(TIMEOUT)``); the
    caller's own timeouts stay the caller's, as in front of a sidecar.
    """
    failure = failure_of(error)
    if failure is None:
        return None
    past_deadline = attempt.deadline is not None and now >= attempt.deadline
    if failure is Failure.TIMEOUT:
        if not budget.mesh_read:
            return None
        return RouteTimeout() if budget.route_binds or past_deadline else Failed(Failure.TIMEOUT)
    if isinstance(error, httpx.ConnectTimeout) and past_deadline:
        return RouteTimeout()
    connecting = failure in (Failure.CONNECT, Failure.CONNECT_TIMEOUT)
    detail = transport_failure(error) if failure is Failure.CONNECT or _tls_alert(error) else ""
    return Failed(failure, request_sent=not connecting, detail=detail)


def responded(response: httpx.Response) -> Responded:
    """The outcome of an attempt that got response headers."""
    return Responded(response.status_code, ResponseHeaders(response.headers))
