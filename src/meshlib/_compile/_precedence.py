"""Which resources a workload sees, and in what order they take precedence.

Istio orders competing resources by creation time, oldest first, ties broken by name and
then namespace (``configCompareByCreationTime``). Resources read from files carry no
timestamp; Istio's file store stamps them as it reads them, so meshlib counts them as
created in load order, after every resource that has a timestamp (``istio-api.md`` §5.1).

Visibility follows ``exportTo`` (``istio-api.md`` §1.1, §2.1): empty means the mesh default
``*``; ``.`` means the resource's own namespace; ``~`` means nobody.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from meshlib.config import Resource

__all__ = [
    "creation_order",
    "exported_to",
    "is_private_to",
    "is_public",
    "virtual_service_order",
]

R = TypeVar("R", bound=Resource[Any])
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def creation_key(resource: Resource[Any]) -> tuple[int, datetime.datetime, int, str, str]:
    """Sort key: timestamped resources by time, then the rest in load order."""
    stamp = resource.metadata.creation_timestamp
    if stamp is not None:
        return (0, stamp, 0, resource.name, resource.namespace)
    return (1, _EPOCH, resource.origin.order, resource.name, resource.namespace)


def creation_order(resources: Iterable[R]) -> list[R]:
    """``resources`` oldest first (Istio's ``sortConfigByCreationTime``)."""
    return sorted(resources, key=creation_key)


def _export_to(resource: Resource[Any]) -> tuple[str, ...]:
    export_to: tuple[str, ...] = getattr(resource.spec, "export_to", ())
    return export_to or ("*",)


def is_public(resource: Resource[Any]) -> bool:
    """Exported to every namespace."""
    return "*" in _export_to(resource)


def is_private_to(resource: Resource[Any], namespace: str) -> bool:
    """In ``namespace`` and exported to it (``.`` or its own name), but not public."""
    export_to = _export_to(resource)
    return (
        resource.namespace == namespace
        and "*" not in export_to
        and ("." in export_to or namespace in export_to)
    )


def exported_to(resource: Resource[Any], namespace: str) -> bool:
    """Visible from ``namespace`` at all."""
    export_to = _export_to(resource)
    if "*" in export_to:
        return True
    if "~" in export_to:
        return False
    own = resource.namespace == namespace
    return namespace in export_to or (own and "." in export_to)


def virtual_service_order(resources: Sequence[R], namespace: str) -> list[R]:
    """VirtualServices visible to a client in ``namespace``, in the order sidecars use them.

    ``SelectVirtualServices``: first those private to the client's namespace, then those
    from other namespaces exported to it by name, then public ones, each group oldest
    first. For each host the first VirtualService wins; there is no merging on sidecars.
    """
    ordered = creation_order(resources)
    private = [r for r in ordered if is_private_to(r, namespace)]
    by_name = [
        r
        for r in ordered
        if not is_public(r) and r.namespace != namespace and namespace in _export_to(r)
    ]
    public = [r for r in ordered if is_public(r)]
    return private + by_name + public
