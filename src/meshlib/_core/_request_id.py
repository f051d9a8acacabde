"""``x-request-id``: the id Envoy's connection manager gives every request that has none.

Istio leaves Envoy's ``generate_request_id`` on: a request without ``x-request-id`` gets
a random UUID (version 4) before routing, and every upstream attempt and mirror carries
it; a request that has one keeps it (an application's outbound request is internal, so
Envoy trusts its id). meshlib draws the UUID from the mesh's own ``random.Random``, so a
seeded run gives the same ids again (``envoy-semantics.md`` §9.4).
"""

from __future__ import annotations

import random

__all__ = ["REQUEST_ID", "new_request_id"]

REQUEST_ID = "x-request-id"

# RFC 9562 version 4: the version nibble is 4, the variant bits are 10.
_KEEP = ~(0xF000 << 64) & ~(0xC000 << 48)
_VERSION_AND_VARIANT = (0x4000 << 64) | (0x8000 << 48)


def new_request_id(rng: random.Random) -> str:
    """A random UUID4 in its canonical text form, drawn from ``rng``."""
    text = f"{(rng.getrandbits(128) & _KEEP) | _VERSION_AND_VARIANT:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
