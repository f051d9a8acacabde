"""What the engine asks a transport shell to do, and what the shell reports back.

The engine speaks in actions; the shells do the I/O and report outcomes. Every action
is a value, every outcome too, so the whole exchange can be replayed in a test. Nothing
changes one once built. The four built on every request (``Attempt``, ``Send``,
``Deliver``, ``Responded``) are not declared frozen only because a frozen dataclass
sets each field through ``object.__setattr__``, which makes it three times slower to
build.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from meshlib._core._cluster import ClusterKey, HostState
from meshlib._core._headers import HeaderEdits
from meshlib._core._limits import Ticket
from meshlib._core._replies import LocalReply
from meshlib._core._retry import Failure
from meshlib._core._tls_policy import TlsTarget

__all__ = [
    "Action",
    "Attempt",
    "Deliver",
    "Failed",
    "Outcome",
    "Raise",
    "Reply",
    "Resolve",
    "Responded",
    "RouteTimeout",
    "Send",
    "Shadow",
    "Sleep",
    "WaitForConnection",
]


@dataclass(slots=True)
class Attempt:
    """One request to send upstream.

    The URL is ``scheme://address:port`` + ``path`` + ``?query``; ``authority`` is the
    ``Host`` header (the service's, not the endpoint's). Timeouts are seconds; the
    ``deadline`` is absolute, on the engine's clock.
    """

    number: int
    scheme: str
    address: str
    port: int
    path: str
    query: str
    authority: str
    edits: HeaderEdits
    per_try_timeout: float | None = None
    deadline: float | None = None
    connect_timeout: float | None = None
    idle_timeout: float | None = None
    cluster: ClusterKey | None = None
    host: HostState | None = None
    tls: TlsTarget | None = None  # TLS origination (DestinationRule tls or auto-mTLS)

    @property
    def url(self) -> str:
        """The URL the inner transport is given."""
        address = f"[{self.address}]" if ":" in self.address else self.address
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{address}:{self.port}{self.path}{query}"


@dataclass(frozen=True, slots=True)
class Resolve:
    """Resolve these host names (DNS) and report the addresses with ``resolved``."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait this long (a fault delay or a retry backoff), on the mesh's clock."""

    seconds: float
    reason: str


@dataclass(frozen=True, slots=True)
class WaitForConnection:
    """The cluster's connections are all in use: wait until ``ticket.wake`` is called
    (the ticket was granted) or ``timeout`` seconds pass (None: no limit), then report.

    The shell sets ``ticket.wake`` under the mesh's lock, unless the ticket was granted
    already; ``wake`` is called under that lock and must not block.
    """

    ticket: Ticket
    timeout: float | None


@dataclass(frozen=True, slots=True)
class Shadow:
    """Send copies of the request to these mirrors; never wait for them."""

    attempts: tuple[Attempt, ...]


@dataclass(slots=True)
class Send:
    """Send ``attempt`` and report the outcome."""

    attempt: Attempt


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer with this local reply; the request is over."""

    reply: LocalReply


@dataclass(slots=True)
class Deliver:
    """Hand the last upstream response to the caller, with these header edits."""

    edits: HeaderEdits = field(default_factory=HeaderEdits)


@dataclass(frozen=True, slots=True)
class Raise:
    """Re-raise the last attempt's exception (``upstream_errors="raise"``)."""


Action = Resolve | Sleep | WaitForConnection | Shadow | Send | Reply | Deliver | Raise


@dataclass(slots=True)
class Responded:
    """The upstream answered: its status and its (lower-case) response headers."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Failed:
    """The attempt failed before response headers."""

    failure: Failure
    request_sent: bool = True
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RouteTimeout:
    """The route's deadline passed while the attempt was under way."""


Outcome = Responded | Failed | RouteTimeout
