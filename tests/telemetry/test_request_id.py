"""``x-request-id`` on the wire, through every shell: one generated id on every attempt
and mirror of a request that has none, the application's own kept."""

from __future__ import annotations

import uuid

from meshlib import Mesh
from tests.servers import Answer, LocalServer, serving
from tests.telemetry.conftest import NAMESPACE, URL, service_entry, virtual_service
from tests.transports.shells import Sent, Shell


def mirror_entry(port: int) -> str:
    """A second service, ``mirror``, on a loopback port."""
    return (
        "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
        f"metadata: {{name: mirror, namespace: {NAMESPACE}}}\n"
        f"spec:\n  hosts: [mirror.{NAMESPACE}.svc.cluster.local]\n  location: MESH_INTERNAL\n"
        "  resolution: STATIC\n  ports: [{number: 8000, name: http, protocol: HTTP}]\n"
        f"  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]\n"
    )


def test_request_id_on_every_attempt_and_mirror(shell: Shell) -> None:
    """One generated id on both attempts and the mirror; the application's id kept."""
    main, mirror = LocalServer("svc"), LocalServer("mirror")
    main.behaviour = lambda seen: Answer(503 if len(main.seen) == 1 else 200)
    rule = (
        "retries: {attempts: 2, retryOn: 5xx}, mirror: {host: mirror}, "
        "mirrorPercentage: {value: 100}"
    )
    with serving(main, mirror):
        yaml = service_entry(main.port) + mirror_entry(mirror.port) + virtual_service(rule)
        mesh = Mesh.from_yaml(yaml, namespace=NAMESPACE, seed=3)
        got = shell.send(mesh, [Sent(URL), Sent(URL, headers={"x-request-id": "app-id"})])
    assert [g.status for g in got] == [200, 200]
    first, second, third = (seen.headers["x-request-id"] for seen in main.seen)
    assert first == second != "app-id"
    assert uuid.UUID(first).version == 4
    assert third == "app-id"
    assert sorted(seen.headers["x-request-id"] for seen in mirror.seen) == sorted(
        [first, "app-id"]
    )
