"""The ``meshlib`` command line: ``validate``, ``explain`` and ``demo``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from meshlib.config import ConfigSet, Severity, read_paths

__all__ = ["main", "run"]

EXIT_VALID, EXIT_INVALID, EXIT_UNUSABLE = 0, 1, 2


def _validate(args: argparse.Namespace) -> int:
    found: ConfigSet = read_paths(args.paths, namespace=args.namespace)
    problems = [*found.unreadable, *found.problems]
    if not args.warnings:
        problems = [p for p in problems if p.severity is Severity.ERROR]
    if args.json:
        print(json.dumps([p.to_dict() for p in problems], indent=2))
    else:
        for problem in problems:
            print(problem)
    if found.unreadable:
        return EXIT_UNUSABLE
    return EXIT_INVALID if found.errors else EXIT_VALID


def _demo(_: argparse.Namespace) -> int:
    from meshlib._demo import run_demo

    status: int = run_demo()
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshlib", description="An in-process service-mesh client for httpx."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser(
        "validate",
        help="judge Istio YAML as Istio does",
        description=(
            "Validate Istio resources in files and folders as Istio does. Exit status: "
            "0 all valid, 1 something invalid, 2 some input could not be read."
        ),
    )
    validate.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or folders")
    validate.add_argument(
        "-n",
        "--namespace",
        default="default",
        help="namespace of resources that name none (default: %(default)s)",
    )
    validate.add_argument("--json", action="store_true", help="print problems as JSON")
    validate.add_argument(
        "--no-warnings",
        dest="warnings",
        action="store_false",
        help="print errors only, not valid-with-warning findings",
    )
    validate.set_defaults(handler=_validate)
    demo = commands.add_parser("demo", help="run the Bookinfo demo on loopback")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    status: int = args.handler(args)
    return status


def run() -> None:
    """Console-script entry point: run and exit with the status."""
    sys.exit(main())
