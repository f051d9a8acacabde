"""Async on trio: concurrent requests through one mesh, and a mirror to v2.

The same code runs on asyncio (``asyncio.run(main())``). Mirrored copies are fire and
forget: they run in the transport's task group, which ``async with httpx.AsyncClient``
opens and waits for on the way out. On trio a mirror needs that ``async with``.
"""

import httpx
import trio

import meshlib

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
    mirror: {host: reviews, subset: v2}
"""

received: list[tuple[str, str]] = []


async def backend(request: httpx.Request) -> httpx.Response:
    """Every endpoint: note which address got the request and its Host, then answer."""
    await trio.sleep(0.01)
    received.append((request.url.host, request.headers["host"]))
    return httpx.Response(200, text=request.url.path)


async def fetch(client: httpx.AsyncClient, number: int) -> None:
    """One request, and what the mesh did with it."""
    response = await client.get(f"http://reviews:9080/reviews/{number}")
    info = response.extensions["meshlib"]
    print(f"reviews/{number}: {response.status_code} from {info.endpoint} (subset {info.subset})")


async def main() -> None:
    """Three requests at once; the mirrors have landed when the client is closed."""
    mesh = meshlib.Mesh.from_yaml(CONFIG)
    transport = mesh.async_transport(lambda _upstream: httpx.MockTransport(backend))
    async with httpx.AsyncClient(transport=transport) as client, trio.open_nursery() as nursery:
        for number in range(3):
            nursery.start_soon(fetch, client, number)
    mirrored = [host for address, host in received if address == "10.0.0.2"]
    print(f"mirrored copies received by v2: {len(mirrored)} (Host: {mirrored[0]})")


if __name__ == "__main__":
    trio.run(main)
