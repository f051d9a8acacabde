"""A minimal HTTP/1.1 keep-alive server for the HTTP benchmarks, run in its own process.

Every request gets the same ``200 OK`` with a 2-byte body; connections stay open. It is
a raw-socket server with one thread per connection: the benchmark clients are sequential
(one request in flight per connection), and a blocking ``recv``/``sendall`` pair is the
cheapest way to answer one request at a time in Python. It understands only requests
without a body (the benchmarks send ``GET``): a request ends at its blank line.

The server prints its port on stdout, then serves until its stdin closes (the parent
exited or stopped it) or ``--lifetime`` seconds pass, whichever comes first, so it never
outlives a benchmark run by much.

Run by :mod:`benchmarks._processes`; standalone: ``python benchmarks/_server.py``.
"""

from __future__ import annotations

import argparse
import os
import socket
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


def answer(connection: socket.socket) -> None:
    """Answer every request on ``connection`` until the peer closes it."""
    pending = b""
    with connection:
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                return
            if not data:
                return
            pending += data
            count = pending.count(END_OF_HEAD)
            if count:
                pending = pending[pending.rindex(END_OF_HEAD) + len(END_OF_HEAD) :]
                connection.sendall(RESPONSE * count)


def exit_when_stdin_closes() -> None:
    """End the process when the parent closes our stdin (or dies)."""
    sys.stdin.buffer.read()
    os._exit(0)


def serve(port: int, lifetime: float) -> None:
    """Listen on 127.0.0.1:``port`` (0: any free port), print the port, serve forever."""
    listener = socket.create_server(("127.0.0.1", port), backlog=128)
    print(listener.getsockname()[1], flush=True)
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    timer = threading.Timer(lifetime, os._exit, (0,))
    timer.daemon = True
    timer.start()
    while True:
        connection, _ = listener.accept()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=answer, args=(connection,), daemon=True).start()


def main() -> None:
    """Parse ``--port`` and ``--lifetime``, then serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=300.0, help="seconds")
    args = parser.parse_args()
    serve(args.port, args.lifetime)


if __name__ == "__main__":
    main()
