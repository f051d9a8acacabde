"""The ``meshlib`` command line: ``validate``, ``explain``, ``demo`` and ``ca``."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from meshlib._exceptions import ConfigError
from meshlib.config import ConfigSet, Problem, Severity, read_paths

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


def _explain(args: argparse.Namespace) -> int:
    from meshlib._mesh import Mesh  # not needed by ``validate``

    found: ConfigSet = read_paths(args.files, namespace=args.namespace)
    if found.errors:
        _report(found.errors)
        return EXIT_UNUSABLE if found.unreadable else EXIT_INVALID
    try:
        mesh = Mesh(found.resources, namespace=args.namespace, labels=dict(args.labels))
        explanation = mesh.explain(args.method, args.url, headers=_joined(args.headers))
    except ConfigError as error:
        _report(error.problems)
        return EXIT_INVALID
    except ValueError as error:  # not an absolute http(s) URL
        print(f"meshlib explain: error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(json.dumps(explanation.to_dict(), indent=2) if args.json else explanation)
    return EXIT_VALID


def _report(problems: Sequence[Problem]) -> None:
    """Configuration problems, one line each as ``validate`` prints them, on stderr (stdout
    carries the explanation)."""
    for problem in problems:
        print(problem, file=sys.stderr)


def _joined(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Repeated headers joined with ``,``, as Envoy joins them for matching."""
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def _header(text: str) -> tuple[str, str]:
    """``-H 'Name: value'``, as curl writes it."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _label(text: str) -> tuple[str, str]:
    """``--labels key=value``."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def _demo(_: argparse.Namespace) -> int:
    from meshlib._demo import run_demo

    status: int = run_demo()
    return status


def _ca_init(args: argparse.Namespace) -> int:
    from meshlib._ca import ROOT_CERT_FILE, ROOT_KEY_FILE, init_ca

    try:
        init_ca(args.directory, trust_domain=args.trust_domain, rsa=args.rsa)
    except (OSError, ValueError) as error:
        print(f"meshlib ca init: error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"wrote {os.path.join(args.directory, ROOT_CERT_FILE)}")
    print(f"wrote {os.path.join(args.directory, ROOT_KEY_FILE)} (the CA's private key)")
    return EXIT_VALID


def _ca_issue(args: argparse.Namespace) -> int:
    from meshlib._ca import issue
    from meshlib._identity import FILES

    try:
        identity = issue(args.directory, args.spiffe, args.out, hours=args.hours, rsa=args.rsa)
    except (OSError, ValueError) as error:
        print(f"meshlib ca issue: error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    expiry = identity.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"issued {identity.spiffe_id}, valid until {expiry}")
    for name in FILES:
        print(f"wrote {os.path.join(args.out, name)}")
    return EXIT_VALID


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
    _add_explain(commands)
    demo = commands.add_parser("demo", help="run the Bookinfo demo on loopback")
    demo.set_defaults(handler=_demo)
    _add_ca(commands)
    return parser


def _add_ca(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ca = commands.add_parser(
        "ca",
        help="a development CA issuing Istio-style workload certificates",
        description=(
            "A development certificate authority: a self-signed root, and SPIFFE workload "
            "certificates in Istio's file layout. Exit status: 0 written, 2 bad input."
        ),
    )
    actions = ca.add_subparsers(dest="action", required=True)
    init = actions.add_parser(
        "init",
        help="create a root: root-cert.pem and root-key.pem",
        description="Create a self-signed root CA (root-cert.pem, root-key.pem) in DIR.",
    )
    init.add_argument("directory", metavar="DIR", help="where to write the CA")
    init.add_argument(
        "--trust-domain",
        default="cluster.local",
        metavar="TD",
        help="the mesh's trust domain, the root's O= (default: %(default)s)",
    )
    init.add_argument("--rsa", action="store_true", help="RSA-2048 instead of ECDSA P-256")
    init.set_defaults(handler=_ca_init)
    issue = actions.add_parser(
        "issue",
        help="issue a workload certificate in Istio's layout",
        description=(
            "Sign a workload certificate for a SPIFFE ID with the CA in DIR and write "
            "cert-chain.pem, key.pem and root-cert.pem to OUTDIR."
        ),
    )
    issue.add_argument("directory", metavar="DIR", help="the CA's directory (ca init)")
    issue.add_argument(
        "--spiffe",
        required=True,
        metavar="ID",
        help="the workload's identity: spiffe://cluster.local/ns/NS/sa/SA",
    )
    issue.add_argument("--out", required=True, metavar="OUTDIR", help="where to write")
    issue.add_argument(
        "--hours",
        type=float,
        default=24.0,
        metavar="H",
        help="lifetime in hours (default: %(default)s, Istio's workload TTL)",
    )
    issue.add_argument("--rsa", action="store_true", help="RSA-2048 instead of ECDSA P-256")
    issue.set_defaults(handler=_ca_issue)


def _add_explain(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    explain = commands.add_parser(
        "explain",
        help="dry-run a request: which route, destinations and policies, and why",
        description=(
            "Explain what the mesh configured by the given files would do with a request, "
            "without sending it. Exit status: 0 explained, 1 invalid configuration, "
            "2 some input could not be read."
        ),
    )
    explain.add_argument(
        "-f",
        "--file",
        dest="files",
        action="append",
        required=True,
        metavar="PATH",
        help="a YAML file or folder (repeatable)",
    )
    explain.add_argument(
        "-n",
        "--namespace",
        default="default",
        help="the client's namespace, and that of resources that name none (default: %(default)s)",
    )
    explain.add_argument(
        "-H",
        "--header",
        dest="headers",
        action="append",
        type=_header,
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header (repeatable)",
    )
    explain.add_argument(
        "--labels",
        action="append",
        type=_label,
        default=[],
        metavar="KEY=VALUE",
        help="a label of the calling workload, for sourceLabels matches (repeatable)",
    )
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.add_argument("method", metavar="METHOD", help="the request method (GET, POST, ...)")
    explain.add_argument("url", metavar="URL", help="the request URL (http://reviews:9080/)")
    explain.set_defaults(handler=_explain)


class _QuietPipe(io.TextIOBase):
    """Standard output that goes quiet once its reader has gone (``meshlib … | head -1``).

    Writes after a broken pipe are dropped, so the command still finishes and exits with
    its own status, and no traceback reaches the terminal.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self._gone = False

    def write(self, text: str, /) -> int:
        if not self._gone:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        self._gone = True
        # Python flushes the real stdout once more at exit: point it at /dev/null.
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    quiet = _QuietPipe(sys.stdout)
    with contextlib.redirect_stdout(quiet):
        status: int = args.handler(args)
        quiet.flush()
    return status


def run() -> None:
    """Console-script entry point: run and exit with the status."""
    sys.exit(main())
