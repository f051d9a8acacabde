"""The processes the HTTP benchmarks talk to: the local server and, optionally, HAProxy.

Both run as child processes, so their CPU never counts as the client's
(``time.process_time`` covers the benchmark process only). Both are bounded in time:
the server exits when its stdin closes or its lifetime ends; HAProxy is terminated when
the ``with`` block ends, and killed if it does not stop within a few seconds.
"""

from __future__ import annotations

import contextlib
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["haproxy", "haproxy_path", "local_server"]

SERVER_SCRIPT = Path(__file__).with_name("_server.py")
START_TIMEOUT = 10.0  # seconds to wait for a child to listen
STOP_TIMEOUT = 5.0  # seconds to wait for a child to exit before killing it

HAPROXY_CONFIG = """\
global
    nbthread 1
    maxconn 256
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend hop
    bind 127.0.0.1:{port}
    default_backend server
backend server
    server local 127.0.0.1:{server_port}
"""


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate ``process``, and kill it if it does not exit within ``STOP_TIMEOUT``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _read_port(process: subprocess.Popen[bytes]) -> int:
    """The port the server prints on its first line of stdout."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    line = process.stdout.readline() if ready else b""
    if not line.strip().isdigit():
        raise RuntimeError(f"the benchmark server did not start (got {line!r})")
    return int(line)


@contextlib.contextmanager
def local_server(lifetime: float) -> Iterator[int]:
    """Run the keep-alive server (:mod:`benchmarks._server`) in a child process.

    Yields its port on 127.0.0.1. The server stops when the block ends, and by itself
    after ``lifetime`` seconds at the latest.
    """
    process = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--lifetime", str(lifetime)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        yield _read_port(process)
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the server exits on EOF
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(1.0)
        _stop(process)


def haproxy_path() -> str | None:
    """The ``haproxy`` executable on PATH (or in /usr/sbin), if any."""
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"haproxy exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError("haproxy did not start listening")


@contextlib.contextmanager
def haproxy(executable: str, server_port: int) -> Iterator[int]:
    """Run one HAProxy hop (1 thread, keep-alive both sides) in front of ``server_port``.

    Yields the port HAProxy listens on; it is stopped when the block ends.
    """
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="meshlib-bench-") as folder:
        config = Path(folder) / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=port, server_port=server_port))
        process = subprocess.Popen(
            [executable, "-db", "-q", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        try:
            _wait_listening(port, process)
            yield port
        finally:
            _stop(process)
