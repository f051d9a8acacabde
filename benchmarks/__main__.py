"""Run the benchmarks in turn: configuration load, HTTP end to end, routing, hashing,
load balancing, resilience policies, telemetry, Istio mutual TLS.

Run: ``python -m benchmarks`` (4 to 6 minutes), ``python -m benchmarks --quick`` for a
smoke run (the compile benchmark has no quick mode), or name some:
``python -m benchmarks http routing``. Each benchmark prints its table and saves
``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

__all__ = ["BENCHMARKS", "main"]

#: Module name → (what it measures, whether its ``main`` takes ``argv`` with ``--quick``).
BENCHMARKS = {
    "compile": ("YAML parse, validate and compile", False),
    "http": ("meshlib transports against plain httpx", True),
    "routing": ("the routing decision alone, by number of hosts", True),
    "hashring": ("consistent-hash tables: build and lookup", True),
    "balancing": ("load balancers: cost per pick by endpoint count, cluster builds", True),
    "resilience": ("retries, timeouts, circuit breakers, outlier detection per request", True),
    "telemetry": ("spans, Istio metrics and the access log: cost per request", True),
    "mtls": ("Istio mTLS against plaintext, kept-alive and per new connection (nginx)", True),
}


def run(name: str, *, quick: bool) -> None:
    """Import ``benchmarks.<name>`` (only now, so one benchmark's imports cannot stop
    the others from running) and call its ``main``."""
    title, takes_argv = BENCHMARKS[name]
    print(f"\n== {name}: {title} ==")
    module = importlib.import_module(f"benchmarks.{name}")
    if takes_argv:
        module.main(["--quick"] if quick else [])
    else:
        module.main()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the named benchmarks (all by default), passing ``--quick`` where it applies."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="short runs where available")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(BENCHMARKS)})"
        )
    for name in args.names or BENCHMARKS:
        run(name, quick=args.quick)


if __name__ == "__main__":
    main()
