"""Istio's validation of DestinationRule (``pkg/config/validation`` and the CRD schema).

The webhook side follows ``ValidateDestinationRule`` and the helpers it calls (the
``agent`` package for TLS and locality settings); the CRD side adds the structural limits
and CEL rules the Go code does not repeat (``crd-constraints.md``). Where both reject the
same input, only the webhook's message is reported.

Istio drops the warnings of some nested checks (``appendErrors`` keeps only errors): every
warning inside ``subsets[].trafficPolicy`` and inside ``portLevelSettings[]``. meshlib does
the same, so that its verdict (valid, or valid with a warning) is Istio's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from meshlib.config._context import ResourceContext
from meshlib.config._destination_rule import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    ConsistentHashLB,
    DestinationRule,
    H2UpgradePolicy,
    HTTPCookieAttribute,
    HTTPSettings,
    LoadBalancerSettings,
    LocalityLoadBalancerSetting,
    MagLev,
    OutlierDetection,
    PortTrafficPolicy,
    RetryBudget,
    Subset,
    TCPSettings,
    TLSMode,
    TrafficPolicy,
    TunnelSettings,
    WarmupConfiguration,
)
from meshlib.config._problems import Path, Report
from meshlib.config._rules._common import (
    go_quote,
    is_dns1123_label,
    is_valid_ip,
    validate_duration,
    validate_export_to,
    validate_fqdn,
    validate_labels,
    validate_percent,
    validate_port,
    validate_wildcard_domain,
)
from meshlib.config._selectors import WorkloadSelector
from meshlib.config._values import Duration

__all__ = [
    "validate_connection_pool",
    "validate_destination_rule",
    "validate_selector_labels",
]

_MILLISECOND = 1_000_000
_MAGLEV_LIMIT = 5_000_011
_MAX_PORT_POLICIES = 4096  # CRD: portLevelSettings maxItems
_MAX_MATCH_LABELS = 4096  # CRD: workloadSelector.matchLabels maxProperties
_MAX_SELECTOR_VALUE = 63  # CRD: selector label values maxLength
_TOPOLOGY_LABELS = frozenset(
    {"topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"}
)
_CONFIGMAP = "configmap://"


def validate_destination_rule(
    spec: DestinationRule, context: ResourceContext, report: Report, path: Path
) -> None:
    """``ValidateDestinationRule``: host, policies, subsets, ``exportTo``, selector."""
    problem = validate_wildcard_domain(spec.host)
    if problem:
        report.error((*path, "host"), problem)
    namespace = context.namespace
    _traffic_policy(spec.traffic_policy, namespace, report, (*path, "trafficPolicy"))
    _subsets(spec.subsets, namespace, report, (*path, "subsets"))
    validate_export_to(
        namespace,
        spec.export_to,
        report,
        (*path, "exportTo"),
        selector=spec.workload_selector is not None,
    )
    _workload_selector(spec.workload_selector, report, (*path, "workloadSelector"))


# --------------------------------------------------------------------------- helpers


def _drop_warnings_since(report: Report, mark: int) -> None:
    """Forget the warnings reported since ``mark``: Go's ``appendErrors`` keeps only errors."""
    del report.warnings[mark:]


def _is_null(report: Report, path: Path) -> bool:
    """Whether the list element at ``path`` was written as ``null``."""
    return bool(report.nulls) and path in report.nulls


def _too_many(limit: int, what: str) -> str:
    """The CRD's ``maxItems``/``maxProperties`` message."""
    return f"must have at most {limit} {what}"


def _too_long(limit: int) -> str:
    """The CRD's ``maxLength`` message."""
    return f"may not be longer than {limit} characters"


# ------------------------------------------------------------------------- subsets


def _subsets(subsets: Sequence[Subset], namespace: str, report: Report, path: Path) -> None:
    """The subset loop of ``ValidateDestinationRule``: nulls, duplicates, each subset."""
    seen: set[str] = set()
    for index, subset in enumerate(subsets):
        item = (*path, index)
        if _is_null(report, item):
            report.error(item, "subset may not be null")
            continue
        if subset.name in seen:
            report.error((*item, "name"), f"duplicate subset names: {subset.name}")
        seen.add(subset.name)
        _subset_name(subset.name, report, (*item, "name"))
        validate_labels(subset.labels, report, (*item, "labels"))
        if subset.traffic_policy is not None:
            mark = len(report.warnings)
            _traffic_policy(subset.traffic_policy, namespace, report, (*item, "trafficPolicy"))
            _drop_warnings_since(report, mark)


def _subset_name(name: str, report: Report, path: Path) -> None:
    """``validateSubsetName``: a non-empty DNS-1123 label (upper case allowed)."""
    if not name:
        report.error(path, "subset name cannot be empty")
    elif not is_dns1123_label(name):
        report.error(path, f"subset name is invalid: {name}")


# ------------------------------------------------------------------ traffic policy


def _traffic_policy(
    policy: TrafficPolicy | None, namespace: str, report: Report, path: Path
) -> None:
    """``validateTrafficPolicy``: at least one field, no tunnel with proxyProtocol."""
    if policy is None:
        return
    if (
        policy.outlier_detection is None
        and policy.connection_pool is None
        and policy.load_balancer is None
        and policy.tls is None
        and not policy.port_level_settings
        and policy.tunnel is None
        and policy.proxy_protocol is None
        and policy.retry_budget is None
    ):
        report.error(path, "traffic policy must have at least one field")
        return
    if policy.tunnel is not None and policy.proxy_protocol is not None:
        report.error(path, "tunnel and proxyProtocol must not be set together")
        return
    _outlier_detection(policy.outlier_detection, report, (*path, "outlierDetection"))
    validate_connection_pool(policy.connection_pool, report, (*path, "connectionPool"))
    _load_balancer(policy.load_balancer, policy.outlier_detection, report, (*path, "loadBalancer"))
    _tls(policy.tls, namespace, report, (*path, "tls"))
    _port_level_settings(
        policy.port_level_settings, namespace, report, (*path, "portLevelSettings")
    )
    _tunnel(policy.tunnel, report, (*path, "tunnel"))
    _retry_budget(policy.retry_budget, report, (*path, "retryBudget"))


def _port_level_settings(
    settings: Sequence[PortTrafficPolicy], namespace: str, report: Report, path: Path
) -> None:
    """``validatePortTrafficPolicies`` (warnings dropped) and CRD ``maxItems: 4096``."""
    if len(settings) > _MAX_PORT_POLICIES:
        report.error(path, _too_many(_MAX_PORT_POLICIES, "items"))
    for index, setting in enumerate(settings):
        item = (*path, index)
        if _is_null(report, item):
            report.error(item, "traffic policy may not be null")
            continue
        if setting.port is None:
            report.error((*item, "port"), "portTrafficPolicy must have valid port")
        if (
            setting.outlier_detection is None
            and setting.connection_pool is None
            and setting.load_balancer is None
            and setting.tls is None
        ):
            report.error(item, "port traffic policy must have at least one field")
            continue
        mark = len(report.warnings)
        _outlier_detection(setting.outlier_detection, report, (*item, "outlierDetection"))
        validate_connection_pool(setting.connection_pool, report, (*item, "connectionPool"))
        _load_balancer(
            setting.load_balancer, setting.outlier_detection, report, (*item, "loadBalancer")
        )
        _tls(setting.tls, namespace, report, (*item, "tls"))
        _drop_warnings_since(report, mark)


def _tunnel(tunnel: TunnelSettings | None, report: Report, path: Path) -> None:
    """``validateTunnelSettings``: protocol, target host (FQDN or IP) and target port."""
    if tunnel is None:
        return
    if tunnel.protocol not in ("", "CONNECT", "POST"):
        report.error((*path, "protocol"), 'tunnel protocol must be "CONNECT" or "POST"')
    host = tunnel.target_host
    fqdn_problem = validate_fqdn(host)
    if fqdn_problem and not is_valid_ip(host):
        report.error(
            (*path, "targetHost"),
            "tunnel target host must be valid FQDN or IP address: "
            f"{fqdn_problem}; {host} is not a valid IP",
        )
    validate_port(
        tunnel.target_port, report, (*path, "targetPort"), prefix="tunnel target port is invalid: "
    )


def _retry_budget(budget: RetryBudget | None, report: Report, path: Path) -> None:
    """CRD: ``retryBudget.percent`` between 0 and 100 (the webhook does not check it)."""
    if budget is None or budget.percent is None:
        return
    if budget.percent < 0:
        report.error((*path, "percent"), "should be greater than or equal to 0")
    elif budget.percent > 100:
        report.error((*path, "percent"), "should be less than or equal to 100")


# ---------------------------------------------------------------- outlier detection


def _outlier_detection(outlier: OutlierDetection | None, report: Report, path: Path) -> None:
    """``validateOutlierDetection``, plus the CRD range of the HTTP error codes."""
    if outlier is None:
        return
    validate_duration(outlier.base_ejection_time, report, (*path, "baseEjectionTime"))
    if outlier.consecutive_errors != 0:
        report.warn(
            (*path, "consecutiveErrors"),
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors "
            "or consecutive5xxErrors instead",
        )
    if not outlier.split_external_local_origin_errors and (
        outlier.consecutive_local_origin_failures or 0
    ):
        report.error(
            path,
            "outlier detection consecutive local origin failures is specified, but split "
            "external local origin errors is set to false",
        )
    validate_duration(outlier.interval, report, (*path, "interval"))
    validate_percent(outlier.max_ejection_percent, report, (*path, "maxEjectionPercent"))
    validate_percent(outlier.min_health_percent, report, (*path, "minHealthPercent"))
    _http_error_codes(
        outlier.outlier_detection_http_error_codes,
        report,
        (*path, "outlierDetectionHttpErrorCodes"),
    )


def _http_error_codes(codes: Sequence[int], report: Report, path: Path) -> None:
    """CRD: each ``outlierDetectionHttpErrorCodes`` entry is a status in 100..599."""
    for index, code in enumerate(codes):
        if code < 100:
            report.error((*path, index), "should be greater than or equal to 100")
        elif code > 599:
            report.error((*path, index), "should be less than or equal to 599")


# ------------------------------------------------------------------ connection pool


def validate_connection_pool(
    settings: ConnectionPoolSettings | None, report: Report, path: Path
) -> None:
    """``validateConnectionPool``: at least one of ``http``/``tcp``, then each of them."""
    if settings is None:
        return
    if settings.http is None and settings.tcp is None:
        report.error(path, "connection pool must have at least one field")
        return
    _http_settings(settings.http, report, (*path, "http"))
    _tcp_settings(settings.tcp, report, (*path, "tcp"))


def _non_negative(value: int, message: str, report: Report, path: Path) -> None:
    """The ``must be non-negative`` limits of ``validateConnectionPool``."""
    if value < 0:
        report.error(path, message)


def _http_settings(http: HTTPSettings | None, report: Report, path: Path) -> None:
    """The ``http`` half of ``validateConnectionPool``, and ``http2KeepAlive``."""
    if http is None:
        return
    _non_negative(
        http.http1_max_pending_requests,
        "http1 max pending requests must be non-negative",
        report,
        (*path, "http1MaxPendingRequests"),
    )
    _non_negative(
        http.http2_max_requests,
        "http2 max requests must be non-negative",
        report,
        (*path, "http2MaxRequests"),
    )
    _non_negative(
        http.max_requests_per_connection,
        "max requests per connection must be non-negative",
        report,
        (*path, "maxRequestsPerConnection"),
    )
    _non_negative(
        http.max_retries, "max retries must be non-negative", report, (*path, "maxRetries")
    )
    validate_duration(http.idle_timeout, report, (*path, "idleTimeout"))
    if http.h2_upgrade_policy is H2UpgradePolicy.UPGRADE and http.use_client_protocol:
        report.error(path, "use client protocol must not be true when H2UpgradePolicy is UPGRADE")
    _non_negative(
        http.max_concurrent_streams,
        "max concurrent streams must be non-negative",
        report,
        (*path, "maxConcurrentStreams"),
    )
    keep_alive = http.http2_keep_alive
    if keep_alive is not None:
        where = (*path, "http2KeepAlive")
        _required_duration(
            keep_alive.interval,
            "http2 keepalive interval is required",
            report,
            (*where, "interval"),
        )
        _required_duration(
            keep_alive.timeout, "http2 keepalive timeout is required", report, (*where, "timeout")
        )


def _required_duration(
    duration: Duration | None, missing: str, report: Report, path: Path
) -> None:
    """A duration that must be set, and then be at least 1 ms in whole milliseconds."""
    if duration is None:
        report.error(path, missing)
    else:
        validate_duration(duration, report, path)


def _tcp_settings(tcp: TCPSettings | None, report: Report, path: Path) -> None:
    """The ``tcp`` half of ``validateConnectionPool``; ``idleTimeout`` under 1 ms disables."""
    if tcp is None:
        return
    _non_negative(
        tcp.max_connections,
        "max connections must be non-negative",
        report,
        (*path, "maxConnections"),
    )
    validate_duration(tcp.connect_timeout, report, (*path, "connectTimeout"))
    validate_duration(tcp.max_connection_duration, report, (*path, "maxConnectionDuration"))
    idle = tcp.idle_timeout
    # Go's Duration.Milliseconds() truncates toward zero: 0s and 500us mean "disabled".
    if idle is not None and abs(idle.nanos) >= _MILLISECOND:
        validate_duration(idle, report, (*path, "idleTimeout"))
    keepalive = tcp.tcp_keepalive
    if keepalive is not None:
        validate_duration(keepalive.time, report, (*path, "tcpKeepalive", "time"))
        validate_duration(keepalive.interval, report, (*path, "tcpKeepalive", "interval"))


# ------------------------------------------------------------------- load balancer


def _load_balancer(
    settings: LoadBalancerSettings | None,
    outlier: OutlierDetection | None,
    report: Report,
    path: Path,
) -> None:
    """``validateLoadBalancer``: consistent hash, locality, warm-up (``simple`` is free)."""
    if settings is None:
        return
    _consistent_hash(settings.consistent_hash, report, (*path, "consistentHash"))
    _locality_lb(settings.locality_lb_setting, outlier, report, (*path, "localityLbSetting"))
    _warmup(settings.warmup, report, (*path, "warmup"))
    # CRD: DUR rule on the deprecated warmupDurationSecs (older Go also validated it).
    validate_duration(settings.warmup_duration_secs, report, (*path, "warmupDurationSecs"))


def _consistent_hash(hash_lb: ConsistentHashLB | None, report: Report, path: Path) -> None:
    """The ``consistentHash`` part of ``validateLoadBalancer``; CRD ``minimum: 0`` sizes."""
    if hash_lb is None:
        return
    cookie = hash_lb.http_cookie
    if cookie is not None:
        if not cookie.name:
            report.error((*path, "httpCookie", "name"), "name required for HttpCookie")
        _cookie_attributes(cookie.attributes, report, (*path, "httpCookie", "attributes"))
    ring_size = hash_lb.minimum_ring_size
    if ring_size < 0:
        report.error((*path, "minimumRingSize"), "should be greater than or equal to 0")
    elif ring_size:
        report.warn(
            (*path, "minimumRingSize"),
            "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash "
            "configuration instead",
        )
        if hash_lb.ring_hash is not None or hash_lb.maglev is not None:
            report.error(path, "only one of MinimumRingSize or Maglev/Ringhash can be specified")
    if hash_lb.ring_hash is not None and hash_lb.ring_hash.minimum_ring_size < 0:
        report.error(
            (*path, "ringHash", "minimumRingSize"), "should be greater than or equal to 0"
        )
    _maglev(hash_lb.maglev, report, (*path, "maglev", "tableSize"))


def _cookie_attributes(
    attributes: Sequence[HTTPCookieAttribute], report: Report, path: Path
) -> None:
    """``httpCookie.attributes``: every name set, and no name twice."""
    names: set[str] = set()
    for index, attribute in enumerate(attributes):
        where = (*path, index, "name")
        if not attribute.name:
            report.error(where, "cookie attribute name cannot be empty")
        elif attribute.name in names:
            report.error(where, f"duplicate cookie attribute name: {attribute.name}")
        else:
            names.add(attribute.name)


def _maglev(maglev: MagLev | None, report: Report, path: Path) -> None:
    """``maglev.tableSize``: set, below 5000011, prime (as Go's ``isPrime`` counts primes)."""
    if maglev is None:
        return
    size = maglev.table_size
    if size < 0:  # CRD minimum: 0 (the proto field is a uint64)
        report.error(path, "should be greater than or equal to 0")
        return
    if size == 0:
        report.error(path, "tableSize must be set for maglev")
    if size >= _MAGLEV_LIMIT:
        report.error(path, "tableSize must be less than 5000011 for maglev")
    if not _go_is_prime(size):
        report.error(path, "tableSize must be a prime number for maglev")


def _go_is_prime(number: int) -> bool:
    """Istio's ``isPrime``: 1, 2 and 3 count as prime, 0 does not.

    Deterministic Miller-Rabin, so that a huge (invalid) table size cannot stall
    validation the way trial division would.
    """
    if number < 4:
        return number != 0
    if number % 2 == 0:
        return False
    odd, shift = number - 1, 0
    while odd % 2 == 0:
        odd //= 2
        shift += 1
    for base in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if base % number == 0:
            continue
        value = pow(base, odd, number)
        if value in (1, number - 1):
            continue
        for _ in range(shift - 1):
            value = value * value % number
            if value == number - 1:
                break
        else:
            return False
    return True


def _warmup(warmup: WarmupConfiguration | None, report: Report, path: Path) -> None:
    """``warmup``: duration required; ``minimumPercent`` 0..100; ``aggression`` >= 1."""
    if warmup is None:
        return
    _required_duration(warmup.duration, "duration is required", report, (*path, "duration"))
    minimum = warmup.minimum_percent
    if minimum is not None and minimum < 0:
        report.error(
            (*path, "minimumPercent"), "minimumPercent value should be greater than or equal to 0"
        )
    if minimum is not None and minimum > 100:
        report.error(
            (*path, "minimumPercent"), "minimumPercent value should be less than or equal to 100"
        )
    if warmup.aggression is not None and warmup.aggression < 1:
        report.error((*path, "aggression"), "aggression should be greater than or equal to 1")


# ------------------------------------------------------------------------ locality


def _locality_lb(
    setting: LocalityLoadBalancerSetting | None,
    outlier: OutlierDetection | None,
    report: Report,
    path: Path,
) -> None:
    """``agent.ValidateLocalityLbSetting`` (its early returns included)."""
    if setting is None:
        return
    if setting.distribute and setting.failover:
        report.error(path, "can not simultaneously specify 'distribute' and 'failover'")
        return
    if setting.failover:
        for index, label in enumerate(setting.failover_priority):
            if label in _TOPOLOGY_LABELS:
                report.error(
                    (*path, "failoverPriority", index),
                    f"can not simultaneously set 'failover' and topology label '{label}' "
                    "in 'failover_priority'",
                )
                return
    if not _locality_distribute(setting, report, (*path, "distribute")):
        return
    if (setting.failover or setting.failover_priority) and outlier is None:
        report.warn(path, "outlier detection policy must be provided for failover")
    _locality_failover(setting, report, (*path, "failover"))


def _locality_distribute(setting: LocalityLoadBalancerSetting, report: Report, path: Path) -> bool:
    """``distribute``: weights 1..100 summing to 100, localities that do not overlap.

    Returns False where Istio stops validating the whole setting (a bad weight or total).
    """
    for index, entry in enumerate(setting.distribute):
        to_path = (*path, index, "to")
        total = 0
        for locality, weight in entry.to.items():
            if not 1 <= weight <= 100:
                report.error((*to_path, locality), "locality weight must be in range [1, 100]")
                return False
            total += weight
        if total != 100:
            report.error(to_path, f"total locality weight {total} != 100")
            return False
        destinations = list(entry.to)
        found = _locality_problem(destinations)
        if found is not None:
            report.error((*to_path, destinations[found[0]]), found[1])
    found = _locality_problem([entry.from_ for entry in setting.distribute])
    if found is not None:
        report.error((*path, found[0], "from"), found[1])
    return True


def _locality_failover(setting: LocalityLoadBalancerSetting, report: Report, path: Path) -> None:
    """``failover``: different regions, regions only, no wildcard."""
    for index, failover in enumerate(setting.failover):
        item = (*path, index)
        if failover.from_ == failover.to:
            report.error(item, "locality lb failover settings must specify different regions")
        if "/" in failover.from_ or "/" in failover.to:
            report.error(item, "locality lb failover only specify region")
        if "*" in failover.from_ or "*" in failover.to:
            report.error(item, "locality lb failover region should not contain '*' wildcard")


def _locality_problem(localities: Sequence[str]) -> tuple[int, str] | None:
    """``validateLocalities``: the index and message of the first locality it rejects."""
    tree: dict[str, dict[str, set[str]]] = {}
    for index, locality in enumerate(localities):
        stars = locality.count("*")
        if stars and (stars > 1 or not locality.endswith("*")):
            return index, (
                f"locality {locality} wildcard '*' number can not exceed 1 and must be in the end"
            )
        overlap = f"locality {locality} overlap with previous specified ones"
        if "*" in tree:
            return index, overlap
        parts = locality.split("/", 2)
        if "" in parts:
            return index, f"locality {locality} must not contain empty region/zone/subzone info"
        if not _claim_locality(tree, parts):
            return index, overlap
    return None


def _claim_locality(tree: dict[str, dict[str, set[str]]], parts: list[str]) -> bool:
    """Record ``region[/zone[/subzone]]`` in ``tree``; False if an earlier entry covers it.

    A region alone claims the zone ``*``, a zone alone the subzone ``*``, as Istio does.
    """
    region = parts[0]
    zones = tree.get(region)
    if len(parts) == 1:
        if zones is not None:
            return False
        tree[region] = {"*": {"*"}}
        return True
    zone = parts[1]
    subzone = parts[2] if len(parts) == 3 else "*"
    if zones is None:
        tree[region] = {zone: {subzone}}
        return True
    if "*" in zones:
        return False
    subzones = zones.get(zone)
    if len(parts) == 2:
        if subzones is not None:
            return False
        zones[zone] = {"*"}
        return True
    if subzones is None:
        zones[zone] = {subzone}
        return True
    if "*" in subzones or subzone in subzones:
        return False
    subzones.add(subzone)
    return True


# ----------------------------------------------------------------------------- TLS


def _tls(settings: ClientTLSSettings | None, namespace: str, report: Report, path: Path) -> None:
    """``agent.ValidateTLS``: ``configmap://`` names, insecureSkipVerify, credentialName."""
    if settings is None:
        return
    credential = settings.credential_name
    if credential.startswith(_CONFIGMAP):
        problem = _configmap_problem(credential, namespace)
        if problem:
            report.error((*path, "credentialName"), problem)
    mode = settings.mode
    if settings.insecure_skip_verify:
        if mode is TLSMode.SIMPLE and (
            settings.ca_certificates or credential or settings.subject_alt_names
        ):
            report.error(
                path,
                "cannot specify CaCertificates or CredentialName or SubjectAltNames when "
                "InsecureSkipVerify is set true",
            )
        if mode is TLSMode.MUTUAL and (settings.ca_certificates or settings.subject_alt_names):
            report.error(
                path,
                "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set "
                "true",
            )
    if mode in (TLSMode.SIMPLE, TLSMode.MUTUAL) and credential:
        if (
            settings.client_certificate
            or settings.ca_certificates
            or settings.private_key
            or settings.ca_crl
        ):
            report.error(
                path,
                "cannot specify client certificates or CA certificate or CA CRL If credentialName "
                "is set",
            )
        return
    if mode is TLSMode.MUTUAL:
        if not settings.client_certificate:
            report.error(
                (*path, "clientCertificate"), "client certificate required for mutual tls"
            )
        if not settings.private_key:
            report.error((*path, "privateKey"), "private key required for mutual tls")


def _configmap_problem(credential: str, namespace: str) -> str | None:
    """``configmap://<namespace>/<name>`` must name the resource's own namespace."""
    prefix = "invalid configmap:// credentialName: "
    parts = credential[len(_CONFIGMAP) :].split("/")
    quoted = go_quote(credential)
    if len(parts) <= 1:
        return f"{prefix}invalid resource name {quoted}. Expected namespace and name"
    if not parts[0]:
        return f"{prefix}invalid resource name {quoted}. Expected namespace"
    if not parts[1]:
        return f"{prefix}invalid resource name {quoted}. Expected name"
    if parts[0] != namespace or not namespace:
        return f"{prefix}namespace must match the configuration namespace {go_quote(namespace)}"
    return None


# ------------------------------------------------------------------ workload selector


def _workload_selector(selector: WorkloadSelector | None, report: Report, path: Path) -> None:
    """``validateWorkloadSelector`` and the CRD limits of ``matchLabels``."""
    if selector is None:
        return
    labels = selector.match_labels
    where = (*path, "matchLabels")
    if len(labels) > _MAX_MATCH_LABELS:
        report.error(where, _too_many(_MAX_MATCH_LABELS, "properties"))
    validate_selector_labels(labels, report, where)
    if not labels:
        report.warn(path, "workload selector specified without labels")


def validate_selector_labels(labels: Mapping[str, str], report: Report, path: Path) -> None:
    """The label loop of ``validateWorkloadSelector``/``ValidateAlphaWorkloadSelector``.

    No empty key, no ``*`` in a key or a value; and the CRD's ``maxLength: 63`` on values.
    """
    for key, value in labels.items():
        where = (*path, key)
        if not key:
            report.error(where, f"empty key is not supported in selector: {go_quote('=' + value)}")
        if "*" in key or "*" in value:
            report.error(
                where, f"wildcard is not supported in selector: {go_quote(key + '=' + value)}"
            )
        if len(value) > _MAX_SELECTOR_VALUE:
            report.error(where, _too_long(_MAX_SELECTOR_VALUE))
