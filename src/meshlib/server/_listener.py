"""The listener: one port that speaks Istio mTLS and, when policy allows, plaintext.

Concurrency model: one AnyIO event loop (asyncio by default, or trio) runs everything:
an accept loop, and one task per connection that peeks, handshakes and serves HTTP. The
application is an ASGI app, so it must run on an event loop anyway, and one loop for
all connections is what uvicorn and hypercorn give it too: its locks, pools and clients
stay on the loop that made them. TLS runs through AnyIO's ``TLSStream`` (a memory BIO),
so a slow handshake holds no thread and blocks no other connection. The class form runs
that loop in a background thread (an AnyIO blocking portal) so tests and synchronous
programs can start and stop it; :func:`serve` runs it in the calling thread, and
:meth:`Server.serve_forever` inside an event loop the caller already runs.

Each connection is accepted here rather than by AnyIO's listener so that its first byte
can be peeked (``MSG_PEEK``) before anything reads it: ``0x16`` (a TLS handshake record)
means mTLS, anything else plaintext, as Envoy's TLS inspector decides. The mode of the
port (PeerAuthentication) then says what is accepted:

========== ============================== ====================================
mode       TLS                            plaintext
========== ============================== ====================================
STRICT     mTLS                           refused (connection closed)
PERMISSIVE mTLS                           served, without a peer identity
DISABLE    refused (connection closed)    served
========== ============================== ====================================

An mTLS client must present a certificate that the identity's roots verify, carrying a
``spiffe://`` URI SAN in an accepted trust domain (see :mod:`._ssl`); otherwise the
connection is closed. The SSL context is built once per identity: a rotation seen by
the :class:`~meshlib.IdentitySource` applies to the connections accepted after
it, never to those already open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Mapping
from concurrent.futures import Future
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import ByteStream, SocketStream, TaskGroup, TaskStatus
from anyio.from_thread import BlockingPortal, start_blocking_portal
from anyio.streams.tls import TLSAttribute, TLSStream

from meshlib._identity import Identity, IdentitySource
from meshlib.config import MutualTLSMode
from meshlib.server._asgi import ASGIApp
from meshlib.server._http import HttpConnection
from meshlib.server._matchers import trust_domain_of
from meshlib.server._middleware import AuthorizationMiddleware
from meshlib.server._policy import ROOT_NAMESPACE, Policies, WorkloadPolicy
from meshlib.server._ssl import ContextCache, TlsMaterial

__all__ = ["Server", "serve"]

logger = logging.getLogger("meshlib.server")

#: The first byte of a TLS connection: the record type of a handshake.
_TLS_HANDSHAKE = 0x16

IdentityInput = Identity | IdentitySource | str | os.PathLike[str]


class Server:
    """An mTLS (and, if policy allows, plaintext) HTTP/1.1 server for an ASGI app.

    ::

        with Server(app, identity="/var/run/secrets/workload-spiffe-credentials",
                    policies=read_paths(["policies/"]), namespace="shop",
                    labels={"app": "cart"}) as server:
            ...  # serving on 127.0.0.1:server.port until the block ends

    Args:
        app: the ASGI 3 application (HTTP only; lifespan events are not sent).
        host: the address to listen on.
        port: the port; ``0`` picks a free one (read it from :attr:`port`).
        identity: the workload identity: an :class:`~meshlib.Identity`, an
            :class:`~meshlib.IdentitySource`, or a directory in Istio's layout
            (followed through rotations).
        policies: PeerAuthentication and AuthorizationPolicy resources (YAML text, a
            :class:`~meshlib.config.ConfigSet`, resources, or a
            :class:`~meshlib.server.WorkloadPolicy`); ``None`` for none: PERMISSIVE, and
            every request allowed.
        namespace: the workload's namespace (selects policies).
        labels: the workload's labels (selects policies).
        audit_logger: where audit records go (``meshlib.audit`` by default).
        root_namespace: Istio's root namespace (mesh-wide policies).
        backend: ``"asyncio"`` or ``"trio"``, for :meth:`start` and :func:`serve`.
        handshake_timeout: seconds a client has to send its first byte and finish the
            TLS handshake.
        keepalive_timeout: seconds an idle connection waits for its next request.

    Raises:
        ConfigError: the policies have errors, or a CUSTOM AuthorizationPolicy.
        IdentityError: the identity cannot be read.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        identity: IdentityInput,
        policies: WorkloadPolicy | Policies | None = None,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        audit_logger: logging.Logger | None = None,
        root_namespace: str = ROOT_NAMESPACE,
        backend: str = "asyncio",
        handshake_timeout: float = 10.0,
        keepalive_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.identity = (
            identity if isinstance(identity, IdentitySource) else IdentitySource(identity)
        )
        self.middleware = AuthorizationMiddleware(
            app,
            policies,
            namespace,
            labels,
            audit_logger=audit_logger,
            root_namespace=root_namespace,
        )
        self.backend = backend
        self.handshake_timeout = handshake_timeout
        self.keepalive_timeout = keepalive_timeout
        self.contexts = ContextCache(self.identity)
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._task: Future[Any] | None = None

    # ------------------------------------------------------------------ public surface

    @property
    def port(self) -> int:
        """The port listened on (known once the server has started)."""
        if self._port is None:
            raise RuntimeError("the server has not started: no port yet")
        return self._port

    @property
    def policy(self) -> WorkloadPolicy:
        """The current policies of the workload."""
        return self.middleware.policy

    def apply(self, policies: WorkloadPolicy | Policies | None) -> None:
        """Replace the policies: new connections get the new mTLS mode, new requests the
        new authorization. Raises :class:`~meshlib.ConfigError` and changes nothing for a
        configuration with errors."""
        self.middleware.apply(policies)

    def start(self) -> Server:
        """Start serving in a background thread; returns once the port is listening."""
        if self._portal_cm is not None:
            raise RuntimeError("the server is already running")
        self._portal_cm = start_blocking_portal(self.backend)
        portal = self._portal_cm.__enter__()
        try:
            self._task, _ = portal.start_task(self.serve_forever, name="meshlib.server")
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            self._portal_cm = None
            raise
        return self

    def stop(self) -> None:
        """Stop serving: close the listener and every open connection, then return."""
        portal_cm, task = self._portal_cm, self._task
        self._portal_cm = self._task = None
        if portal_cm is None:
            return
        if task is not None:
            task.cancel()
        portal_cm.__exit__(None, None, None)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def serve_forever(
        self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve in the running event loop until cancelled (``task_status`` gets the port)."""
        material = self.contexts.current()  # built before the first client waits for it
        listener = self._bind()
        try:
            async with anyio.create_task_group() as group:
                task_status.started(self.port)
                logger.info(
                    "meshlib.server listening on %s:%d as %s",
                    self.host,
                    self.port,
                    material.identity.spiffe_id,
                )
                await self._accept(listener, group)
        finally:
            listener.close()

    # ------------------------------------------------------------------- connections

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.create_server((self.host, self._requested_port), family=family)
        listener.settimeout(0.0)  # non-blocking
        self._port = listener.getsockname()[1]
        return listener

    async def _accept(self, listener: socket.socket, group: TaskGroup) -> None:
        while True:
            await anyio.wait_readable(listener)
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as error:  # out of descriptors, say: back off a little
                logger.warning("accept failed: %s", error)
                await anyio.sleep(0.1)
                continue
            sock.settimeout(0.0)  # non-blocking
            group.start_soon(self._connection, sock, (str(address[0]), int(address[1])))

    async def _connection(self, sock: socket.socket, client: tuple[str, int]) -> None:
        stream: ByteStream | None = None
        try:
            with anyio.fail_after(self.handshake_timeout):
                first = await _peek(sock)
            if not first:
                return
            local = sock.getsockname()
            server = (str(local[0]), int(local[1]))
            mode = self.policy.mtls_mode(server[1])
            tls = first[0] == _TLS_HANDSHAKE
            if (tls and mode is MutualTLSMode.DISABLE) or (
                not tls and mode is MutualTLSMode.STRICT
            ):
                logger.info(
                    "refused a %s connection from %s:%d: PeerAuthentication mode is %s",
                    "TLS" if tls else "plaintext",
                    *client,
                    mode.name,
                )
                return
            socket_stream: SocketStream = await SocketStream.from_socket(sock)
            stream = socket_stream
            extensions: dict[str, Any] = {}
            if tls:
                accepted = await self._handshake(socket_stream, client)
                if accepted is None:
                    return
                stream, extensions["tls"] = accepted
            connection = HttpConnection(
                stream,
                self.middleware,
                scheme="https" if tls else "http",
                client=client,
                server=server,
                extensions=extensions,
                keepalive_timeout=self.keepalive_timeout,
            )
            await connection.run()
        except TimeoutError:
            logger.debug("connection from %s:%d timed out before its first request", *client)
        except (OSError, anyio.BrokenResourceError, anyio.EndOfStream) as error:
            logger.debug("connection from %s:%d failed: %s", *client, error)
        except Exception:  # one connection's failure must never stop the listener
            logger.exception("connection from %s:%d failed", *client)
        finally:
            if stream is not None:
                with anyio.CancelScope(shield=True):
                    await stream.aclose()
            else:
                sock.close()

    async def _handshake(
        self, stream: SocketStream, client: tuple[str, int]
    ) -> tuple[TLSStream, dict[str, Any]] | None:
        """The TLS stream and its ASGI extension, or ``None`` for a refused peer."""
        material: TlsMaterial = self.contexts.current()
        try:
            with anyio.fail_after(self.handshake_timeout):
                tls = await TLSStream.wrap(
                    stream,
                    server_side=True,
                    ssl_context=material.context,
                    standard_compatible=False,
                )
        except (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream) as error:
            logger.info("refused a TLS connection from %s:%d: %s", *client, _cause(error))
            return None
        extension = material.tls_extension(tls.extra(TLSAttribute.ssl_object))
        peer = extension["spiffe_id"]
        domain = trust_domain_of(peer)
        if domain is None or domain not in material.trust_domains:
            logger.info(
                "refused a TLS connection from %s:%d: peer %s is not in trust domain %s",
                *client,
                peer or "(no spiffe:// URI SAN)",
                " or ".join(sorted(material.trust_domains)),
            )
            await tls.aclose()
            return None
        return tls, extension


def _cause(error: BaseException) -> str:
    cause = error.__cause__ if isinstance(error.__cause__, ssl.SSLError) else error
    return str(cause) or type(cause).__name__


async def _peek(sock: socket.socket) -> bytes:
    """The connection's first byte, left unread; empty if the client closed first."""
    while True:
        await anyio.wait_readable(sock)
        with contextlib.suppress(BlockingIOError, InterruptedError):
            return sock.recv(1, socket.MSG_PEEK)


def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    identity: IdentityInput,
    policies: WorkloadPolicy | Policies | None = None,
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    audit_logger: logging.Logger | None = None,
    root_namespace: str = ROOT_NAMESPACE,
    backend: str = "asyncio",
    handshake_timeout: float = 10.0,
    keepalive_timeout: float = 5.0,
) -> None:
    """Serve ``app`` in the calling thread until interrupted (see :class:`Server`)."""
    server = Server(
        app,
        host=host,
        port=port,
        identity=identity,
        policies=policies,
        namespace=namespace,
        labels=labels,
        audit_logger=audit_logger,
        root_namespace=root_namespace,
        backend=backend,
        handshake_timeout=handshake_timeout,
        keepalive_timeout=keepalive_timeout,
    )
    anyio.run(server.serve_forever, backend=backend)
