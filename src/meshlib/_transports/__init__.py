"""The transport shells: the only places meshlib does network I/O."""

from meshlib._transports._async import AsyncMeshTransport
from meshlib._transports._sync import MeshTransport

__all__ = ["AsyncMeshTransport", "MeshTransport"]
