"""``x-request-id`` in the engine: generated when absent (a UUID4 from the mesh's seeded
random generator), set on every attempt and mirror, kept when the caller sent one, as
Envoy's ``generate_request_id`` does in an Istio sidecar (``envoy-semantics.md`` §9.4)."""

from __future__ import annotations

import uuid

import httpx

from meshlib._core._actions import Responded, Shadow
from meshlib._core._headers import HeaderEdits
from meshlib._core._request import RequestHead
from meshlib._transports._common import request_head
from tests.core.builders import URL, service_mesh
from tests.core.drive import drive


def request_id_of(edits: HeaderEdits) -> str | None:
    """The ``x-request-id`` the edits set (the last set wins), if any."""
    values = [value for name, value in edits.set if name == "x-request-id"]
    return values[-1] if values else None


def test_generated_and_shared_by_every_attempt() -> None:
    """No id sent: one UUID4 is made, and each attempt (retries too) carries it."""
    answers = iter([Responded(503), Responded(503)])
    mesh = service_mesh("retries: {attempts: 2, retryOn: 5xx}")
    trace = drive(mesh, URL, upstream=lambda attempt: next(answers, Responded(200)))
    ids = [request_id_of(attempt.edits) for attempt in trace.sends]
    assert len(ids) == 3
    assert len(set(ids)) == 1
    generated = uuid.UUID(ids[0])
    assert (generated.version, str(generated)) == (4, ids[0])


def test_kept_when_present() -> None:
    """The caller's id is kept as it is: no edit replaces it."""
    mesh = service_mesh()
    trace = drive(mesh, URL, headers={"x-request-id": "from-the-app"})
    assert request_id_of(trace.sends[0].edits) is None
    call = mesh.start_call(head({"x-request-id": "from-the-app"}))
    call.start()
    assert call.request_id == "from-the-app"


def test_repeatable_with_a_seed() -> None:
    """Two meshes with one seed make the same ids; another seed makes others."""

    def ids(seed: int) -> list[str | None]:
        """The ids of three requests through a mesh seeded with ``seed``."""
        mesh = service_mesh(seed=seed)
        return [request_id_of(drive(mesh, URL).sends[0].edits) for _ in range(3)]

    assert ids(11) == ids(11)
    assert ids(11) != ids(12)
    assert len(set(ids(11))) == 3


def test_mirrors_carry_it() -> None:
    """A mirrored copy carries the same id as the request it copies."""
    mesh = service_mesh("mirror: {host: svc}\nmirrorPercentage: {value: 100}")
    trace = drive(mesh, URL)
    [shadow] = [a for a in trace.actions if isinstance(a, Shadow)]
    [mirror] = shadow.attempts
    assert request_id_of(mirror.edits) == request_id_of(trace.sends[0].edits) is not None


def test_route_header_rules_come_after() -> None:
    """Envoy makes the id before routing, so a route's ``set`` of it wins."""
    mesh = service_mesh("headers: {request: {set: {x-request-id: pinned}}}")
    assert request_id_of(drive(mesh, URL).sends[0].edits) == "pinned"


def test_passthrough_and_local_replies_have_one() -> None:
    """An unknown host sent as is gets an id too; a local reply has one for its log."""
    mesh = service_mesh()
    passthrough = drive(mesh, "http://example.com/")
    assert request_id_of(passthrough.sends[0].edits) is not None
    no_route = service_mesh("match: [{uri: {exact: /other}}]")
    call = no_route.start_call(head({}))
    call.start()
    assert uuid.UUID(call.request_id).version == 4


def head(headers: dict[str, str]) -> RequestHead:
    """The engine's view of a GET of ``URL`` with ``headers``."""
    return request_head(httpx.Request("GET", URL, headers=headers))
