"""The examples in ``examples/`` run, exit 0 and print what the docs say they print.

Each example runs in its own interpreter, as a reader would run it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"
TIMEOUT = 30


def run(*args: str) -> str:
    """Run ``python ARGS`` from the repository root; fail unless it exits 0."""
    completed = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=EXAMPLES.parent,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def run_example(name: str) -> str:
    """Run ``examples/NAME`` and return what it printed."""
    return run(str(EXAMPLES / name))


def test_quickstart() -> None:
    """The quickstart routes to v1, sends ratings to its endpoint from code, then to v3."""
    output = run_example("quickstart.py")
    assert "sent to http://10.0.0.1:9080/reviews/0 (Host: reviews:9080)" in output
    assert "sent to http://10.0.2.1:9080/ratings/0" in output
    after = output.split("after mesh.apply():")[1]
    assert "subset=v3" in after


def test_canary_split() -> None:
    """The 80/20 split lands within a few points of 80 % and 20 %."""
    output = run_example("canary_split.py")
    shares = {m[0]: float(m[1]) for m in re.findall(r"(v\d): \d+ of 1000 \(([\d.]+)%\)", output)}
    assert set(shares) == {"v1", "v3"}
    assert 75 <= shares["v1"] <= 85


def test_header_routing() -> None:
    """Only an exact ``end-user: jason`` goes to v2."""
    output = run_example("header_routing.py")
    assert "end-user=jason: route jason -> subset v2" in output
    assert "end-user=Jason: route everyone-else -> subset v1" in output
    assert "end-user=(none): route everyone-else -> subset v1" in output


def test_async_trio() -> None:
    """Three concurrent requests on trio reach v1, and v2 receives their mirrors."""
    output = run_example("async_trio.py")
    assert output.count("200 from 10.0.0.1:9080 (subset v1)") == 3
    assert "mirrored copies received by v2: 3 (Host: reviews:9080)" in output


def test_local_replies() -> None:
    """Every failure gets Envoy's local reply: status, flags and body."""
    lines = run_example("local_replies.py").splitlines()
    expected = {
        "no rule matches the path": ("404", "NR"),
        "subset v2 is not defined": ("503", "NC"),
        "ratings has no endpoint": ("503", "UH"),
        "the same, from a gRPC client": ("200", "UH"),
        "the endpoint refuses connections": ("503", "UF"),
        "the route timeout expires": ("504", "UT"),
        "unknown host, REGISTRY_ONLY": ("502", "-"),
        "all is well": ("200", "-"),
    }
    for situation, (status, flag) in expected.items():
        line = next(line for line in lines if line.startswith(situation))
        status_seen, flags_seen = line[len(situation) :].split()[:2]
        assert status_seen == status, line
        assert flag in flags_seen.split(","), line
    assert any("grpc-status 14: no healthy upstream" in line for line in lines)


def test_retries() -> None:
    """retryOn 5xx retries 503s; the default policy does not; raise mode raises httpx's error."""
    output = run_example("retries.py")
    assert "reviews, retryOn 5xx: 200 flags=- attempts=3" in output
    assert "ratings, default policy: 503 flags=- attempts=1" in output
    refused = next(line for line in output.splitlines() if "connection refused" in line)
    assert {"UF", "URX"} <= set(refused.split("flags=")[1].split()[0].split(","))
    assert "upstream_errors='raise': httpx.ConnectError, 3 attempts" in output


def test_rewrite_headers() -> None:
    """Prefix rewrites replace only the matched prefix; redirects and direct responses."""
    output = run_example("rewrite_headers.py")
    assert "/api/books -> upstream path /v1/books" in output
    assert "/apis -> upstream path /v1s" in output
    assert "/items/42/reviews -> upstream path /v1/reviews/42" in output
    assert "'x-user': 'jason'" in output
    assert "cookie" not in output
    assert "/old-shop/cart -> 308 Location: http://catalog:8080/shop?id=7" in output
    assert "/healthz -> 200 'ok'" in output


def test_fault_injection() -> None:
    """About half the requests are aborted with FI; jason's are delayed (DI) but succeed."""
    output = run_example("fault_injection.py")
    aborted = re.search(r"503 FI 'fault filter abort': (\d+) of 200", output)
    assert aborted is not None
    assert 70 <= int(aborted[1]) <= 130
    assert "jason: 200 flags=DI" in output
    assert "waited the 50 ms delay: True" in output


def test_from_files() -> None:
    """A folder of YAML loads; a broken resource raises ConfigError with field paths."""
    output = run_example("from_files.py")
    assert "loaded: 2 DestinationRule, 2 ServiceEntry, 2 VirtualService" in output
    assert "jason: route jason, outbound|9080|v2|reviews.bookinfo.svc.cluster.local" in output
    assert "spec.http[0].route[0].weight: weight -10 < 0" in output
    assert 'spec.http[0].timeout: invalid duration "2 seconds"' in output


def test_validate_example_folder() -> None:
    """``meshlib validate`` accepts the example Bookinfo folder, printing nothing."""
    assert run("-m", "meshlib", "validate", str(EXAMPLES / "bookinfo")) == ""


def test_resilience() -> None:
    """One connection and one pending slot: the third request is 503 UO; the endpoint
    that answers 500 is ejected after three, the others share the rest."""
    lines = run_example("resilience.py").splitlines()
    assert lines[:3] == [
        "request 1: 200 flags=- x-envoy-overloaded=-",
        "request 2: 200 flags=- x-envoy-overloaded=-",
        "request 3: 503 flags=UO x-envoy-overloaded=true",
    ]
    served = dict(line.rsplit(": ", 1) for line in lines[3:])
    assert served["10.0.0.1:8000 500"] == "3"
    assert int(served["10.0.0.2:8000 200"]) + int(served["10.0.0.3:8000 200"]) == 27


def test_load_balancing() -> None:
    """Each user's five requests land on one endpoint, and the users use every endpoint;
    least request gives the slow endpoint well under its third, round robin exactly it."""
    lines = run_example("load_balancing.py").splitlines()
    users = [line for line in lines if line.startswith("x-user ")]
    assert len(users) == 8
    assert all(re.fullmatch(r"x-user \w+: 10\.0\.0\.\d:8000 5 of 5", line) for line in users)
    assert {line.split(": ")[1].split()[0] for line in users} == {
        "10.0.0.1:8000",
        "10.0.0.2:8000",
        "10.0.0.3:8000",
    }

    def counts(policy: str) -> dict[str, int]:
        line = next(line for line in lines if line.startswith(f"{policy}: "))
        return {m[0]: int(m[1]) for m in re.findall(r"(10\.0\.0\.\d):8000 (\d+)", line)}

    least = counts("LEAST_REQUEST")
    assert sum(least.values()) == 120
    assert least["10.0.0.3"] <= 30
    assert least["10.0.0.3"] < min(least["10.0.0.1"], least["10.0.0.2"])
    assert counts("ROUND_ROBIN") == {"10.0.0.1": 40, "10.0.0.2": 40, "10.0.0.3": 40}


def test_testing_example_suite_passes() -> None:
    """``pytest examples/testing``: the product-page tests of the testing guide pass."""
    output = run("-m", "pytest", "-q", "-p", "no:cacheprovider", "examples/testing")
    assert "5 passed" in output


def test_telemetry() -> None:
    """Console output: two CLIENT spans, one INTERNAL span, Istio metrics, the access log."""
    lines = run_example("telemetry.py").splitlines()
    received = [line.split()[-1] for line in lines if line.startswith("reviews got traceparent")]
    clients = [line for line in lines if line.startswith("span CLIENT 'GET'")]
    [internal] = [line for line in lines if line.startswith("span INTERNAL")]
    assert len(received) == len(clients) == 2
    assert received[0] != received[1]
    assert received[0].split("-")[1] == received[1].split("-")[1]  # one trace
    assert "http.response.status_code=503 error.type=503" in clients[0]
    assert "http.request.resend_count=1 http.response.status_code=200" in clients[1]
    assert "'GET reviews.bookinfo.svc.cluster.local'" in internal
    assert "meshlib.attempts=2" in internal
    requests = next(line for line in lines if line.startswith("metric istio_requests{"))
    assert "reporter=source,source_workload=productpage" in requests
    assert "destination_version=v2" in requests
    assert requests.endswith("response_code=200,response_flags=-} 1")
    [log] = [line for line in lines if line.startswith("meshlib.access: [")]
    assert '"GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 14 27 12' in log
    assert log.endswith(
        '"192.0.2.1:9080" outbound|9080||reviews.bookinfo.svc.cluster.local - - - - reviews-route'
    )


def test_mtls() -> None:
    """productpage reaches reviews over Istio mTLS and is named by its SPIFFE ID;
    ratings is denied by the AuthorizationPolicy."""
    lines = run_example("mtls.py").splitlines()
    assert lines == [
        "productpage -> 200 hello spiffe://cluster.local/ns/default/sa/productpage",
        "ratings     -> 403 RBAC: access denied",
    ]
