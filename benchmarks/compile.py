"""Configuration load cost: YAML parsing, then validation and compilation, measured apart.

The input is 1,000 VirtualServices (three rules each: a header match, a regex match with
weights and retries, and a prefix match) and 1,000 DestinationRules with subsets and
policies. Parsing is compared with a bare ``yaml.load_all(..., CSafeLoader)`` of the same
text, which is the floor for any loader that reads YAML with libyaml.

Run: ``python -m benchmarks.compile``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import yaml

from benchmarks._report import save
from meshlib._compile import Workload, compile_table
from meshlib.config._load import _Reader
from meshlib.config._yaml import iter_documents

SERVICES = 1_000
ROUNDS = 7

VIRTUAL_SERVICE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: svc-{i}
  namespace: ns-{ns}
spec:
  hosts:
  - svc-{i}
  http:
  - name: canary-users
    match:
    - headers:
        end-user:
          exact: user-{i}
    route:
    - destination:
        host: svc-{i}
        subset: v2
  - name: api
    match:
    - uri:
        regex: /api/v[0-9]+/items/[a-z0-9-]+
    route:
    - destination:
        host: svc-{i}
        subset: v1
      weight: 90
    - destination:
        host: svc-{i}
        subset: v2
      weight: 10
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: 5xx,connect-failure,reset
    timeout: 10s
  - name: default
    match:
    - uri:
        prefix: /
    route:
    - destination:
        host: svc-{i}
        subset: v1
"""

DESTINATION_RULE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: svc-{i}
  namespace: ns-{ns}
spec:
  host: svc-{i}
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
    connectionPool:
      tcp:
        maxConnections: 100
        connectTimeout: 5s
      http:
        http1MaxPendingRequests: 50
        maxRetries: 3
    outlierDetection:
      consecutive5xxErrors: 5
      interval: 10s
      baseEjectionTime: 30s
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
"""


def stream() -> str:
    """The benchmark's YAML stream: every VirtualService, then every DestinationRule."""
    documents = [VIRTUAL_SERVICE.format(i=i, ns=i % 10) for i in range(SERVICES)]
    documents += [DESTINATION_RULE.format(i=i, ns=i % 10) for i in range(SERVICES)]
    return "---\n".join(documents)


def best(measure: Callable[[], object]) -> tuple[float, float]:
    """Median and best wall time of ``ROUNDS`` runs, in seconds."""
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        measure()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    """Measure and print parse, validate+compile, and the bare-libyaml floor."""
    text = stream()
    documents = [d.data for d in iter_documents(text)]

    def bare() -> object:
        return list(yaml.load_all(text, Loader=yaml.CSafeLoader))

    def parse() -> object:
        return list(iter_documents(text))

    def validate_and_compile() -> object:
        reader = _Reader("default")
        from meshlib.config._load import _Stream
        from meshlib.config._yaml import Locator

        stream_reader = _Stream(reader, None, Locator(text))
        for number, data in enumerate(documents, start=1):
            stream_reader.read_document(data, number)
        assert not reader.problems, reader.problems[:3]
        return compile_table(reader.resources, Workload())

    bare_median, _ = best(bare)
    parse_median, _ = best(parse)
    compile_median, _ = best(validate_and_compile)
    results = {
        "virtual_services": SERVICES,
        "destination_rules": SERVICES,
        "yaml_bytes": len(text),
        "bare_libyaml_ms": round(bare_median * 1e3, 1),
        "parse_ms": round(parse_median * 1e3, 1),
        "parse_ratio_to_bare_libyaml": round(parse_median / bare_median, 3),
        "validate_and_compile_ms": round(compile_median * 1e3, 1),
        "target_validate_and_compile_ms": 300,
        "target_parse_ratio": 1.1,
    }
    for key, value in results.items():
        print(f"{key:32} {value}")
    print(f"saved to {save('compile', results)}")


if __name__ == "__main__":
    main()
