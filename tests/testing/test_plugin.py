"""The pytest plugin, run as users run it: small test suites under ``pytester``.

Each test writes a suite (YAML, tests, sometimes an ini file), runs pytest on it, and
checks the outcome and what the user reads when a test fails.
"""

from __future__ import annotations

import pytest

RATINGS_YAML = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings}}]
    retries: {attempts: 2, retryOn: 5xx}
"""

SERVICE_ENTRY = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}]
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run the suite in-process, as a user would from its directory."""
    return pytester.runpytest(*args, "-o", "asyncio_default_fixture_loop_scope=function")


def test_fixtures_markers_and_call_assertions(pytester: pytest.Pytester) -> None:
    """The ``meshlib`` marker loads YAML next to the test, ``fault`` injects for the
    test only, and ``mesh_backends`` records the calls."""
    pytester.makefile(".yaml", **{"mesh/ratings": RATINGS_YAML})
    pytester.makepyfile(
        """
        import httpx
        import pytest

        def stars(request):
            return httpx.Response(200, json={"stars": 5})

        @pytest.mark.meshlib("mesh")
        @pytest.mark.fault("ratings", delay=7)
        def test_delayed(mesh, mesh_backends):
            mesh_backends.mount("ratings", stars)
            client = httpx.Client(transport=mesh_backends.transport())
            response = client.get("http://ratings:9080/ratings/0")
            assert response.extensions["meshlib"].elapsed == 7.0
            assert mesh.clock.now() == 7.0
            mesh_backends.assert_called("ratings", times=1, statuses=[200])

        @pytest.mark.meshlib("mesh")
        def test_no_fault_leaks_here(mesh, mesh_backends):
            mesh_backends.mount("ratings", stars)
            client = httpx.Client(transport=mesh_backends.transport())
            response = client.get("http://ratings:9080/ratings/0")
            assert response.extensions["meshlib"].flags == ()

        @pytest.mark.meshlib("mesh")
        @pytest.mark.fault("ratings", abort=503)
        def test_aborted_is_not_retried(mesh, mesh_backends):
            mesh_backends.mount("ratings", stars)
            client = httpx.Client(transport=mesh_backends.transport())
            assert client.get("http://ratings:9080/ratings/0").status_code == 503
            mesh_backends.assert_called("ratings", times=0)
        """
    )
    result = run(pytester, "--strict-markers")
    result.assert_outcomes(passed=3)


def test_a_failed_call_assertion_tells_what_happened(pytester: pytest.Pytester) -> None:
    """The user sees the expected count, the statuses, and every call that was made."""
    pytester.makefile(".yaml", **{"mesh/ratings": RATINGS_YAML})
    pytester.makepyfile(
        """
        import httpx
        import pytest

        @pytest.mark.meshlib("mesh")
        def test_flaky(mesh, mesh_backends):
            answers = iter([503, 200])
            mesh_backends.mount("ratings", lambda request: httpx.Response(next(answers)))
            client = httpx.Client(transport=mesh_backends.transport())
            client.get("http://ratings:9080/ratings/0")
            mesh_backends.assert_called("ratings", statuses=[200])
        """
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    shown = [line.lstrip("E ").rstrip() for line in result.stdout.lines]
    first = shown.index("AssertionError: ratings answered [503, 200], expected [200]")
    assert shown[first + 1 : first + 4] == [
        "upstream calls made:",
        "1. GET ratings.default.svc.cluster.local at 192.0.2.1:9080 /ratings/0: 503",
        "2. GET ratings.default.svc.cluster.local at 192.0.2.1:9080 /ratings/0: 200",
    ]


def test_ini_option_and_namespace(pytester: pytest.Pytester) -> None:
    """``meshlib_config`` (relative to the ini file) and ``meshlib_namespace`` configure
    the mesh of every test without a marker."""
    pytester.makefile(
        ".yaml",
        **{
            "config/ratings": RATINGS_YAML.replace(
                "{name: ratings}", "{name: ratings, namespace: shop}"
            )
        },
    )
    pytester.makeini(
        """
        [pytest]
        meshlib_config = config
        meshlib_namespace = shop
        """
    )
    pytester.makepyfile(
        """
        def test_configured(mesh):
            assert mesh.workload.namespace == "shop"
            route = mesh.explain("GET", "http://ratings:9080/").route
            assert route is not None and route.retries.attempts == 2
        """
    )
    run(pytester).assert_outcomes(passed=1)


def test_async_tests_with_anyio_and_pytest_asyncio(pytester: pytest.Pytester) -> None:
    """Marker faults reach requests made from anyio (asyncio and trio) and pytest-asyncio
    tests, whatever task they run in."""
    pytester.makefile(".yaml", **{"mesh/ratings": RATINGS_YAML})
    pytester.makepyfile(
        """
        import httpx
        import pytest

        async def stars(request):
            return httpx.Response(200, json={"stars": 5})

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return request.param

        @pytest.mark.anyio
        @pytest.mark.meshlib("mesh")
        @pytest.mark.fault("ratings", abort=429)
        async def test_with_anyio(mesh, mesh_backends):
            mesh_backends.mount("ratings", stars)
            async with httpx.AsyncClient(transport=mesh_backends.async_transport()) as client:
                response = await client.get("http://ratings:9080/ratings/0")
            assert response.status_code == 429

        @pytest.mark.asyncio
        @pytest.mark.meshlib("mesh")
        @pytest.mark.fault("ratings", delay=3)
        async def test_with_pytest_asyncio(mesh, mesh_backends):
            mesh_backends.mount("ratings", stars)
            async with httpx.AsyncClient(transport=mesh_backends.async_transport()) as client:
                response = await client.get("http://ratings:9080/ratings/0")
            assert response.extensions["meshlib"].elapsed == 3.0
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=3)


def test_respx_mocks_beneath_the_mesh(pytester: pytest.Pytester) -> None:
    """respx mocks the endpoints the mesh calls; routing, retries and marker faults still
    happen in the mesh above it."""
    pytester.makefile(".yaml", **{"mesh/all": RATINGS_YAML + "---\n" + SERVICE_ENTRY})
    pytester.makepyfile(
        """
        import httpx
        import pytest
        import respx

        @respx.mock
        @pytest.mark.meshlib("mesh")
        def test_retried_on_the_mocked_endpoint(mesh):
            route = respx.get("http://10.0.0.1:9080/ratings/0").mock(
                side_effect=[httpx.Response(503), httpx.Response(200)]
            )
            client = httpx.Client(transport=mesh.transport())
            response = client.get("http://ratings:9080/ratings/0")
            assert response.status_code == 200
            assert route.call_count == 2
            assert route.calls[0].request.headers["host"] == "ratings:9080"

        @respx.mock
        @pytest.mark.meshlib("mesh")
        @pytest.mark.fault("ratings", abort=500)
        def test_fault_before_the_mock(mesh):
            route = respx.get("http://10.0.0.1:9080/ratings/0").respond(200)
            client = httpx.Client(transport=mesh.transport())
            assert client.get("http://ratings:9080/ratings/0").status_code == 500
            assert route.call_count == 0
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_pytest_httpx_mocks_beneath_the_mesh(pytester: pytest.Pytester) -> None:
    """pytest-httpx's ``httpx_mock`` answers for the endpoint the mesh picked."""
    pytester.makefile(".yaml", **{"mesh/all": RATINGS_YAML + "---\n" + SERVICE_ENTRY})
    pytester.makepyfile(
        """
        import httpx
        import pytest

        @pytest.mark.meshlib("mesh")
        def test_mocked(mesh, httpx_mock):
            httpx_mock.add_response(url="http://10.0.0.1:9080/ratings/0", json={"stars": 4})
            client = httpx.Client(transport=mesh.transport())
            response = client.get("http://ratings:9080/ratings/0")
            assert response.json() == {"stars": 4}
            assert httpx_mock.get_requests()[0].headers["x-envoy-attempt-count"] == "1"
        """
    )
    run(pytester).assert_outcomes(passed=1)
