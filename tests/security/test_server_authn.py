"""PeerAuthentication precedence, without sockets (``istio-api.md`` §4.1).

Each row is the PeerAuthentication policies of the mesh and the effective mTLS mode of
the workload ``shop`` / ``app: cart`` on ports 8080 and 9090.
"""

from __future__ import annotations

import pytest

from meshlib.config import MutualTLSMode
from meshlib.server import WorkloadPolicy

STRICT, PERMISSIVE, DISABLE = MutualTLSMode.STRICT, MutualTLSMode.PERMISSIVE, MutualTLSMode.DISABLE
WORKLOAD = "selector: {matchLabels: {app: cart}}"


def pa(spec: str, name: str = "pa", namespace: str = "shop", meta: str = "") -> str:
    """One PeerAuthentication document with a flow-style ``spec``."""
    return (
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        f"metadata: {{name: {name}, namespace: {namespace}{meta}}}\nspec: {{{spec}}}\n---\n"
    )


def mesh(mode: str) -> str:
    """The mesh-wide policy (root namespace, no selector)."""
    return pa(f"mtls: {{mode: {mode}}}", "mesh", "istio-system")


def namespace(mode: str) -> str:
    """The namespace-wide policy of ``shop``."""
    return pa(f"mtls: {{mode: {mode}}}", "namespace")


def workload(mode: str, ports: str = "", labels: str = WORKLOAD) -> str:
    """A workload policy of ``shop`` selecting ``labels``, with optional port levels."""
    levels = f", portLevelMtls: {{{ports}}}" if ports else ""
    return pa(f"{labels}, mtls: {{mode: {mode}}}{levels}", "workload")


TABLE = [
    ("no policy: PERMISSIVE", "", PERMISSIVE, PERMISSIVE),
    ("mesh STRICT", mesh("STRICT"), STRICT, STRICT),
    ("mesh UNSET: PERMISSIVE", mesh("UNSET"), PERMISSIVE, PERMISSIVE),
    ("mesh without mtls: PERMISSIVE", pa("", "mesh", "istio-system"), PERMISSIVE, PERMISSIVE),
    ("namespace overrides mesh", mesh("STRICT") + namespace("PERMISSIVE"), PERMISSIVE, PERMISSIVE),
    ("namespace UNSET inherits mesh", mesh("STRICT") + namespace("UNSET"), STRICT, STRICT),
    ("workload overrides namespace", namespace("STRICT") + workload("DISABLE"), DISABLE, DISABLE),
    ("workload UNSET inherits namespace", namespace("STRICT") + workload("UNSET"), STRICT, STRICT),
    ("workload UNSET inherits mesh through namespace UNSET", mesh("STRICT") + namespace("UNSET") + workload("UNSET"), STRICT, STRICT),
    ("a selector for other labels does not apply", namespace("STRICT") + workload("DISABLE", labels="selector: {matchLabels: {app: web}}"), STRICT, STRICT),
    ("port level overrides workload", workload("STRICT", "'8080': {mode: PERMISSIVE}"), PERMISSIVE, STRICT),
    ("port level UNSET inherits workload", mesh("PERMISSIVE") + workload("STRICT", "'8080': {mode: UNSET}"), STRICT, STRICT),
    ("port level under workload UNSET", mesh("STRICT") + workload("UNSET", "'9090': {mode: DISABLE}"), STRICT, DISABLE),
    ("other namespaces do not apply", pa("mtls: {mode: STRICT}", "other", "web"), PERMISSIVE, PERMISSIVE),
    ("selector policies in the root namespace are ignored", pa(f"{WORKLOAD}, mtls: {{mode: STRICT}}", "root-sel", "istio-system"), PERMISSIVE, PERMISSIVE),
    (
        "the oldest namespace policy wins",
        pa("mtls: {mode: DISABLE}", "newer", meta=", creationTimestamp: '2024-05-02T00:00:00Z'")
        + pa("mtls: {mode: STRICT}", "older", meta=", creationTimestamp: '2024-05-01T00:00:00Z'"),
        STRICT,
        STRICT,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policies", "port_8080", "port_9090"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE]
)
def test_peer_authentication_precedence(
    policies: str, port_8080: MutualTLSMode, port_9090: MutualTLSMode
) -> None:
    """The most specific scope that sets a mode wins; UNSET inherits; none is PERMISSIVE."""
    policy = WorkloadPolicy(policies, namespace="shop", labels={"app": "cart"})
    assert (policy.mtls_mode(8080), policy.mtls_mode(9090)) == (port_8080, port_9090)


def test_composed_policies_are_named() -> None:
    """The resolved settings name the mesh, namespace and workload policies they came from."""
    policy = WorkloadPolicy(
        mesh("STRICT") + namespace("UNSET") + workload("PERMISSIVE"),
        namespace="shop",
        labels={"app": "cart"},
    )
    assert policy.mtls.policies == ("istio-system/mesh", "shop/namespace", "shop/workload")
