"""DestinationRule: Istio's ``networking/v1alpha3/destination_rule.proto`` as frozen data.

Policies that apply after routing: load balancing, connection-pool limits, outlier
detection, upstream TLS; per subset and per port. See ``istio-api.md`` §2.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from meshlib.config._schema import Int32, Int64, OneofGroups, UInt32
from meshlib.config._selectors import WorkloadSelector
from meshlib.config._values import Duration
from meshlib.config._virtual_service import PortSelector

__all__ = [
    "ClientTLSSettings",
    "ConnectionPoolSettings",
    "ConsistentHashLB",
    "DestinationRule",
    "H2UpgradePolicy",
    "HTTPCookie",
    "HTTPCookieAttribute",
    "HTTPSettings",
    "Http2KeepAlive",
    "LoadBalancerSettings",
    "LocalityDistribute",
    "LocalityFailover",
    "LocalityLoadBalancerSetting",
    "MagLev",
    "OutlierDetection",
    "PortTrafficPolicy",
    "ProxyProtocol",
    "ProxyProtocolVersion",
    "RetryBudget",
    "RingHash",
    "SimpleLB",
    "Subset",
    "TCPKeepalive",
    "TCPSettings",
    "TLSMode",
    "TrafficPolicy",
    "TunnelSettings",
    "WarmupConfiguration",
]


class SimpleLB(enum.Enum):
    """``LoadBalancerSettings.SimpleLB``. Unset and ``UNSPECIFIED`` mean LEAST_REQUEST."""

    UNSPECIFIED = 0
    LEAST_CONN = 1
    RANDOM = 2
    PASSTHROUGH = 3
    ROUND_ROBIN = 4
    LEAST_REQUEST = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPCookieAttribute:
    """``ConsistentHashLB.HTTPCookie.Attribute``."""

    name: str = ""
    value: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPCookie:
    """``ConsistentHashLB.HTTPCookie``: hash on a cookie, generated when ``ttl`` is set."""

    name: str = ""
    path: str = ""
    ttl: Duration | None = None
    attributes: tuple[HTTPCookieAttribute, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RingHash:
    """``ConsistentHashLB.RingHash``."""

    minimum_ring_size: Int64 = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MagLev:
    """``ConsistentHashLB.MagLev``."""

    table_size: Int64 = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsistentHashLB:
    """``ConsistentHashLB``: soft affinity on a header, cookie, source IP or query parameter."""

    _oneofs: ClassVar[OneofGroups] = (
        ("http_header_name", "http_cookie", "use_source_ip", "http_query_parameter_name"),
        ("ring_hash", "maglev"),
    )

    http_header_name: str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool | None = None
    http_query_parameter_name: str | None = None
    ring_hash: RingHash | None = None
    maglev: MagLev | None = None
    minimum_ring_size: Int64 = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalityDistribute:
    """``LocalityLoadBalancerSetting.Distribute``: weights from one locality to others."""

    from_: str = field(default="", metadata={"key": "from"})
    to: Mapping[str, UInt32] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalityFailover:
    """``LocalityLoadBalancerSetting.Failover``: where a region fails over to."""

    from_: str = field(default="", metadata={"key": "from"})
    to: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalityLoadBalancerSetting:
    """``LocalityLoadBalancerSetting``."""

    distribute: tuple[LocalityDistribute, ...] = ()
    failover: tuple[LocalityFailover, ...] = ()
    failover_priority: tuple[str, ...] = ()
    enabled: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WarmupConfiguration:
    """``WarmupConfiguration``: Envoy slow start for new endpoints."""

    duration: Duration | None = None
    minimum_percent: float | None = None
    aggression: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadBalancerSettings:
    """``LoadBalancerSettings``: ``simple`` or ``consistentHash``, locality, warm-up."""

    _oneofs: ClassVar[OneofGroups] = (("simple", "consistent_hash"),)

    simple: SimpleLB | None = None
    consistent_hash: ConsistentHashLB | None = None
    locality_lb_setting: LocalityLoadBalancerSetting | None = None
    warmup_duration_secs: Duration | None = None
    warmup: WarmupConfiguration | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TCPKeepalive:
    """``ConnectionPoolSettings.TCPSettings.TcpKeepalive``."""

    probes: UInt32 = 0
    time: Duration | None = None
    interval: Duration | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TCPSettings:
    """``ConnectionPoolSettings.TCPSettings``. 0 means Istio's default (unlimited)."""

    max_connections: Int32 = 0
    connect_timeout: Duration | None = None
    tcp_keepalive: TCPKeepalive | None = None
    max_connection_duration: Duration | None = None
    idle_timeout: Duration | None = None


class H2UpgradePolicy(enum.Enum):
    """``ConnectionPoolSettings.HTTPSettings.H2UpgradePolicy``."""

    DEFAULT = 0
    DO_NOT_UPGRADE = 1
    UPGRADE = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Http2KeepAlive:
    """``ConnectionPoolSettings.HTTPSettings.Http2KeepAlive``: HTTP/2 PING settings."""

    interval: Duration | None = None
    timeout: Duration | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPSettings:
    """``ConnectionPoolSettings.HTTPSettings``. 0 means Istio's default (unlimited)."""

    http1_max_pending_requests: Int32 = 0
    http2_max_requests: Int32 = 0
    max_requests_per_connection: Int32 = 0
    max_retries: Int32 = 0
    idle_timeout: Duration | None = None
    h2_upgrade_policy: H2UpgradePolicy = H2UpgradePolicy.DEFAULT
    use_client_protocol: bool = False
    max_concurrent_streams: Int32 = 0
    http2_keep_alive: Http2KeepAlive | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionPoolSettings:
    """``ConnectionPoolSettings``: circuit-breaking limits for TCP and HTTP."""

    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutlierDetection:
    """``OutlierDetection``: passive health checking; absent means no ejection at all."""

    consecutive_errors: Int32 = 0
    split_external_local_origin_errors: bool = False
    consecutive_local_origin_failures: UInt32 | None = None
    consecutive_gateway_errors: UInt32 | None = None
    consecutive_5xx_errors: UInt32 | None = None
    interval: Duration | None = None
    base_ejection_time: Duration | None = None
    max_ejection_percent: Int32 = 0
    min_health_percent: Int32 = 0
    outlier_detection_http_error_codes: tuple[UInt32, ...] = ()


class TLSMode(enum.Enum):
    """``ClientTLSSettings.TLSmode``."""

    DISABLE = 0
    SIMPLE = 1
    MUTUAL = 2
    ISTIO_MUTUAL = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientTLSSettings:
    """``ClientTLSSettings``: TLS origination towards the upstream."""

    mode: TLSMode = TLSMode.DISABLE
    client_certificate: str = ""
    private_key: str = ""
    ca_certificates: str = ""
    credential_name: str = ""
    subject_alt_names: tuple[str, ...] = ()
    sni: str = ""
    insecure_skip_verify: bool | None = None
    ca_crl: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PortTrafficPolicy:
    """``TrafficPolicy.PortTrafficPolicy``: replaces the policy for one port."""

    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TunnelSettings:
    """``TrafficPolicy.TunnelSettings`` (TCP/TLS only; parsed and kept)."""

    protocol: str = ""
    target_host: str = ""
    target_port: UInt32 = 0


class ProxyProtocolVersion(enum.Enum):
    """``TrafficPolicy.ProxyProtocol.VERSION``."""

    V1 = 0
    V2 = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyProtocol:
    """``TrafficPolicy.ProxyProtocol`` (parsed and kept)."""

    version: ProxyProtocolVersion = ProxyProtocolVersion.V1


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryBudget:
    """``TrafficPolicy.RetryBudget``: Envoy's retry budget in place of ``maxRetries``."""

    percent: float | None = None
    min_retry_concurrency: UInt32 = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TrafficPolicy:
    """``TrafficPolicy``: the policy blocks of a host or a subset."""

    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: tuple[PortTrafficPolicy, ...] = ()
    tunnel: TunnelSettings | None = None
    proxy_protocol: ProxyProtocol | None = None
    retry_budget: RetryBudget | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Subset:
    """``Subset``: endpoints selected by labels, with an optional policy override."""

    name: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DestinationRule:
    """``DestinationRule``: what happens to traffic for ``host`` after routing."""

    host: str = ""
    traffic_policy: TrafficPolicy | None = None
    subsets: tuple[Subset, ...] = ()
    export_to: tuple[str, ...] = ()
    workload_selector: WorkloadSelector | None = None
