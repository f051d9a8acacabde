"""Mutated configuration only ever produces problems: never another exception, never a hang.

Hypothesis takes real documents (Istio's samples and the validation cases), walks to a
random node and drops it, replaces it with a value of another type, or adds a field.
Whatever comes out, loading returns problems (a ConfigError when asked to raise), and
whatever loads without errors also compiles into a routing table.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshlib import ConfigError
from meshlib._compile import Workload, compile_table
from meshlib.config import read_yaml
from tests.conftest import SAMPLES


def _documents() -> list[dict[str, Any]]:
    return [
        {key: value for key, value in document.items() if not key.startswith("_")}
        for file in sorted(SAMPLES.rglob("*.yaml"))
        for document in yaml.safe_load_all(file.read_text())
        if isinstance(document, dict)
    ]


DOCUMENTS = _documents()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "*", "0s", "1ms", "-1", "1.5ms", "v1", "%", "(", "unix://", ":x"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _containers(node: Any, found: list[Any]) -> list[Any]:
    if isinstance(node, (dict, list)):
        found.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            _containers(child, found)
    return found


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A sample document with one to three random mutations."""
    document = copy.deepcopy(draw(st.sampled_from(DOCUMENTS)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        target = draw(st.sampled_from(_containers(document, [])))
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        action = draw(st.sampled_from(["drop", "retype", "add"]))
        if action == "add" or not keys:
            if isinstance(target, dict):
                target[draw(st.text(max_size=10))] = draw(values)
            else:
                target.append(draw(values))
        elif action == "drop":
            del target[draw(st.sampled_from(keys))]
        else:
            target[draw(st.sampled_from(keys))] = draw(values)
    return document


@settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated())
def test_mutations_only_produce_problems(document: dict[str, Any]) -> None:
    """Loading a mutated document reports problems and never raises anything else."""
    found = read_yaml(yaml.safe_dump(document))
    compile_table(found.resources, Workload())
    assert all(problem.message for problem in found.problems)
    if found.errors:
        with pytest.raises(ConfigError) as raised:
            found.raise_for_errors()
        assert raised.value.problems == found.errors
