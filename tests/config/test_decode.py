"""Decoding YAML into spec objects the way Istio's strict decoder does.

Each case feeds one VirtualService or DestinationRule and checks the decoded value or the
exact problem (path and message) reported.
"""

from __future__ import annotations

import textwrap

import pytest

from meshlib.config import (
    Duration,
    H2UpgradePolicy,
    Percent,
    Resource,
    Severity,
    SimpleLB,
    read_yaml,
)


def _one(yaml_text: str) -> Resource[object]:
    found = read_yaml(textwrap.dedent(yaml_text))
    assert not found.errors, [str(p) for p in found.errors]
    assert len(found.resources) == 1
    return found.resources[0]


def _errors(yaml_text: str) -> list[tuple[str, str]]:
    found = read_yaml(textwrap.dedent(yaml_text))
    return [(p.path, p.message) for p in found.errors]


DR = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: reviews
  trafficPolicy:
"""


def _dr(policy: str) -> str:
    return DR + textwrap.indent(textwrap.dedent(policy), "    ")


def test_camel_case_keys_become_typed_fields() -> None:
    """Nested camelCase keys decode to snake_case attributes with their proto types."""
    spec = _one(
        _dr(
            """
            connectionPool:
              http: {http1MaxPendingRequests: 1, h2UpgradePolicy: UPGRADE}
              tcp: {connectTimeout: 250ms}
            outlierDetection: {consecutive5xxErrors: 7, interval: 1h30m}
            loadBalancer: {simple: ROUND_ROBIN}
            """
        )
    ).spec
    policy = spec.traffic_policy  # type: ignore[attr-defined]
    assert policy.connection_pool.http.http1_max_pending_requests == 1
    assert policy.connection_pool.http.h2_upgrade_policy is H2UpgradePolicy.UPGRADE
    assert policy.connection_pool.tcp.connect_timeout == Duration(250_000_000)
    assert policy.outlier_detection.consecutive_5xx_errors == 7
    assert policy.outlier_detection.interval == Duration(5_400_000_000_000)
    assert policy.load_balancer.simple is SimpleLB.ROUND_ROBIN


def test_wrapper_types_keep_unset_apart_from_zero() -> None:
    """``consecutive5xxErrors: 0`` is not the same as leaving it out (UInt32Value)."""
    zero = _one(_dr("outlierDetection: {consecutive5xxErrors: 0}")).spec
    unset = _one(_dr("outlierDetection: {interval: 1s}")).spec
    assert zero.traffic_policy.outlier_detection.consecutive_5xx_errors == 0  # type: ignore[attr-defined]
    assert unset.traffic_policy.outlier_detection.consecutive_5xx_errors is None  # type: ignore[attr-defined]


def test_enums_by_name_or_number() -> None:
    """Enum fields accept the proto name and the proto number, as Istio's decoder does."""
    by_number = _one(_dr("loadBalancer: {simple: 4}")).spec
    assert by_number.traffic_policy.load_balancer.simple is SimpleLB.ROUND_ROBIN  # type: ignore[attr-defined]


def test_null_means_unset() -> None:
    """A YAML null is treated as an absent field, as Kubernetes prunes it."""
    spec = _one(_dr("loadBalancer: null\nconnectionPool: {tcp: {maxConnections: 3}}")).spec
    assert spec.traffic_policy.load_balancer is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("policy", "path", "message"),
    [
        (
            "loadBalancer: {simpel: RANDOM}",
            "spec.trafficPolicy.loadBalancer.simpel",
            'unknown field "simpel" in LoadBalancerSettings',
        ),
        (
            "loadBalancer: {simple: FASTEST}",
            "spec.trafficPolicy.loadBalancer.simple",
            (
                'string "FASTEST" is not one of UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, '
                "ROUND_ROBIN, LEAST_REQUEST"
            ),
        ),
        (
            "connectionPool: {tcp: {maxConnections: '5'}}",
            "spec.trafficPolicy.connectionPool.tcp.maxConnections",
            'expected an integer, got string "5"',
        ),
        (
            "connectionPool: {tcp: {maxConnections: true}}",
            "spec.trafficPolicy.connectionPool.tcp.maxConnections",
            "expected an integer, got boolean true",
        ),
        (
            "connectionPool: {tcp: {maxConnections: 2147483648}}",
            "spec.trafficPolicy.connectionPool.tcp.maxConnections",
            "2147483648 is out of range for int32",
        ),
        (
            "connectionPool: {tcp: {connectTimeout: 10}}",
            "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
            'expected a duration string such as "5s" or "250ms", got number 10',
        ),
        (
            "connectionPool: {tcp: {connectTimeout: 10sec}}",
            "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
            'unknown unit "sec" in duration "10sec"',
        ),
        (
            "loadBalancer: {simple: RANDOM, consistentHash: {httpHeaderName: x}}",
            "spec.trafficPolicy.loadBalancer",
            "only one of simple, consistentHash may be set, got simple and consistentHash",
        ),
        (
            "portLevelSettings: {port: 80}",
            "spec.trafficPolicy.portLevelSettings",
            "expected a list, got an object",
        ),
        (
            "tls: [SIMPLE]",
            "spec.trafficPolicy.tls",
            "expected an object, got a list",
        ),
    ],
)
def test_shape_problems_name_field_and_expectation(policy: str, path: str, message: str) -> None:
    """Type, enum, range, oneof and unknown-field problems say where and what was expected."""
    assert (path, message) in _errors(_dr(policy))


def test_every_problem_is_reported_not_only_the_first() -> None:
    """Decoding goes on after a problem, so one pass reports all of them."""
    errors = _errors(_dr("loadBalancer: {simple: X}\nconnectionPool: {tcp: {maxConnections: x}}"))
    assert {path for path, _ in errors} >= {
        "spec.trafficPolicy.loadBalancer.simple",
        "spec.trafficPolicy.connectionPool.tcp.maxConnections",
    }


def test_snake_case_keys_load_with_a_warning() -> None:
    """Istio's Go decoder accepts proto names; its CRD does not, so meshlib warns."""
    found = read_yaml(_dr("connectionPool: {tcp: {max_connections: 3}}"))
    assert not found.errors
    policy = found.resources[0].spec.traffic_policy
    assert policy.connection_pool.tcp.max_connections == 3
    (warning,) = found.warnings
    assert warning.severity is Severity.WARNING
    assert warning.path == "spec.trafficPolicy.connectionPool.tcp.maxConnections"


def test_percent_and_bytes() -> None:
    """``Percent`` is ``{value: double}``; ``bytes`` bodies are base64 as in proto JSON."""
    spec = _one(
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: r}
        spec:
          hosts: [reviews]
          http:
          - directResponse: {status: 200, body: {bytes: aGVsbG8=}}
            mirrorPercentage: {value: 12.5}
        """
    ).spec
    rule = spec.http[0]  # type: ignore[attr-defined]
    assert rule.direct_response.body.bytes == b"hello"
    assert rule.mirror_percentage == Percent(12.5)


def test_map_keys_from_yaml_numbers_become_strings() -> None:
    """Kubernetes reads YAML as JSON, where map keys are strings: ``80:`` is ``"80"``."""
    spec = _one(
        """
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: p}
        spec:
          selector: {matchLabels: {app: a}}
          portLevelMtls:
            8080: {mode: DISABLE}
        """
    ).spec
    assert set(spec.port_level_mtls) == {"8080"}  # type: ignore[attr-defined]
