"""meshlib: an in-process, sidecar-less service-mesh client for httpx.

Configured from the VirtualService, DestinationRule and ServiceEntry YAML that Istio
reads, it gives outbound httpx calls what an Istio sidecar would give them::

    import httpx, meshlib

    mesh = meshlib.Mesh.from_paths("mesh/")
    client = httpx.Client(transport=mesh.transport())
    response = client.get("http://reviews:9080/reviews/0")
    response.extensions["meshlib"]  # MeshInfo(route=..., destination=..., flags=...)
"""

from meshlib._endpoints import Endpoint
from meshlib._exceptions import ConfigError, MeshError
from meshlib._identity import Identity, IdentityError, IdentitySource
from meshlib._info import MeshInfo
from meshlib._mesh import Mesh, UpstreamErrors
from meshlib._transports import AsyncMeshTransport, MeshTransport
from meshlib._transports._common import Upstream
from meshlib._version import __version__

__all__ = [
    "AsyncMeshTransport",
    "ConfigError",
    "Endpoint",
    "Identity",
    "IdentityError",
    "IdentitySource",
    "Mesh",
    "MeshError",
    "MeshInfo",
    "MeshTransport",
    "Upstream",
    "UpstreamErrors",
    "__version__",
]
