"""PeerAuthentication validation: Istio's webhook rules and the CRD's rules."""

from __future__ import annotations

import textwrap

import pytest

from meshlib.config import read_yaml

DOCUMENT = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: pa, namespace: shop}}
spec:
{spec}
"""

Problems = list[tuple[str, str]]


def load(spec: str) -> tuple[Problems, Problems]:
    """The (path, message) of every error and every warning for ``spec``."""
    found = read_yaml(DOCUMENT.format(spec=textwrap.indent(textwrap.dedent(spec), "  ")))
    return (
        [(problem.path, problem.message) for problem in found.errors],
        [(problem.path, problem.message) for problem in found.warnings],
    )


@pytest.mark.parametrize(
    "spec",
    [
        "{}",
        "mtls: {mode: STRICT}",
        "mtls: {mode: UNSET}",
        "{selector: {matchLabels: {app: db}}, portLevelMtls: {'5432': {mode: DISABLE}}}",
        "{selector: {matchLabels: {app: db}}, portLevelMtls: {'1': {}, '65535': {mode: STRICT}}}",
        "{selector: {matchLabels: {app: db, tier: ''}}, mtls: {mode: PERMISSIVE}}",
    ],
)
def test_valid(spec: str) -> None:
    """Mesh, namespace and workload policies Istio accepts load cleanly."""
    assert load(spec) == ([], [])


@pytest.mark.parametrize(
    ("spec", "errors"),
    [
        (
            "portLevelMtls: {'80': {mode: STRICT}}",
            [("spec", "mesh/namespace peer authentication cannot have port level mTLS")],
        ),
        (
            "{selector: {matchLabels: {}}, portLevelMtls: {'80': {mode: STRICT}}}",
            [("spec", "mesh/namespace peer authentication cannot have port level mTLS")],
        ),
        (
            "{selector: {matchLabels: {app: db}}, portLevelMtls: {}}",
            [
                (
                    "spec.portLevelMtls",
                    "port level mTLS, if defined, must have at least one element",
                )
            ],
        ),
        (
            "portLevelMtls: {}",
            [
                ("spec", "portLevelMtls requires selector"),
                (
                    "spec.portLevelMtls",
                    "port level mTLS, if defined, must have at least one element",
                ),
            ],
        ),
        (
            "{selector: {matchLabels: {app: db}}, portLevelMtls: {'0': {}, '65536': {}}}",
            [
                ('spec.portLevelMtls["0"]', "port must be in range 1..65535"),
                ('spec.portLevelMtls["65536"]', "port must be in range 1..65535"),
            ],
        ),
        (
            "{selector: {matchLabels: {app: db}}, portLevelMtls: {http: {}, '+80': {}}}",
            [
                ("spec.portLevelMtls.http", 'port "http" is not a port number'),
                ('spec.portLevelMtls["+80"]', 'port "+80" is not a port number'),
            ],
        ),
        (
            "selector: {matchLabels: {'': db}}",
            [('spec.selector.matchLabels[""]', 'empty key is not supported in selector: "=db"')],
        ),
        (
            "selector: {matchLabels: {'app*': db, tier: 'a*'}}",
            [
                (
                    'spec.selector.matchLabels["app*"]',
                    'wildcard is not supported in selector: "app*=db"',
                ),
                (
                    "spec.selector.matchLabels.tier",
                    'wildcard is not supported in selector: "tier=a*"',
                ),
            ],
        ),
        (
            f"selector: {{matchLabels: {{app: {'v' * 64}}}}}",
            [("spec.selector.matchLabels.app", "may not be longer than 63 characters")],
        ),
    ],
)
def test_invalid(spec: str, errors: Problems) -> None:
    """Each PeerAuthentication rule reports Istio's message on the field concerned."""
    assert load(spec)[0] == errors


def test_mode_must_be_a_known_name() -> None:
    """An unknown mTLS mode is rejected by the decoder, at the mode."""
    errors, _ = load("mtls: {mode: BLAH}")
    assert [path for path, _ in errors] == ["spec.mtls.mode"]


@pytest.mark.parametrize("spec", ["selector: {}", "selector: {matchLabels: {}}"])
def test_selector_without_labels_warns(spec: str) -> None:
    """A selector with no labels selects the whole namespace: valid, with Istio's warning."""
    assert load(spec) == ([], [("spec.selector", "workload selector specified without labels")])
