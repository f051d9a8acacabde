"""Fault injection: abort half of the requests, and delay every one of jason's.

``abort`` answers without calling the upstream (flag ``FI``); ``delay`` waits before
sending (flag ``DI``). Each has its own percentage and its own draw. Faults are never
retried, and a delay does not count against the route timeout.
"""

from collections import Counter

import httpx

import meshlib

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http}]
  endpoints: [{address: 10.0.0.4}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    fault:
      delay: {fixedDelay: 50ms, percentage: {value: 100}}
    timeout: 10ms
    route: [{destination: {host: ratings}}]
  - fault:
      abort: {httpStatus: 503, percentage: {value: 50}}
    route: [{destination: {host: ratings}}]
"""


def backend(request: httpx.Request) -> httpx.Response:
    """The upstream always answers 200."""
    return httpx.Response(200, text=request.url.path)


def main() -> None:
    """Count aborts over 200 requests, then time a delayed one."""
    mesh = meshlib.Mesh.from_yaml(CONFIG, seed=3)
    transport = mesh.transport(lambda _upstream: httpx.MockTransport(backend))
    with httpx.Client(transport=transport) as client:
        outcomes: Counter[str] = Counter()
        for _ in range(200):
            response = client.get("http://ratings:9080/ratings/0")
            flags = response.extensions["meshlib"].response_flags
            outcomes[f"{response.status_code} {flags} {response.text!r}"] += 1
        for outcome, count in sorted(outcomes.items()):
            print(f"{outcome}: {count} of 200")
        response = client.get("http://ratings:9080/ratings/0", headers={"end-user": "jason"})
        info = response.extensions["meshlib"]
        print(f"jason: {response.status_code} flags={info.response_flags}")
        print(f"  waited the 50 ms delay: {info.elapsed >= 0.05}; the 10 ms timeout started after")


if __name__ == "__main__":
    main()
