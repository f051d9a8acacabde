"""The mTLS benchmark's servers when nginx is not installed, run in their own process.

Two listeners on 127.0.0.1 answer alike: one plaintext, one TLS that requires a client
certificate signed by ``--ca`` (TLS 1.2 or later, ALPN ``http/1.1`` only, as nginx
would answer). Every request gets the fixed ``200 OK`` of :mod:`benchmarks._server`, and
``GET /probe`` a one-line description of its connection in the format of the nginx
configuration of :mod:`benchmarks._processes`::

    conn=<number> requests=<on this connection> reused=<r or .> protocol=<TLS version>
    alpn=<negotiated> sni=<server name> verify=<SUCCESS or NONE>

(the TLS fields are empty on the plaintext listener). Connections stay open unless a
request says ``connection: close``. Like :mod:`benchmarks._server`: one thread per
connection, requests without a body only, and the process prints its ports (plaintext,
then TLS, on one line) and serves until its stdin closes or ``--lifetime`` seconds pass.

Run by :mod:`benchmarks._processes`; standalone:
``python benchmarks/_tls_server.py --cert C --key K --ca ROOT``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import ssl
import sys
import threading

BODY = b"ok"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/plain\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\n"
    b"\r\n" + BODY
)
END_OF_HEAD = b"\r\n\r\n"
PROBE = b"GET /probe "
CLOSE = b"\r\nconnection: close"

_numbers = itertools.count(1)  # connection numbers, shared by both listeners (as nginx's)
_handshake = threading.local()  # the SNI of the handshake running in this thread


def describe(connection: socket.socket, number: int, requests: int) -> bytes:
    """The ``/probe`` response for ``connection``."""
    fields = {"conn": str(number), "requests": str(requests)}
    if isinstance(connection, ssl.SSLSocket):
        fields |= {
            "reused": "r" if connection.session_reused else ".",
            "protocol": connection.version() or "",
            "alpn": connection.selected_alpn_protocol() or "",
            "sni": getattr(_handshake, "sni", None) or "",
            "verify": "SUCCESS" if connection.getpeercert() else "NONE",
        }
    else:
        fields |= dict.fromkeys(("reused", "protocol", "alpn", "sni", "verify"), "")
    body = (" ".join(f"{key}={value}" for key, value in fields.items()) + "\n").encode()
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def answer(connection: socket.socket, context: ssl.SSLContext | None) -> None:
    """Handshake (if ``context``), then answer every request until the peer closes."""
    number = next(_numbers)
    try:
        if context is not None:
            _handshake.sni = None
            connection = context.wrap_socket(connection, server_side=True)
    except (OSError, ssl.SSLError):
        connection.close()
        return
    pending = b""
    requests = 0
    with connection:
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                return
            if not data:
                return
            pending += data
            while END_OF_HEAD in pending:
                head, _, pending = pending.partition(END_OF_HEAD)
                requests += 1
                probe = head.startswith(PROBE)
                connection.sendall(describe(connection, number, requests) if probe else RESPONSE)
                if CLOSE in head.lower():
                    return


def server_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """Mutual TLS as the nginx server is configured: a client certificate from ``ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(ca)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["http/1.1"])
    context.sni_callback = _record_sni
    return context


def _record_sni(_: object, name: str | None, __: ssl.SSLContext) -> None:
    _handshake.sni = name


def accept(listener: socket.socket, context: ssl.SSLContext | None) -> None:
    """Accept connections on ``listener`` forever, a thread for each."""
    while True:
        connection, _ = listener.accept()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=answer, args=(connection, context), daemon=True).start()


def exit_when_stdin_closes() -> None:
    """End the process when the parent closes our stdin (or dies)."""
    sys.stdin.buffer.read()
    os._exit(0)


def serve(context: ssl.SSLContext, lifetime: float) -> None:
    """Listen on two free ports, print them (plaintext, TLS), serve until told to stop."""
    plain = socket.create_server(("127.0.0.1", 0), backlog=128)
    tls = socket.create_server(("127.0.0.1", 0), backlog=128)
    print(plain.getsockname()[1], tls.getsockname()[1], flush=True)
    timer = threading.Timer(lifetime, os._exit, (0,))
    timer.daemon = True
    timer.start()
    threading.Thread(target=accept, args=(plain, None), daemon=True).start()
    threading.Thread(target=accept, args=(tls, context), daemon=True).start()
    exit_when_stdin_closes()


def main() -> None:
    """Parse the TLS files and ``--lifetime``, then serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True, help="the server's certificate chain (PEM)")
    parser.add_argument("--key", required=True, help="the server's private key (PEM)")
    parser.add_argument("--ca", required=True, help="the roots client certificates chain to")
    parser.add_argument("--lifetime", type=float, default=300.0, help="seconds")
    args = parser.parse_args()
    serve(server_context(args.cert, args.key, args.ca), args.lifetime)


if __name__ == "__main__":
    main()
