"""Reading streams, files and folders: documents, kinds, metadata and locations."""

from __future__ import annotations

import datetime
import json
import logging
import textwrap
from pathlib import Path

import pytest

from meshlib import ConfigError
from meshlib.config import read_paths, read_yaml

VS = """\
apiVersion: networking.istio.io/{version}
kind: VirtualService
metadata:
  name: {name}
spec:
  hosts: [{name}]
  http:
  - route:
    - destination: {{host: {name}}}
"""


DR_WITH_TIMESTAMP = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: r
  creationTimestamp: {stamp}
spec: {{host: r}}
"""


def vs(name: str, version: str = "v1") -> str:
    return VS.format(name=name, version=version)


def test_multi_document_stream_with_empty_documents() -> None:
    """Empty documents (``---`` twice, a trailing ``---``) are skipped but still counted."""
    found = read_yaml("---\n" + vs("a") + "---\n---\n" + vs("b") + "---\n")
    assert [r.name for r in found.resources] == ["a", "b"]
    assert [r.origin.document for r in found.resources] == [1, 3]


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_every_served_networking_version(version: str) -> None:
    """networking.istio.io v1, v1beta1 and v1alpha3 share one schema."""
    (resource,) = read_yaml(vs("a", version)).raise_for_errors().resources
    assert resource.api_version == f"networking.istio.io/{version}"


def test_unserved_version_is_an_error() -> None:
    """A version Istio does not serve is rejected with the versions it does serve."""
    (error,) = read_yaml(vs("a", "v2")).errors
    assert error.path == "apiVersion"
    assert "networking.istio.io/v1, networking.istio.io/v1beta1" in error.message


def test_other_kubernetes_kinds_are_skipped_at_debug_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Services, Deployments and Istio kinds meshlib does not read are no error."""
    text = textwrap.dedent(
        """
        apiVersion: v1
        kind: Service
        metadata: {name: httpbin}
        spec: {ports: [{port: 8000}]}
        ---
        apiVersion: networking.istio.io/v1alpha3
        kind: EnvoyFilter
        metadata: {name: f}
        spec: {}
        """
    )
    with caplog.at_level(logging.DEBUG, logger="meshlib.config"):
        found = read_yaml(text)
    assert not found.problems
    assert [(s.kind, s.name) for s in found.skipped] == [
        ("Service", "httpbin"),
        ("EnvoyFilter", "f"),
    ]
    assert "skipping Service httpbin" in caplog.text


def test_lists_are_flattened() -> None:
    """``kubectl get -o yaml`` output (a List, or a ``*List``) loads item by item."""
    route = {"route": [{"destination": {"host": "a"}}]}
    items = [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "a"},
            "spec": {"hosts": ["a"], "http": [route]},
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "a"},
            "spec": {"host": "a", "bogus": 1},
        },
    ]
    found = read_yaml(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    assert [r.kind for r in found.resources] == ["VirtualService"]
    (error,) = found.errors
    assert error.path == "items[1].spec.bogus"


def test_cluster_exports_load_as_they_are() -> None:
    """All of ObjectMeta and ``status`` are accepted; creationTimestamp is parsed."""
    text = textwrap.dedent(
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          annotations:
            kubectl.kubernetes.io/last-applied-configuration: |
              {"apiVersion":"networking.istio.io/v1","kind":"DestinationRule"}
          creationTimestamp: "2024-05-01T12:00:00Z"
          generation: 1
          labels: {app: reviews}
          managedFields:
          - apiVersion: networking.istio.io/v1
            fieldsType: FieldsV1
            manager: kubectl
            operation: Update
          name: reviews
          namespace: bookinfo
          resourceVersion: "123"
          uid: 6b2b1b9e-0000-0000-0000-000000000000
          finalizers: []
          ownerReferences: []
        spec:
          host: reviews
        status:
          observedGeneration: 1
          validationMessages: []
        """
    )
    (resource,) = read_yaml(text).raise_for_errors().resources
    assert resource.namespace == "bookinfo"
    assert resource.metadata.labels == {"app": "reviews"}
    assert resource.metadata.creation_timestamp == datetime.datetime(
        2024, 5, 1, 12, tzinfo=datetime.timezone.utc
    )


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("null", None),
        ("2024-05-01T12:00:00.123456789Z", datetime.datetime(2024, 5, 1, 12, 0, 0, 123456)),
        ("2024-05-01T14:00:00+02:00", datetime.datetime(2024, 5, 1, 12)),
    ],
)
def test_creation_timestamps(stamp: str, expected: datetime.datetime | None) -> None:
    """RFC 3339 with any fraction and offset, or null, as Kubernetes writes them."""
    text = DR_WITH_TIMESTAMP.format(stamp=stamp)
    (resource,) = read_yaml(text).raise_for_errors().resources
    want = expected.replace(tzinfo=datetime.timezone.utc) if expected else None
    assert resource.metadata.creation_timestamp == want


def test_bad_timestamp_is_an_error() -> None:
    """A creationTimestamp that is not RFC 3339 is reported on its field."""
    text = DR_WITH_TIMESTAMP.format(stamp="yesterday")
    (error,) = read_yaml(text).errors
    assert error.path == "metadata.creationTimestamp"


def test_namespace_defaults_to_the_loaders() -> None:
    """A resource without a namespace takes the one given when loading."""
    (resource,) = read_yaml(vs("a"), namespace="shop").resources
    assert resource.namespace == "shop"


def test_problems_name_file_document_resource_path_and_line(tmp_path: Path) -> None:
    """The text form is ``FILE#DOC: Kind ns/name: field.path: message``; lines are found."""
    bad = vs("a") + "---\n" + vs("b").replace("host: b", "host: b, sub: x")
    file = tmp_path / "routes.yaml"
    file.write_text(bad)
    (problem,) = read_paths([file]).errors
    assert str(problem) == (
        f"{file}#2: VirtualService default/b: spec.http[0].route[0].destination.sub: "
        'unknown field "sub" in Destination'
    )
    assert problem.line == 19  # lines count from the top of the file
    assert problem.to_dict()["line"] == 19


def test_yaml_syntax_error_names_document_and_line() -> None:
    """Text that is not YAML is one problem with the document and line where parsing stopped."""
    (problem,) = read_yaml(vs("a") + "---\nkind: [unclosed\n", source="x.yaml").errors
    assert problem.document == 2
    assert problem.line is not None
    assert problem.message.startswith("invalid YAML")


def test_folders_are_read_recursively_in_path_order(tmp_path: Path) -> None:
    """Folders give ``.yaml``, ``.yml`` and ``.json`` files, sorted; load order follows."""
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.yml").write_text(vs("z"))
    (tmp_path / "a.yaml").write_text(vs("a"))
    (tmp_path / "notes.txt").write_text("not yaml: [")
    found = read_paths([tmp_path]).raise_for_errors()
    assert [r.name for r in found.resources] == ["a", "z"]
    assert [r.origin.order for r in found.resources] == [1, 2]


def test_unreadable_inputs_are_kept_apart(tmp_path: Path) -> None:
    """Missing files and non-UTF-8 bytes are unusable input, not invalid configuration."""
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    found = read_paths([tmp_path / "missing.yaml", tmp_path / "latin1.yaml"])
    assert [p.message for p in found.unreadable] == [
        "cannot read: No such file or directory",
        "cannot read: not UTF-8 text",
    ]
    with pytest.raises(ConfigError) as raised:
        found.raise_for_errors()
    assert len(raised.value.problems) == 2


def test_config_error_lists_every_problem() -> None:
    """ConfigError is a ValueError whose message and ``problems`` list everything found."""
    text = vs("a").replace("hosts:", "hostz:") + "---\n" + vs("b").replace("http:", "htp:")
    with pytest.raises(ValueError, match="configuration problems") as raised:
        read_yaml(text).raise_for_errors()
    error = raised.value
    assert isinstance(error, ConfigError)
    assert {p.name for p in error.problems} == {"a", "b"}
