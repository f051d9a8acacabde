"""Every shared validation case gets Istio's verdict, and errors name the right field.

The cases come from Istio's validation code and tests (``istio-samples/validation-cases``);
each document carries ``_id``, ``_expect`` and ``_reason``, stripped before loading.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from meshlib.config import read_yaml
from tests.conftest import SAMPLES

CASES_FILE = SAMPLES / "validation-cases" / "meshlib-validation-cases.yaml"

#: The field path each invalid case's error must name.
EXPECTED_PATHS = {
    "I1": "spec.http[0].route",
    "I2": "spec.http[0].route[1].weight",
    "I3": "spec.http[0].timeout",
    "I4": "spec.http[0].timeout",
    "I6": "spec.http[0].retries",
    "I7": "spec.http[0].retries.retryOn",
    "I8": "spec.http[0].retries.retryOn",
    "I9": "spec.http[0].retries.retryOn",
    "I11": "spec.http[0].fault.abort.httpStatus",
    "I12": "spec.http[0].fault.abort.grpcStatus",
    "I13": "spec.http[0].fault",
    "I14": "spec.http[0].fault.delay.percentage",
    "I16": "spec.http[0].fault.delay.exponentialDelay",
    "I17": "spec.http[0]",
    "I18": "spec.http[0]",
    "I19": "spec.http[0].redirect",
    "I21": "spec.http[0].redirect.redirectCode",
    "I22": "spec.http[0].redirect.scheme",
    "I23": "spec.http[0].redirect",
    "I24": "spec.http[0].directResponse.status",
    "I26": "spec.http[0].rewrite",
    "I27": "spec.http[0].rewrite.uriRegexRewrite.match",
    "I28": "spec.http[0].match[0].headers.x",
    "I29": "spec.http[0].match[0].method",
    "I31": 'spec.http[0].headers.request.set[":authority"]',
    "I32": "spec.http[0].headers.request.remove[0]",
    "I33": "spec.http[0]",
    "I34": "spec.http[0].mirrorPercentage",
    "I36": "spec.http[0].route[0].destination.subset",
    "I37": "spec.hosts[0]",
    "I38": "spec.hosts",
    "I39": "spec",
    "I41": "spec.http[0].corsPolicy.maxAge",
    "I42": "spec.http[0].match[0].sourceNamespace",
    "I43": 'spec.http[0].match[0].headers["@request.auth.claims.foo"]',
    "I44": "spec.http[0].match[0].uri",
    "I46": "spec.subsets[1].name",
    "I47": "spec.subsets[0].name",
    "I48": "spec.trafficPolicy",
    "I49": "spec.trafficPolicy.connectionPool",
    "I51": "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
    "I52": "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
    "I53": "spec.trafficPolicy.outlierDetection.minHealthPercent",
    "I54": "spec.trafficPolicy.outlierDetection",
    "I56": "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name",
    "I57": "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
    "I58": "spec.trafficPolicy.loadBalancer.consistentHash",
    "I59": "spec.trafficPolicy.loadBalancer.consistentHash",
    "I61": "spec.trafficPolicy.connectionPool.http.http2KeepAlive.timeout",
    "I62": "spec.trafficPolicy.portLevelSettings[0].port",
    "I63": "spec.trafficPolicy.portLevelSettings[0]",
    "I64": "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
    "I66": "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]",
    "I67": "spec.trafficPolicy.loadBalancer.warmup.duration",
    "I68": "spec.trafficPolicy.loadBalancer.warmup.minimumPercent",
    "I69": "spec.trafficPolicy.loadBalancer.warmup.aggression",
    "I71": "spec.trafficPolicy.tls",
    "I72": "spec.trafficPolicy.tls",
    "I73": "spec.exportTo",
    "I74": "spec.exportTo",
    "I76": "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes[1].name",
}


def _cases() -> list[Any]:
    params = []
    for document in yaml.safe_load_all(CASES_FILE.read_text()):
        notes = {key: document.pop(key) for key in list(document) if key.startswith("_")}
        params.append(pytest.param(notes, document, id=notes["_id"]))
    return params


@pytest.mark.parametrize(("notes", "document"), _cases())
def test_case_gets_istios_verdict(notes: dict[str, str], document: dict[str, Any]) -> None:
    """Valid cases load (with a warning where Istio warns); invalid ones name the field."""
    found = read_yaml(yaml.safe_dump(document))
    expect = notes["_expect"]
    if expect == "invalid":
        assert found.errors, f"{notes['_id']} should be invalid: {notes['_reason']}"
        if notes["_id"] in EXPECTED_PATHS:
            assert EXPECTED_PATHS[notes["_id"]] in {p.path for p in found.errors}
    else:
        assert not found.errors, [str(p) for p in found.errors]
        assert bool(found.warnings) == (expect == "valid-with-warning"), found.warnings


def test_every_invalid_case_has_an_expected_path() -> None:
    """The path table covers every invalid case, so none is checked for its verdict only."""
    invalid = {
        notes["_id"] for notes, _ in (p.values for p in _cases()) if notes["_expect"] == "invalid"
    }
    assert invalid <= set(EXPECTED_PATHS), sorted(invalid - set(EXPECTED_PATHS))
