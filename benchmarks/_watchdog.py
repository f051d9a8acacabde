"""Run a command that cannot stop itself, and stop it when the benchmark is done with it.

``python benchmarks/_watchdog.py LIFETIME COMMAND...`` runs ``COMMAND`` and terminates
it (``SIGTERM``, then ``SIGKILL`` after a few seconds) as soon as this process's stdin
closes (the parent is done, or died), ``LIFETIME`` seconds pass, or this process gets
``SIGTERM``, whichever comes first; it exits with the command's status. So a server such
as nginx (``daemon off``) never outlives a benchmark run by much, even one killed hard.

Run by :mod:`benchmarks._processes`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

STOP_TIMEOUT = 5.0  # seconds to wait for the command to exit before killing it
POLL = 0.05  # seconds between checks that the command still runs


def main() -> None:
    """Run ``sys.argv[2:]`` for at most ``sys.argv[1]`` seconds (see the module doc)."""
    lifetime, command = float(sys.argv[1]), sys.argv[2:]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def wait_for_eof() -> None:
        # os.read, not sys.stdin: a daemon thread blocked in a buffered read would hold
        # the buffer's lock at interpreter shutdown, and Python aborts on that.
        while os.read(0, 4096):
            pass
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    deadline = time.monotonic() + lifetime
    while child.poll() is None and not stop.is_set() and time.monotonic() < deadline:
        stop.wait(POLL)
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    status = child.returncode
    sys.exit(status if status >= 0 else 128 - status)  # killed by a signal: 128 + its number


if __name__ == "__main__":
    main()
