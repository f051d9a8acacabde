"""meshlib's test kit: virtual time, faults from code, in-memory endpoints.

Make ``ratings`` slow or failing for one test, without YAML, without sockets and without
real waiting, and without other tests noticing::

    import httpx, meshlib
    from meshlib.testing import Backends, VirtualClock, fault

    mesh = meshlib.Mesh.from_paths("mesh/", clock=VirtualClock(), seed=1)
    backends = Backends(mesh)
    backends.mount("ratings", lambda request: httpx.Response(200, json={"stars": 5}))
    client = httpx.Client(transport=backends.transport())

    with fault("ratings", delay=7.0):
        response = client.get("http://ratings:9080/ratings/0")  # returns at once
    assert response.extensions["meshlib"].elapsed == 7.0

The pytest plugin (``meshlib.testing.pytest_plugin``, loaded automatically) adds the
``mesh`` and ``mesh_backends`` fixtures and the ``meshlib`` and ``fault`` markers.
"""

from meshlib.testing._backends import Backends, Handler, UpstreamCall
from meshlib.testing._clock import VirtualClock
from meshlib.testing._faults import FaultInjection, fault

__all__ = ["Backends", "FaultInjection", "Handler", "UpstreamCall", "VirtualClock", "fault"]
