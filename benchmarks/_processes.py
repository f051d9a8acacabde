"""The processes the HTTP benchmarks talk to: the local servers, HAProxy and nginx.

All run as child processes, so their CPU never counts as the client's
(``time.process_time`` covers the benchmark process only). All are bounded in time:
the Python servers exit when their stdin closes or their lifetime ends; HAProxy is
terminated when the ``with`` block ends, and killed if it does not stop within a few
seconds; nginx runs under :mod:`benchmarks._watchdog`, which stops it in the same way as
the Python servers stop themselves.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "TlsFiles",
    "haproxy",
    "haproxy_path",
    "local_server",
    "nginx",
    "nginx_path",
    "nginx_version",
    "plain_nginx",
    "python_tls_servers",
]

SERVER_SCRIPT = Path(__file__).with_name("_server.py")
TLS_SERVER_SCRIPT = Path(__file__).with_name("_tls_server.py")
WATCHDOG_SCRIPT = Path(__file__).with_name("_watchdog.py")
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


def _read_ports(process: subprocess.Popen[bytes], count: int) -> list[int]:
    """The ``count`` ports the server prints on its first line of stdout."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    words = (process.stdout.readline() if ready else b"").split()
    if len(words) != count or not all(word.isdigit() for word in words):
        raise RuntimeError(f"the benchmark server did not start (got {b' '.join(words)!r})")
    return [int(word) for word in words]


def _read_port(process: subprocess.Popen[bytes]) -> int:
    """The port the server prints on its first line of stdout."""
    return _read_ports(process, 1)[0]


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
        _close_stdin_and_stop(process, 1.0)  # the server exits on EOF


def haproxy_path() -> str | None:
    """The ``haproxy`` executable on PATH (or in /usr/sbin), if any."""
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_listening(port: int, process: subprocess.Popen[bytes], name: str = "haproxy") -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{name} did not start listening")


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


# ------------------------------------------------------------------- mutual TLS servers


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A TLS server's PEM files: its certificate chain and key, and the roots its
    clients' certificates must chain to."""

    cert: Path
    key: Path
    ca: Path


#: What ``GET /probe`` answers, on both mTLS servers: the state of its connection.
PROBE_FIELDS = (
    ("conn", "$connection"),
    ("requests", "$connection_requests"),
    ("reused", "$ssl_session_reused"),
    ("protocol", "$ssl_protocol"),
    ("alpn", "$ssl_alpn_protocol"),  # from nginx 1.21.4
    ("sni", "$ssl_server_name"),
    ("verify", "$ssl_client_verify"),
)

NGINX_CONFIG = """\
worker_processes 1;
pid "{folder}/nginx.pid";
error_log "{folder}/error.log" warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    server_tokens off;
    default_type text/plain;
    keepalive_timeout 300s;
    keepalive_requests 1000000000;
    client_body_temp_path "{folder}/client_body";
    proxy_temp_path "{folder}/proxy";
    fastcgi_temp_path "{folder}/fastcgi";
    uwsgi_temp_path "{folder}/uwsgi";
    scgi_temp_path "{folder}/scgi";
    server {{
        listen 127.0.0.1:{plain_port};
        location / {{ return 200 "ok"; }}
        location = /probe {{ return 200 "{probe}\\n"; }}
    }}
{tls_server}}}
"""

#: The TLS server of :data:`NGINX_CONFIG`, when there is one.
NGINX_TLS_SERVER = """    server {{
        listen 127.0.0.1:{tls_port} ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate "{cert}";
        ssl_certificate_key "{key}";
        ssl_client_certificate "{ca}";
        ssl_verify_client on;
        location / {{ return 200 "ok"; }}
        location = /probe {{ return 200 "{probe}\\n"; }}
    }}
"""


def nginx_path() -> str | None:
    """The ``nginx`` executable on PATH (or in /usr/sbin), if any."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def nginx_version(executable: str) -> tuple[int, ...]:
    """nginx's version (``nginx -v``, printed on stderr), ``()`` if unreadable."""
    output = subprocess.run([executable, "-v"], capture_output=True, text=True, check=False)
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", output.stderr + output.stdout)
    return tuple(int(part) for part in found.groups()) if found else ()


def nginx_config(
    folder: Path,
    plain_port: int,
    tls_port: int | None,
    files: TlsFiles | None,
    version: tuple[int, ...],
) -> str:
    """One worker, two servers: plaintext on ``plain_port``, and (with ``files``) TLS on
    ``tls_port`` requiring a client certificate from ``files.ca``; both answer
    ``200 ok``, and ``/probe`` with :data:`PROBE_FIELDS` (``alpn`` empty before nginx
    1.21.4)."""
    probe = " ".join(
        f"{name}={variable if name != 'alpn' or version >= (1, 21, 4) else ''}"
        for name, variable in PROBE_FIELDS
    )
    tls_server = ""
    if files is not None:
        tls_server = NGINX_TLS_SERVER.format(
            tls_port=tls_port, cert=files.cert, key=files.key, ca=files.ca, probe=probe
        )
    return NGINX_CONFIG.format(
        folder=folder, plain_port=plain_port, probe=probe, tls_server=tls_server
    )


@contextlib.contextmanager
def nginx(executable: str, files: TlsFiles, lifetime: float) -> Iterator[tuple[int, int]]:
    """Run nginx (one worker, ``daemon off``, its configuration and logs in a temporary
    folder) under :mod:`benchmarks._watchdog`; yield its plaintext and TLS ports.

    It stops when the block ends, and after ``lifetime`` seconds at the latest.

    Raises:
        RuntimeError: nginx did not start; the message ends with its error log.
    """
    tls_port = _free_port()
    with _nginx(executable, files, tls_port, lifetime) as plain_port:
        yield plain_port, tls_port


@contextlib.contextmanager
def plain_nginx(executable: str, lifetime: float) -> Iterator[int]:
    """:func:`nginx` with its plaintext server only; yield its port."""
    with _nginx(executable, None, None, lifetime) as plain_port:
        yield plain_port


@contextlib.contextmanager
def _nginx(
    executable: str, files: TlsFiles | None, tls_port: int | None, lifetime: float
) -> Iterator[int]:
    version = nginx_version(executable) or (1, 21, 4)
    plain_port = _free_port()
    with tempfile.TemporaryDirectory(prefix="meshlib-bench-") as name:
        folder = Path(name)
        if os.name == "posix" and os.geteuid() == 0:
            folder.chmod(0o755)  # nginx's workers drop root and must reach their temp paths
        config = folder / "nginx.conf"
        config.write_text(nginx_config(folder, plain_port, tls_port, files, version))
        command: Sequence[str] = [executable, "-p", f"{folder}/", "-c", str(config)]
        if version >= (1, 19, 5):  # else the startup log goes to nginx's built-in path
            command = [*command, "-e", str(folder / "error.log")]
        command = [*command, "-g", "daemon off;"]
        with (folder / "stderr.log").open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, str(WATCHDOG_SCRIPT), f"{lifetime:.0f}", *command],
                stdin=subprocess.PIPE,
                stdout=stderr,
                stderr=stderr,
            )
        try:
            try:
                for port in (plain_port, tls_port):
                    if port is not None:
                        _wait_listening(port, process, "nginx")
            except RuntimeError as error:
                raise RuntimeError(f"{error}:\n{_log_tail(folder)}") from None
            yield plain_port
        finally:
            _close_stdin_and_stop(process, STOP_TIMEOUT + 1.0)


def _log_tail(folder: Path) -> str:
    """The end of nginx's error log, else of what it printed."""
    for name in ("error.log", "stderr.log"):
        path = folder / name
        if path.exists() and path.stat().st_size:
            return path.read_text(errors="replace")[-2000:]
    return "(nothing logged)"


def _close_stdin_and_stop(process: subprocess.Popen[bytes], grace: float) -> None:
    """Close ``process``'s stdin (it exits on EOF); terminate it if it is still running
    after ``grace`` seconds."""
    assert process.stdin is not None
    process.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    _stop(process)


@contextlib.contextmanager
def python_tls_servers(files: TlsFiles, lifetime: float) -> Iterator[tuple[int, int]]:
    """Run :mod:`benchmarks._tls_server` (the stand-in for nginx) in a child process;
    yield its plaintext and TLS ports. It stops when the block ends, and by itself after
    ``lifetime`` seconds at the latest."""
    tls = ("--cert", str(files.cert), "--key", str(files.key), "--ca", str(files.ca))
    process = subprocess.Popen(
        [sys.executable, str(TLS_SERVER_SCRIPT), *tls, "--lifetime", f"{lifetime:.0f}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        plain_port, tls_port = _read_ports(process, 2)
        yield plain_port, tls_port
    finally:
        _close_stdin_and_stop(process, 1.0)
