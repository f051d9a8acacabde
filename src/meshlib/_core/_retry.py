"""Retries: Istio's policy translated to Envoy's, and Envoy's decisions.

Translation follows ``pilot/pkg/networking/core/route/retry/retry.go`` (``istio-api.md``
§1.8): no ``retries`` block means the default policy (2 retries on
``connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`` with no
codes, so 503 is not retried); ``attempts: 0`` turns retries off; status codes in
``retryOn`` become retriable status codes. Decisions follow Envoy's
``RetryStateImpl::wouldRetryFromHeaders`` / ``wouldRetryFromReset`` (``envoy-semantics.md``
§1.1), backoff its jittered exponential strategy (§1.3).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshlib.config import HTTPRetry

__all__ = [
    "DEFAULT_RETRY",
    "NO_RETRY",
    "Failure",
    "RetryPolicy",
    "backoff_seconds",
    "retry_policy",
]


class Failure(enum.Enum):
    """How an attempt failed before response headers, in Envoy's reset-reason terms."""

    CONNECT = "remote connection failure"  # refused, unreachable, TLS handshake: UF
    CONNECT_TIMEOUT = "connection timeout"  # connectTimeout expired: UF
    RESET = "remote reset"  # HTTP/2 stream reset by the peer: UR
    TERMINATED = "connection termination"  # HTTP/1.1 connection closed or reset: UC
    REFUSED_STREAM = "remote refused stream reset"  # HTTP/2 REFUSED_STREAM: UR
    TIMEOUT = "per try timeout"  # the per-try timer fired: UT


_GRPC_CODES = {
    "cancelled": 1,
    "deadline-exceeded": 4,
    "resource-exhausted": 8,
    "internal": 13,
    "unavailable": 14,
}
_GATEWAY_ERRORS = frozenset({502, 503, 504})
_CONNECT_FAILURES = frozenset({Failure.CONNECT, Failure.CONNECT_TIMEOUT})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """An Envoy retry policy: how many retries, on what, and how to wait between them."""

    num_retries: int
    retry_on: frozenset[str]
    retriable_status_codes: frozenset[int] = frozenset()
    per_try_timeout: float | None = None
    backoff_base: float = 0.025
    retry_previous_hosts: bool = False
    retry_remote_localities: bool = False
    host_selection_attempts: int = 5
    previous_hosts_set: bool = False  # retryIgnorePreviousHosts was given explicitly
    #: The ``grpc-status`` values ``retry_on`` names (worked out once, from the tokens).
    grpc_statuses: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        statuses = frozenset(str(_GRPC_CODES[t]) for t in self.retry_on if t in _GRPC_CODES)
        object.__setattr__(self, "grpc_statuses", statuses)

    def retries_response(
        self, status: int, headers: Mapping[str, str], request_headers: Mapping[str, str]
    ) -> bool:
        """Should a response with ``status`` and ``headers`` be retried (Envoy's order:
        a response carrying ``x-envoy-ratelimited`` is retried only on
        ``envoy-ratelimited``, whatever else would match)? gRPC statuses are read from
        the response headers only (trailers never count)."""
        on = self.retry_on
        if "envoy-ratelimited" in on and "x-envoy-ratelimited" in headers:
            return True
        retry = (
            ("5xx" in on and status >= 500)
            or ("gateway-error" in on and status in _GATEWAY_ERRORS)
            or ("retriable-4xx" in on and status == 409)
            or ("retriable-status-codes" in on and status in self._codes(request_headers))
            or ("retriable-headers" in on and _has_retriable_header(headers, request_headers))
            or (bool(self.grpc_statuses) and headers.get("grpc-status") in self.grpc_statuses)
        )
        return retry and "x-envoy-ratelimited" not in headers

    def _codes(self, request_headers: Mapping[str, str]) -> frozenset[int]:
        extra = request_headers.get("x-envoy-retriable-status-codes")
        if not extra:
            return self.retriable_status_codes
        codes = {int(c) for c in extra.split(",") if c.strip().isdigit()}
        return self.retriable_status_codes | codes if codes else self.retriable_status_codes

    def retries_failure(self, failure: Failure, *, request_sent: bool) -> bool:
        """Should a failure before response headers be retried (``wouldRetryFromReset``)?"""
        on = self.retry_on
        if failure in _CONNECT_FAILURES and "connect-failure" in on:
            return True
        if "reset-before-request" in on and not request_sent:
            return True
        if failure is Failure.REFUSED_STREAM and "refused-stream" in on:
            return True
        return bool(on & {"reset", "5xx", "gateway-error"})


def _has_retriable_header(headers: Mapping[str, str], request_headers: Mapping[str, str]) -> bool:
    names = request_headers.get("x-envoy-retriable-header-names", "")
    return any(name.strip().lower() in headers for name in names.split(",") if name.strip())


#: Istio's default when a route has no ``retries`` block.
DEFAULT_RETRY = RetryPolicy(
    num_retries=2,
    retry_on=frozenset(
        {"connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"}
    ),
    retry_previous_hosts=True,
)
#: ``attempts: 0``, ``retries: {}``, and Istio's passthrough route: no retries at all.
NO_RETRY = RetryPolicy(num_retries=0, retry_on=frozenset())


def retry_policy(retries: HTTPRetry | None, *, consistent_hash: bool = False) -> RetryPolicy:
    """Translate ``HTTPRetry`` as pilot does (``retry.ConvertPolicy``)."""
    if retries is None:
        return DEFAULT_RETRY if not consistent_hash else _without_previous_hosts(DEFAULT_RETRY)
    if retries.attempts <= 0:
        return NO_RETRY
    tokens: set[str] = set()
    codes: set[int] = set()
    for token in (retries.retry_on or ",".join(sorted(DEFAULT_RETRY.retry_on))).split(","):
        if token.isdigit():
            codes.add(int(token))
            tokens.add("retriable-status-codes")
        elif token:
            tokens.add(token)
    ignore_previous = retries.retry_ignore_previous_hosts
    return RetryPolicy(
        num_retries=retries.attempts,
        retry_on=frozenset(tokens),
        retriable_status_codes=frozenset(codes),
        per_try_timeout=retries.per_try_timeout.seconds if retries.per_try_timeout else None,
        backoff_base=retries.backoff.seconds if retries.backoff else 0.025,
        retry_previous_hosts=ignore_previous
        if ignore_previous is not None
        else not consistent_hash,
        retry_remote_localities=bool(retries.retry_remote_localities),
        previous_hosts_set=ignore_previous is not None,
    )


def _without_previous_hosts(policy: RetryPolicy) -> RetryPolicy:
    return RetryPolicy(
        policy.num_retries,
        policy.retry_on,
        policy.retriable_status_codes,
        policy.per_try_timeout,
        policy.backoff_base,
        retry_previous_hosts=False,
    )


def backoff_seconds(retry: int, base: float, rng: random.Random) -> float:
    """Envoy's jittered exponential backoff before retry ``retry`` (1, 2, ...).

    Uniform over whole milliseconds in ``[0, min(base * 2 ** (retry - 1), 10 * base))``.
    """
    base_ms = max(1, round(base * 1000))
    ceiling = min(base_ms * 2 ** (retry - 1), 10 * base_ms)
    return rng.randrange(ceiling) / 1000
