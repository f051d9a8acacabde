"""Over Istio mTLS the principals are known: the mesh's own SPIFFE ID as the source, the
verified peer certificate's as the destination, its namespace the destination's."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.metrics import _internal as metrics_state

from meshlib import Identity
from meshlib._ca import init_ca, issue
from meshlib._telemetry import Telemetry
from tests.security.test_tls_client import CLIENT, REVIEWS, URL, mesh_for, tls_server
from tests.telemetry.conftest import Observed
from tests.transports.shells import Sent, Shell


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A development CA's identities for the client (productpage) and the server (reviews)."""
    ca = tmp_path_factory.mktemp("ca")
    init_ca(ca)
    made = {}
    for name, spiffe in (("client", CLIENT), ("reviews", REVIEWS)):
        folder = tmp_path_factory.mktemp(name)
        issue(ca, spiffe, folder)
        made[name] = folder
    return made


def test_principals_over_mtls(
    observed: Observed,
    shell: Shell,
    identities: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ISTIO_MUTUAL: the principals are the client's and the verified server's SPIFFE IDs."""
    # What metrics.set_meter_provider does (it may only run once per process).
    monkeypatch.setattr(metrics_state, "_METER_PROVIDER", observed.meter_provider)
    server = Identity.from_directory(identities["reviews"])
    with tls_server(server, tmp_path) as (port, _):
        mesh = mesh_for(port, identities["client"], tls="{mode: ISTIO_MUTUAL}")
        mesh.telemetry = Telemetry(mesh, metric_labels="full")  # every label, global provider
        [got] = shell.send(mesh, [Sent(URL)])
    assert got.status == 200
    labels = dict(observed.point("istio_requests").attributes)
    assert labels["source_principal"] == CLIENT
    assert labels["destination_principal"] == REVIEWS
    assert labels["destination_workload_namespace"] == "default"
    assert labels["connection_security_policy"] == "unknown"
