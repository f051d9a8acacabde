"""Kubernetes ``ObjectMeta``, read the way a cluster export writes it.

Resources exported with ``kubectl get -o yaml`` carry all of ObjectMeta (``uid``,
``resourceVersion``, ``managedFields``, the ``last-applied-configuration`` annotation, ...);
they load as they are. meshlib uses ``name``, ``namespace``, ``labels`` and
``creationTimestamp`` (which orders competing resources, as in Istio) and keeps the rest.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshlib.config._problems import Path, Report
from meshlib.config._schema import describe

__all__ = ["ObjectMeta", "decode_metadata", "refused_annotation"]

# Fields of ObjectMeta whose content meshlib keeps without looking inside.
_OPAQUE_FIELDS = frozenset(
    {
        "generateName",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "ownerReferences",
        "finalizers",
        "managedFields",
        "clusterName",
    }
)
_DNS1123_SUBDOMAIN = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z"
)
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)\Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectMeta:
    """The parts of Kubernetes ``ObjectMeta`` meshlib uses, and the rest kept as read."""

    name: str = ""
    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    creation_timestamp: datetime.datetime | None = None
    other: Mapping[str, object] = field(default_factory=dict)


def decode_metadata(value: object, path: Path, report: Report) -> ObjectMeta:
    """Read ``metadata``; problems go to ``report``, never an exception."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        report.error(path, f"expected an object, got {describe(value)}")
        return ObjectMeta()
    name = _name(value, path, report)
    namespace = _string(value, "namespace", path, report)
    if namespace and not _DNS1123_LABEL.match(namespace):
        report.error((*path, "namespace"), f'"{namespace}" is not a valid namespace name')
    other: dict[str, object] = {}
    for key, item in value.items():
        if key in _OPAQUE_FIELDS:
            other[key] = item
        elif key not in _KNOWN:
            report.warn((*path, str(key)), f'"{key}" is not a field of Kubernetes ObjectMeta')
    return ObjectMeta(
        name=name,
        namespace=namespace,
        labels=_string_map(value, "labels", path, report),
        annotations=_string_map(value, "annotations", path, report),
        creation_timestamp=_timestamp(value, path, report),
        other=other,
    )


_KNOWN = frozenset({"name", "namespace", "labels", "annotations", "creationTimestamp"})


def _name(value: dict[object, object], path: Path, report: Report) -> str:
    name = _string(value, "name", path, report)
    if not name:
        report.error((*path, "name"), "name is required")
    elif len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        report.error(
            (*path, "name"),
            f'"{name}" is not a valid name: lower-case letters, digits, "-" and "." '
            "(a DNS-1123 subdomain)",
        )
    return name


def _string(value: dict[object, object], key: str, path: Path, report: Report) -> str:
    item = value.get(key)
    if item is None:
        return ""
    if isinstance(item, str):
        return item
    report.error((*path, key), f"expected a string, got {describe(item)}")
    return ""


def _string_map(
    value: dict[object, object], key: str, path: Path, report: Report
) -> Mapping[str, str]:
    item = value.get(key)
    if item is None:
        return {}
    if not isinstance(item, dict):
        report.error((*path, key), f"expected an object (a map), got {describe(item)}")
        return {}
    result: dict[str, str] = {}
    for entry_key, entry in item.items():
        if isinstance(entry, str):
            result[str(entry_key)] = entry
        else:
            report.error((*path, key, str(entry_key)), f"expected a string, got {describe(entry)}")
    return result


def _timestamp(
    value: dict[object, object], path: Path, report: Report
) -> datetime.datetime | None:
    item = value.get("creationTimestamp")
    if item is None:
        return None
    text = item if isinstance(item, str) else None
    parsed = _parse_rfc3339(text) if text is not None else None
    if parsed is None:
        report.error(
            (*path, "creationTimestamp"),
            f"expected an RFC 3339 time such as 2024-05-01T12:00:00Z, got {describe(item)}",
        )
    return parsed


def _parse_rfc3339(text: str) -> datetime.datetime | None:
    match = _RFC3339.match(text)
    if match is None:
        return None
    moment, fraction, offset = match.groups()
    micros = (fraction[1:] + "000000")[:6] if fraction else "000000"
    zone = "+00:00" if offset in ("Z", "z") else offset
    try:
        parsed = datetime.datetime.fromisoformat(f"{moment}.{micros}{zone}")
    except ValueError:
        return None
    return parsed.astimezone(datetime.timezone.utc)


_DRY_RUN = "istio.io/dry-run"
_ALWAYS_REJECT = "internal.istio.io/webhook-always-reject"
_INTERNAL = ("internal.istio.io/parent-namespace", "internal.istio.io/parents")


def refused_annotation(kind: str, metadata: ObjectMeta) -> tuple[str, str] | None:
    """Istio's ``validateMetadata``: annotations that reject a resource before its spec.

    Returns the annotation and Istio's message; Istio then does not look at the spec.
    """
    annotations = metadata.annotations
    if _DRY_RUN in annotations and kind != "AuthorizationPolicy":
        message = (
            f"{metadata.namespace}/{metadata.name} has unsupported annotation {_DRY_RUN}, "
            "please remove the annotation"
        )
        return _DRY_RUN, message
    if _ALWAYS_REJECT in annotations:
        return _ALWAYS_REJECT, f'"{_ALWAYS_REJECT}" annotation found, rejecting'
    for key in _INTERNAL:
        if key in annotations:
            return key, f'"{key}" annotation found, this may not be set by users'
    return None
