"""meshlib: an in-process, sidecar-less service-mesh client for httpx.

Configured from the VirtualService, DestinationRule and ServiceEntry YAML that Istio
reads, it gives outbound httpx calls what an Istio sidecar would give them.
"""

from meshlib._exceptions import ConfigError, MeshError
from meshlib._version import __version__

__all__ = ["ConfigError", "MeshError", "__version__"]
