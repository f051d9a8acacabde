"""Load a folder of Istio YAML, and see what an invalid resource looks like.

``Mesh.from_paths`` reads files and folders (recursively, in path order); a Kubernetes
``List`` is read item by item. ``namespace`` is the client's namespace and the namespace
of resources that name none. Configuration Istio would reject raises ``ConfigError``
listing every problem, each with its file, document, resource and field path.
"""

from collections import Counter
from pathlib import Path

import httpx

import meshlib

HERE = Path(__file__).parent

BROKEN = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: -10
    timeout: 2 seconds
"""


def backend(request: httpx.Request) -> httpx.Response:
    """Every endpoint answers 200."""
    return httpx.Response(200, text=request.url.path)


def main() -> None:
    """Load ``bookinfo/``, route two requests, then try to load a broken resource."""
    mesh = meshlib.Mesh.from_paths(HERE / "bookinfo", namespace="bookinfo", seed=1)
    kinds = Counter(resource.kind for resource in mesh.resources)
    print("loaded:", ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())))
    transport = mesh.transport(lambda _upstream: httpx.MockTransport(backend))
    with httpx.Client(transport=transport) as client:
        for user in ("jason", "ann"):
            response = client.get("http://reviews:9080/reviews/0", headers={"end-user": user})
            info = response.extensions["meshlib"]
            print(f"{user}: route {info.route}, {info.cluster}")
    try:
        meshlib.Mesh.from_yaml(BROKEN)
    except meshlib.ConfigError as error:
        for problem in error.problems:
            print(f"problem: {problem}")


if __name__ == "__main__":
    main()
