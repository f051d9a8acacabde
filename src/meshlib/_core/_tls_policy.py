"""TLS origination decisions: what a cluster's ``tls`` (or auto-mTLS) asks of a connection.

Istio's client side (``istio-api.md`` §2.6; ``envoy-semantics.md`` §8), decided per
cluster and endpoint, with no I/O:

* a DestinationRule ``tls`` with any mode but ``DISABLE`` originates TLS: the application
  calls ``http://``, the connection to the endpoint is TLS;
  - ``SIMPLE``: the server is verified against ``caCertificates`` (else the system roots);
    SNI is ``sni``, else the host the caller used; the certificate must carry one of the
    DestinationRule's ``subjectAltNames``, else the ServiceEntry's, else the SNI name
    (hostname verification); ``insecureSkipVerify`` skips all of it (with a warning);
  - ``MUTUAL``: the same, and the client presents ``clientCertificate``/``privateKey``;
  - ``ISTIO_MUTUAL``: the workload's own identity both ways; SNI
    ``outbound_.<port>_.<subset>_.<fqdn>``; ALPN exactly ``istio-http/1.1, istio,
    http/1.1``; the peer's URI SAN must equal one of the DestinationRule's
    ``subjectAltNames``, else one of the ServiceEntry's or the endpoints'
    ``spiffe://<trust domain>/ns/<namespace>/sa/<service account>`` (an empty list means
    chain validation only); host names are not checked;
* with no ``tls`` at any level, **auto-mTLS**: a ``MESH_INTERNAL`` service whose namespace
  no PeerAuthentication sets to ``DISABLE`` gets ``ISTIO_MUTUAL`` on the endpoints that
  take it (``security.istio.io/tlsMode: istio``, or a service account), plaintext on the
  others; only when the mesh has a workload identity to present.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from meshlib._compile._services import Service
from meshlib._core._cluster import ClusterKey, HostState
from meshlib.config import ClientTLSSettings, Location, TLSMode, TrafficPolicy

__all__ = ["ISTIO_ALPN", "NO_TLS", "ClusterTls", "TlsTarget", "cluster_tls", "spiffe_id"]

#: Istio's ALPN for HTTP/1.1 over ISTIO_MUTUAL (never ``istio-peer-exchange``).
ISTIO_ALPN = ("istio-http/1.1", "istio", "http/1.1")


@dataclass(frozen=True, slots=True)
class TlsTarget:
    """How to open one TLS connection: a hashable value, part of the inner transport's key.

    ``verify_sans`` are the acceptable peer SANs (URI SANs for ``ISTIO_MUTUAL``, DNS or URI
    otherwise); empty means the chain alone (``ISTIO_MUTUAL``) or the SNI name
    (``check_hostname``). ``ca_file``/``cert_file``/``key_file`` are the DestinationRule's
    paths (``""``: the system roots, or the workload identity for ``ISTIO_MUTUAL``).
    """

    mode: str
    sni: str
    verify_sans: tuple[str, ...] = ()
    check_hostname: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure: bool = False
    alpn: tuple[str, ...] = ()

    @property
    def uses_identity(self) -> bool:
        """Does the connection present the workload identity?"""
        return self.mode == "ISTIO_MUTUAL"


@dataclass(frozen=True, slots=True)
class ClusterTls:
    """A cluster's TLS: one target for every endpoint (``tls`` set), or auto-mTLS for the
    endpoints that take Istio mTLS (``auto``), or nothing."""

    explicit: TlsTarget | None = None
    auto: TlsTarget | None = None

    def for_host(self, host: HostState, authority_host: str) -> TlsTarget | None:
        """The TLS of a connection to ``host`` (None: plaintext). Without a configured
        ``sni``, ``SIMPLE`` and ``MUTUAL`` name the host the caller used (Envoy's auto SNI)."""
        explicit = self.explicit
        if explicit is not None:
            if not explicit.sni:
                return dataclasses.replace(explicit, sni=authority_host)
            return explicit
        if self.auto is not None and host.endpoint.tls_mode == "istio":
            return self.auto
        return None


NO_TLS = ClusterTls()


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """An Istio workload's SPIFFE ID."""
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def cluster_tls(
    key: ClusterKey,
    service: Service,
    policy: TrafficPolicy | None,
    *,
    auto_mtls: bool,
    trust_domain: str,
    has_identity: bool,
) -> ClusterTls:
    """The TLS a cluster's connections use.

    ``auto_mtls`` says whether PeerAuthentication leaves auto-mTLS on for the service's
    namespace.
    """
    settings = policy.tls if policy is not None else None
    if settings is not None:
        if settings.mode is TLSMode.DISABLE:
            return NO_TLS
        return ClusterTls(explicit=_explicit(key, service, settings, trust_domain))
    if not (auto_mtls and has_identity and service.location is Location.MESH_INTERNAL):
        return NO_TLS
    sans = _istio_sans(service, (), trust_domain)
    return ClusterTls(auto=_istio(key, sans))


def _explicit(
    key: ClusterKey, service: Service, settings: ClientTLSSettings, trust_domain: str
) -> TlsTarget:
    if settings.mode is TLSMode.ISTIO_MUTUAL:
        return _istio(key, _istio_sans(service, settings.subject_alt_names, trust_domain))
    sans = settings.subject_alt_names or service.subject_alt_names
    return TlsTarget(
        mode=settings.mode.name,
        sni=settings.sni,  # "": the caller's host, per request
        verify_sans=tuple(sans),
        check_hostname=not sans,
        ca_file=settings.ca_certificates,
        cert_file=settings.client_certificate if settings.mode is TLSMode.MUTUAL else "",
        key_file=settings.private_key if settings.mode is TLSMode.MUTUAL else "",
        insecure=bool(settings.insecure_skip_verify),
    )


def _istio(key: ClusterKey, sans: Sequence[str]) -> TlsTarget:
    return TlsTarget(
        mode="ISTIO_MUTUAL",
        sni=f"outbound_.{key.port}_.{key.subset}_.{key.host}",
        verify_sans=tuple(sans),
        alpn=ISTIO_ALPN,
    )


def _istio_sans(service: Service, configured: Sequence[str], trust_domain: str) -> list[str]:
    """The DestinationRule's SANs, else the ServiceEntry's and every endpoint's SPIFFE ID
    (the union over the whole service, as pilot builds it)."""
    if configured:
        return list(configured)
    sans = dict.fromkeys(service.subject_alt_names)
    for endpoint in service.endpoints:
        if endpoint.service_account:
            sans[spiffe_id(trust_domain, service.namespace, endpoint.service_account)] = None
    return list(sans)
