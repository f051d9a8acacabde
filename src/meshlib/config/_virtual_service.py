"""VirtualService: Istio's ``networking/v1alpha3/virtual_service.proto`` as frozen data.

Field names are the proto's; YAML keys are their camelCase JSON names. Semantics and
defaults are documented where meshlib applies them (routing, retries, faults); this module
only describes the shape. See ``istio-api.md`` §1.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from meshlib.config._schema import Bytes, Int32, OneofGroups, UInt32
from meshlib.config._values import Duration, Percent

__all__ = [
    "CorsPolicy",
    "Delegate",
    "Destination",
    "HTTPBody",
    "HTTPDirectResponse",
    "HTTPFaultInjection",
    "HTTPMatchRequest",
    "HTTPMirrorPolicy",
    "HTTPRedirect",
    "HTTPRetry",
    "HTTPRewrite",
    "HTTPRoute",
    "HTTPRouteDestination",
    "HeaderOperations",
    "Headers",
    "L4MatchAttributes",
    "PortSelector",
    "RedirectPortSelection",
    "RegexRewrite",
    "RouteDestination",
    "StringMatch",
    "TCPRoute",
    "TLSMatchAttributes",
    "TLSRoute",
    "UnmatchedPreflights",
    "VirtualService",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class PortSelector:
    """``PortSelector``: a service port by number."""

    number: UInt32 = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Destination:
    """``Destination``: a service (``host``), optionally a subset and a port."""

    host: str = ""
    subset: str = ""
    port: PortSelector | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StringMatch:
    """``StringMatch``: one of exact, prefix or regex (RE2, whole-string match)."""

    _oneofs: ClassVar[OneofGroups] = (("exact", "prefix", "regex"),)

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderOperations:
    """``Headers.HeaderOperations``: set, add and remove headers."""

    set: Mapping[str, str] = field(default_factory=dict)
    add: Mapping[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Headers:
    """``Headers``: header operations on the request and on the response."""

    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPMatchRequest:
    """``HTTPMatchRequest``: conditions that must all hold for a rule to match."""

    name: str = ""
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: Mapping[str, StringMatch] = field(default_factory=dict)
    port: UInt32 = 0
    source_labels: Mapping[str, str] = field(default_factory=dict)
    gateways: tuple[str, ...] = ()
    query_params: Mapping[str, StringMatch] = field(default_factory=dict)
    ignore_uri_case: bool = False
    without_headers: Mapping[str, StringMatch] = field(default_factory=dict)
    source_namespace: str = ""
    stat_prefix: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPRouteDestination:
    """``HTTPRouteDestination``: a destination with a relative weight and headers."""

    destination: Destination | None = None
    weight: Int32 = 0
    headers: Headers | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteDestination:
    """``RouteDestination``: a weighted destination of a TCP or TLS route."""

    destination: Destination | None = None
    weight: Int32 = 0


class RedirectPortSelection(enum.Enum):
    """``HTTPRedirect.RedirectPortSelection``."""

    FROM_PROTOCOL_DEFAULT = 0
    FROM_REQUEST_PORT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPRedirect:
    """``HTTPRedirect``: answer with a redirect instead of forwarding."""

    _oneofs: ClassVar[OneofGroups] = (("port", "derive_port"),)

    uri: str | None = None
    prefix_rewrite: str | None = None
    authority: str = ""
    port: UInt32 | None = None
    derive_port: RedirectPortSelection | None = None
    scheme: str = ""
    redirect_code: UInt32 = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPBody:
    """``HTTPBody``: a direct response body, as text or as base64 bytes."""

    _oneofs: ClassVar[OneofGroups] = (("string", "bytes"),)

    string: str | None = None
    bytes: Bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPDirectResponse:
    """``HTTPDirectResponse``: answer with a fixed status and body."""

    status: UInt32 = 0
    body: HTTPBody | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Delegate:
    """``Delegate``: hand the route over to a delegate VirtualService."""

    name: str = ""
    namespace: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegexRewrite:
    """``RegexRewrite``: replace every RE2 ``match`` in the path by ``rewrite``."""

    match: str = ""
    rewrite: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPRewrite:
    """``HTTPRewrite``: rewrite the path prefix or the authority before forwarding."""

    uri: str = ""
    authority: str = ""
    uri_regex_rewrite: RegexRewrite | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPRetry:
    """``HTTPRetry``: how many times and on what to retry."""

    attempts: Int32 = 0
    per_try_timeout: Duration | None = None
    retry_on: str = ""
    retry_remote_localities: bool | None = None
    retry_ignore_previous_hosts: bool | None = None
    backoff: Duration | None = None


class UnmatchedPreflights(enum.Enum):
    """``CorsPolicy.UnmatchedPreflights``."""

    UNSPECIFIED = 0
    FORWARD = 1
    IGNORE = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class CorsPolicy:
    """``CorsPolicy``: cross-origin rules (a server-side concern, parsed and kept)."""

    allow_origin: tuple[str, ...] = ()
    allow_origins: tuple[StringMatch, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: Duration | None = None
    allow_credentials: bool | None = None
    unmatched_preflights: UnmatchedPreflights = UnmatchedPreflights.UNSPECIFIED


@dataclass(frozen=True, slots=True, kw_only=True)
class Delay:
    """``HTTPFaultInjection.Delay``: delay a share of the requests."""

    _oneofs: ClassVar[OneofGroups] = (("fixed_delay", "exponential_delay"),)

    percent: Int32 = 0
    fixed_delay: Duration | None = None
    exponential_delay: Duration | None = None
    percentage: Percent | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Abort:
    """``HTTPFaultInjection.Abort``: answer a share of the requests with an error."""

    _oneofs: ClassVar[OneofGroups] = (("http_status", "grpc_status", "http2_error"),)

    http_status: Int32 | None = None
    grpc_status: str | None = None
    http2_error: str | None = None
    percentage: Percent | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPFaultInjection:
    """``HTTPFaultInjection``: a delay and/or an abort."""

    delay: Delay | None = None
    abort: Abort | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPMirrorPolicy:
    """``HTTPMirrorPolicy``: one mirror destination with its own percentage."""

    destination: Destination | None = None
    percentage: Percent | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPRoute:
    """``HTTPRoute``: one rule of ``http``; the first matching rule wins."""

    name: str = ""
    match: tuple[HTTPMatchRequest, ...] = ()
    route: tuple[HTTPRouteDestination, ...] = ()
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: Duration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: tuple[HTTPMirrorPolicy, ...] = ()
    mirror_percent: UInt32 | None = None
    mirror_percentage: Percent | None = None
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class L4MatchAttributes:
    """``L4MatchAttributes``: conditions of a TCP route."""

    destination_subnets: tuple[str, ...] = ()
    port: UInt32 = 0
    source_subnet: str = ""
    source_labels: Mapping[str, str] = field(default_factory=dict)
    gateways: tuple[str, ...] = ()
    source_namespace: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSMatchAttributes:
    """``TLSMatchAttributes``: conditions of a TLS (SNI) route."""

    sni_hosts: tuple[str, ...] = ()
    destination_subnets: tuple[str, ...] = ()
    port: UInt32 = 0
    source_labels: Mapping[str, str] = field(default_factory=dict)
    gateways: tuple[str, ...] = ()
    source_namespace: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TCPRoute:
    """``TCPRoute``: parsed and kept; meshlib routes HTTP only."""

    match: tuple[L4MatchAttributes, ...] = ()
    route: tuple[RouteDestination, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSRoute:
    """``TLSRoute``: parsed and kept; meshlib routes HTTP only."""

    match: tuple[TLSMatchAttributes, ...] = ()
    route: tuple[RouteDestination, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualService:
    """``VirtualService``: routing rules for the hosts it names."""

    hosts: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    http: tuple[HTTPRoute, ...] = ()
    tls: tuple[TLSRoute, ...] = ()
    tcp: tuple[TCPRoute, ...] = ()
    export_to: tuple[str, ...] = ()
