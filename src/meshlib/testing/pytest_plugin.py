"""meshlib's pytest plugin: the ``mesh`` and ``mesh_backends`` fixtures, and two markers.

Loaded automatically (the ``pytest11`` entry point). In a test::

    @pytest.mark.meshlib("mesh/")                     # YAML for this test's mesh
    @pytest.mark.fault("ratings", abort=500)          # a fault, for this test only
    def test_reviews_without_ratings(mesh, mesh_backends):
        mesh_backends.mount("ratings", ratings_handler)
        ...
        mesh_backends.assert_called("ratings", times=1)

* ``mesh``: a :class:`meshlib.Mesh` on a :class:`~meshlib.testing.VirtualClock` with
  seed 0, built from the paths of the closest ``meshlib`` marker (relative to the test
  file), else from the ``meshlib_config`` ini option (relative to the ini file), else
  empty. The marker's keyword arguments go to :class:`~meshlib.Mesh`.
* ``mesh_backends``: :class:`~meshlib.testing.Backends` for that mesh.
* ``@pytest.mark.fault(host, **options)``: :func:`meshlib.testing.fault` on the test's
  ``mesh`` for the whole test, from every thread and task (repeat the marker for more).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from meshlib._mesh import Mesh
from meshlib.testing._backends import Backends
from meshlib.testing._clock import VirtualClock
from meshlib.testing._faults import fault

__all__ = ["mesh", "mesh_backends"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ini options: the default configuration of the ``mesh`` fixture."""
    parser.addini(
        "meshlib_config",
        "YAML files or folders for the mesh fixture (relative to the ini file)",
        type="paths",
        default=[],
    )
    parser.addini(
        "meshlib_namespace", "the mesh fixture's namespace (default: default)", default=""
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the markers, so ``--strict-markers`` accepts them."""
    config.addinivalue_line(
        "markers",
        "meshlib(*paths, **options): the YAML and Mesh options of the test's `mesh` fixture",
    )
    config.addinivalue_line(
        "markers",
        "fault(host, delay=None, abort=None, grpc_status=None, percent=100, subset=None, "
        "path=None, headers=None): inject a fault into the test's `mesh` "
        "(meshlib.testing.fault)",
    )


@pytest.fixture
def mesh(request: pytest.FixtureRequest) -> Iterator[Mesh]:
    """A mesh for this test: virtual time, seed 0, YAML from the ``meshlib`` marker or
    the ``meshlib_config`` ini option, and the faults of the ``fault`` markers."""
    paths, options = _configuration(request)
    options.setdefault("clock", VirtualClock())
    options.setdefault("seed", 0)
    namespace = request.config.getini("meshlib_namespace")
    if namespace:
        options.setdefault("namespace", namespace)
    built = Mesh.from_paths(*paths, **options) if paths else Mesh(**options)
    with ExitStack() as faults:
        for marker in request.node.iter_markers("fault"):
            faults.enter_context(fault(*marker.args, mesh=built, **marker.kwargs))
        yield built


@pytest.fixture
def mesh_backends(mesh: Mesh) -> Backends:
    """In-memory endpoints for the test's ``mesh``: mount handlers, read the calls."""
    return Backends(mesh)


def _configuration(request: pytest.FixtureRequest) -> tuple[list[Path], dict[str, Any]]:
    marker = request.node.get_closest_marker("meshlib")
    if marker is not None:
        here = Path(request.node.path).parent
        return [here / path for path in marker.args], dict(marker.kwargs)
    return list(request.config.getini("meshlib_config")), {}
