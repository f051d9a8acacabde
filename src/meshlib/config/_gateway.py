"""Gateway: Istio's ``networking/v1alpha3/gateway.proto`` as frozen data.

meshlib is a sidecar, not a gateway: it parses Gateways so that configuration streams
containing them validate, and ignores VirtualServices bound only to gateways.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshlib.config._schema import UInt32

__all__ = ["Gateway", "Port", "Server", "ServerTLSMode", "ServerTLSSettings", "TLSProtocol"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Port:
    """``Port``: a listener port with its protocol and name."""

    number: UInt32 = 0
    protocol: str = ""
    name: str = ""
    target_port: UInt32 = 0


class ServerTLSMode(enum.Enum):
    """``ServerTLSSettings.TLSmode``."""

    PASSTHROUGH = 0
    SIMPLE = 1
    MUTUAL = 2
    AUTO_PASSTHROUGH = 3
    ISTIO_MUTUAL = 4
    OPTIONAL_MUTUAL = 5


class TLSProtocol(enum.Enum):
    """``ServerTLSSettings.TLSProtocol``."""

    TLS_AUTO = 0
    TLSV1_0 = 1
    TLSV1_1 = 2
    TLSV1_2 = 3
    TLSV1_3 = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSCertificate:
    """``ServerTLSSettings.TLSCertificate``."""

    server_certificate: str = ""
    private_key: str = ""
    ca_certificates: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerTLSSettings:
    """``ServerTLSSettings``: TLS on a gateway or sidecar listener."""

    https_redirect: bool = False
    mode: ServerTLSMode = ServerTLSMode.PASSTHROUGH
    server_certificate: str = ""
    private_key: str = ""
    ca_certificates: str = ""
    ca_crl: str = ""
    ca_cert_credential_name: str = ""
    credential_name: str = ""
    credential_names: tuple[str, ...] = ()
    tls_certificates: tuple[TLSCertificate, ...] = ()
    subject_alt_names: tuple[str, ...] = ()
    verify_certificate_spki: tuple[str, ...] = ()
    verify_certificate_hash: tuple[str, ...] = ()
    min_protocol_version: TLSProtocol = TLSProtocol.TLS_AUTO
    max_protocol_version: TLSProtocol = TLSProtocol.TLS_AUTO
    cipher_suites: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Server:
    """``Server``: one listener of a gateway and the hosts it exposes."""

    port: Port | None = None
    bind: str = ""
    hosts: tuple[str, ...] = ()
    tls: ServerTLSSettings | None = None
    default_endpoint: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Gateway:
    """``Gateway``: an ingress or egress proxy's listeners."""

    servers: tuple[Server, ...] = ()
    selector: Mapping[str, str] = field(default_factory=dict)
