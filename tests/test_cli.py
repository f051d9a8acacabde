"""The ``meshlib`` command line: ``validate`` and ``explain`` output and exit statuses."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from meshlib._cli import main

BOOKINFO = Path(__file__).parent / "istio-samples" / "bookinfo-networking"
RULES = str(BOOKINFO / "destination-rule-all.yaml")
TEST_V2 = str(BOOKINFO / "virtual-service-reviews-test-v2.yaml")

VALID = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
"""
INVALID = VALID.replace(
    "destination: {host: reviews}", "destination: {host: reviews}\n      weight: -1"
)
INVALID_LINE = "#1: VirtualService default/reviews: spec.http[0].route[0].weight: weight -1 < 0"
SOURCE_LABELS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: mobile
    match: [{sourceLabels: {app: m}}]
    route: [{destination: {host: reviews}}]
  - match: [{uri: {prefix: /other}}]
    route: [{destination: {host: reviews}}]
"""


@pytest.fixture
def valid(tmp_path: Path) -> Path:
    """A file with one valid VirtualService."""
    path = tmp_path / "valid.yaml"
    path.write_text(VALID)
    return path


@pytest.fixture
def invalid(tmp_path: Path) -> Path:
    """A file whose VirtualService has a negative weight."""
    path = tmp_path / "invalid.yaml"
    path.write_text(INVALID)
    return path


def test_validate_valid_file_exits_0(valid: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Valid configuration: exit 0 and nothing printed (an empty list with --json)."""
    assert main(["validate", str(valid)]) == 0
    assert capsys.readouterr().out == ""
    assert main(["validate", "--json", str(valid)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_validate_invalid_file_exits_1_with_one_line_per_problem(
    invalid: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid configuration: exit 1, ``FILE#DOC: Kind ns/name: field.path: message``."""
    assert main(["validate", str(invalid)]) == 1
    assert capsys.readouterr().out.splitlines() == [f"{invalid}{INVALID_LINE}"]


def test_validate_invalid_file_as_json(invalid: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` prints each problem with its file, document, resource and field path."""
    assert main(["validate", "--json", str(invalid)]) == 1
    (problem,) = json.loads(capsys.readouterr().out)
    assert problem == {
        "severity": "error",
        "file": str(invalid),
        "document": 1,
        "line": problem["line"],
        "kind": "VirtualService",
        "namespace": "default",
        "name": "reviews",
        "path": "spec.http[0].route[0].weight",
        "message": "weight -1 < 0",
    }


@pytest.mark.parametrize("as_json", [False, True])
def test_validate_unreadable_input_exits_2(
    tmp_path: Path, valid: Path, as_json: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file makes the input unusable: exit 2, even beside a valid file."""
    missing = tmp_path / "missing.yaml"
    argv = ["validate", *(["--json"] if as_json else []), str(valid), str(missing)]
    assert main(argv) == 2
    out = capsys.readouterr().out
    if as_json:
        (problem,) = json.loads(out)
        assert problem["file"] == str(missing)
    else:
        assert out.startswith(f"{missing}: ")


def test_explain_prints_the_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    """``explain`` on Bookinfo files prints the matching rule and destination, exit 0."""
    argv = ["explain", "-f", RULES, "-f", TEST_V2, "-H", "end-user: jason"]
    assert main([*argv, "GET", "http://reviews:9080/reviews/0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GET http://reviews:9080/reviews/0\n")
    assert "virtual service: default/reviews" in out
    assert 'rule #0: matched on match[0]: headers.end-user exact "jason"' in out
    assert "outbound|9080|v2|reviews.default.svc.cluster.local" in out


def test_explain_reads_folders_and_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` prints ``to_dict()``; without the header rule #0 fails and #1 matches."""
    argv = ["explain", "-f", str(BOOKINFO), "-n", "default", "--json"]
    assert main([*argv, "GET", "http://ratings:9080/"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["authority"]["host"] == "ratings.default.svc.cluster.local"
    assert data["virtualService"]["name"]
    assert main(["explain", "-f", RULES, "-f", TEST_V2, "--json", "GET", "http://reviews/"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [rule["matched"] for rule in data["rules"]] == [False, True]
    assert data["destinations"][0]["subset"] == "v1"


def test_explain_labels_select_source_label_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--labels`` are the client's labels: a ``sourceLabels`` rule matches only with them."""
    path = tmp_path / "vs.yaml"
    path.write_text(SOURCE_LABELS)
    assert main(["explain", "-f", str(path), "--json", "GET", "http://reviews/"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rules"][0]["note"].startswith("every match item is for other workloads")
    assert data["reply"]["status"] == 404
    argv = ["explain", "-f", str(path), "--labels", "app=m", "--json", "GET", "http://reviews/"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["route"]["name"] == "mobile"


def test_explain_invalid_configuration_exits_1(
    invalid: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid configuration: the problems as ``validate`` prints them (on stderr), exit 1."""
    assert main(["explain", "-f", str(invalid), "GET", "http://reviews/"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"{invalid}{INVALID_LINE}"]


def test_explain_unreadable_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that cannot be read: exit 2 with the problem on stderr."""
    missing = tmp_path / "missing.yaml"
    assert main(["explain", "-f", str(missing), "GET", "http://reviews/"]) == 2
    assert capsys.readouterr().err.startswith(f"{missing}: ")


@pytest.mark.parametrize(
    "argv",
    [
        ["-H", "no colon", "GET", "http://reviews/"],
        ["--labels", "novalue", "GET", "http://reviews/"],
        ["GET", "reviews/"],
    ],
)
def test_explain_bad_arguments_exit_2(
    valid: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed header, label or URL is a usage error: exit 2 with a message."""
    try:
        status = main(["explain", "-f", str(valid), *argv])
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    assert status == 2
    assert "error:" in capsys.readouterr().err


def test_python_dash_m_meshlib_help_runs() -> None:
    """``python -m meshlib --help`` prints the usage with every command and exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "meshlib", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "validate" in done.stdout
    assert "explain" in done.stdout


def test_closed_stdout_pipe_exits_quietly_with_the_status(tmp_path: Path) -> None:
    """When the reader of stdout goes away (``| head -1``) there is no traceback and the
    exit status is still the command's own (1: invalid)."""
    path = tmp_path / "many.yaml"
    path.write_text("---\n".join(INVALID.replace("reviews}", f"r{i}}}", 1) for i in range(1500)))
    with subprocess.Popen(
        [sys.executable, "-m", "meshlib", "validate", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline()  # far more output than a pipe buffer holds
        process.stdout.close()
        errors = process.stderr.read()
        status = process.wait(timeout=60)
    assert errors == b""
    assert status == 1


def test_explain_transcripts_in_the_docs_are_current() -> None:
    """Every ``$ meshlib explain`` transcript in docs/cli.md prints what the docs show."""
    docs = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    transcripts = re.findall(r"^\$ meshlib (explain .*)\n((?:(?!\$ |```).*\n)*)", docs, re.M)
    assert len(transcripts) >= 2
    for command, shown in transcripts:
        completed = subprocess.run(
            [sys.executable, "-m", "meshlib", *shlex.split(command)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).parent.parent,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        assert completed.stdout == shown, command
