"""Read Istio resources from YAML text, files and folders.

Every document is decoded and validated; nothing stops at the first problem. What cannot
be used at all (a missing file, bytes that are not UTF-8) is kept apart from what is
invalid, so that ``meshlib validate`` can tell "fix your YAML" (exit 1) from "I could not
read that" (exit 2).

Streams are read the way ``kubectl`` and Istio read them (``istio-api.md`` §5.1): empty
documents are skipped; ``List`` and ``*List`` objects are flattened into their ``items``;
Kubernetes kinds that are not Istio configuration (Service, Deployment, ...) are skipped
and logged at debug level; ``status`` is ignored; resources without a namespace take the
namespace given to the loader.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any

from meshlib._exceptions import ConfigError
from meshlib.config._kinds import KindInfo, ResourceContext, kind_of, supported_versions
from meshlib.config._metadata import decode_metadata, refused_annotation
from meshlib.config._problems import Path, Problem, Report, Severity, format_path
from meshlib.config._resource import Origin, Resource
from meshlib.config._schema import MISSING, decode_message, describe
from meshlib.config._yaml import Locator, YAMLSyntaxError, iter_documents

__all__ = ["ConfigSet", "Skipped", "read_paths", "read_yaml"]

logger = logging.getLogger("meshlib.config")

_TOP_LEVEL = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
_SPEC_REQUIRED = frozenset({"ServiceEntry", "WorkloadEntry"})  # the CRDs' root `required`
_YAML_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A document that is not Istio configuration meshlib reads, and was skipped."""

    source: str | None
    document: int
    api_version: str
    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class ConfigSet:
    """What one load produced: the valid resources and every problem found.

    ``problems`` holds errors and warnings in file and document order, ``unreadable``
    the inputs that could not be read at all. A resource with errors is left out of
    ``resources``.
    """

    resources: tuple[Resource[Any], ...] = ()
    problems: tuple[Problem, ...] = ()
    unreadable: tuple[Problem, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems that make the configuration unusable, unreadable inputs first."""
        return self.unreadable + tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """The valid-with-warning findings."""
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)

    def raise_for_errors(self) -> ConfigSet:
        """Return ``self``, or raise :class:`~meshlib.ConfigError` listing every error."""
        if self.errors:
            raise ConfigError(self.errors, self.warnings)
        return self


def read_yaml(text: str, *, source: str | None = None, namespace: str = "default") -> ConfigSet:
    """Read every Istio resource in a YAML (or JSON) stream; never raises for bad input.

    Args:
        text: one or more YAML documents.
        source: the name problems show for this text (a file name); ``None`` for a string.
        namespace: the namespace of resources that name none.
    """
    reader = _Reader(namespace)
    reader.read_text(text, source)
    return reader.result()


def read_paths(
    paths: Iterable[str | os.PathLike[str]], *, namespace: str = "default"
) -> ConfigSet:
    """Read every Istio resource in files and folders (folders recursively).

    Files given by name are read whatever their suffix; inside folders, ``*.yaml``,
    ``*.yml`` and ``*.json`` files are read in sorted path order. That order is the load
    order that stands in for ``creationTimestamp`` when resources have none.
    """
    reader = _Reader(namespace)
    for path in paths:
        for file in reader.expand(FilePath(path)):
            reader.read_file(file)
    return reader.result()


class _Reader:
    """Accumulates resources and problems over the inputs of one load."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.resources: list[Resource[Any]] = []
        self.problems: list[Problem] = []
        self.unreadable: list[Problem] = []
        self.skipped: list[Skipped] = []

    def result(self) -> ConfigSet:
        return ConfigSet(
            tuple(self.resources),
            tuple(self.problems),
            tuple(self.unreadable),
            tuple(self.skipped),
        )

    def expand(self, path: FilePath) -> Iterator[FilePath]:
        if not path.is_dir():
            yield path
            return
        found = sorted(p for p in path.rglob("*") if p.suffix in _YAML_SUFFIXES and p.is_file())
        if not found:
            message = "no .yaml, .yml or .json file in this folder"
            self.unreadable.append(Problem(Severity.ERROR, message, source=str(path)))
        yield from found

    def read_file(self, file: FilePath) -> None:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            reason = "cannot read: not UTF-8 text"
        except OSError as error:
            reason = f"cannot read: {error.strerror or error}"
        else:
            self.read_text(text, str(file))
            return
        self.unreadable.append(Problem(Severity.ERROR, reason, source=str(file)))

    def read_text(self, text: str, source: str | None) -> None:
        stream = _Stream(self, source, Locator(text))
        try:
            for document in iter_documents(text):
                stream.read_document(document.data, document.number)
        except YAMLSyntaxError as error:
            problem = Problem(Severity.ERROR, str(error), source=source, document=error.document)
            self.problems.append(dataclasses.replace(problem, line=error.line))

    def accept(self, resource: Resource[Any]) -> None:
        self.resources.append(resource)

    def next_origin(self, source: str | None, document: int) -> Origin:
        """Where the next accepted resource comes from, and its place in load order."""
        return Origin(source, document, len(self.resources) + 1)

    def skip(self, skipped: Skipped) -> None:
        logger.debug(
            "skipping %s %s (%s#%s): not read by meshlib",
            skipped.kind,
            skipped.name,
            skipped.source,
            skipped.document,
        )
        self.skipped.append(skipped)


@dataclass(slots=True)
class _Stream:
    """Reads the documents of one text, reporting problems with their location."""

    reader: _Reader
    source: str | None
    locator: Locator

    def read_document(self, data: object, number: int) -> None:
        if data is None:
            return
        if not isinstance(data, dict):
            self._report(
                number, "", (), "error", f"expected a Kubernetes object, got {describe(data)}"
            )
        elif _is_list(data):
            self._read_list(data, number)
        else:
            self._read_object(data, (), number)

    def _read_list(self, data: dict[Any, Any], number: int) -> None:
        items = data.get("items") or []
        if not isinstance(items, list):
            self._report(
                number, "", ("items",), "error", f"expected a list, got {describe(items)}"
            )
            return
        for index, item in enumerate(items):
            if isinstance(item, dict):
                self._read_object(item, ("items", index), number)
            else:
                message = f"expected a Kubernetes object, got {describe(item)}"
                self._report(number, "", ("items", index), "error", message)

    def _read_object(self, data: dict[Any, Any], prefix: Path, number: int) -> None:
        api_version, kind = data.get("apiVersion"), data.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            self._report(number, "", prefix, "error", "expected apiVersion and kind strings")
            return
        info = kind_of(api_version, kind)
        if info is None:
            self.reader.skip(Skipped(self.source, number, api_version, kind, _name_of(data)))
            return
        report = Report()
        origin = self.reader.next_origin(self.source, number)
        resource = _decode(info, api_version, data, prefix, report, self.reader.namespace, origin)
        label = f"{kind} {resource.namespace}/{resource.name}" if resource.name else kind
        for path, message in report.errors:
            self._report(number, label, path, "error", message)
        for path, message in report.warnings:
            self._report(number, label, path, "warning", message)
        if not report.errors:
            self.reader.accept(resource)

    def _report(self, number: int, label: str, path: Path, severity: str, message: str) -> None:
        kind, _, rest = label.partition(" ")
        namespace, _, name = rest.partition("/")
        self.reader.problems.append(
            Problem(
                Severity(severity),
                message,
                format_path(path),
                self.source,
                number,
                kind,
                namespace,
                name,
                self.locator.line(number, path),
            )
        )


def _decode(
    info: KindInfo,
    api_version: str,
    data: dict[Any, Any],
    prefix: Path,
    report: Report,
    default_namespace: str,
    origin: Origin,
) -> Resource[Any]:
    """Decode and validate one object of a modelled kind."""
    version = api_version.partition("/")[2]
    if version not in supported_versions(info.group):
        served = ", ".join(f"{info.group}/{v}" for v in supported_versions(info.group))
        report.error((*prefix, "apiVersion"), f"{api_version} is not served; use {served}")
    for key in data:
        if key not in _TOP_LEVEL:
            report.error((*prefix, str(key)), f'unknown field "{key}" in {info.kind}')
    metadata = decode_metadata(data.get("metadata"), (*prefix, "metadata"), report)
    if not metadata.namespace:
        metadata = dataclasses.replace(metadata, namespace=default_namespace)
    spec = _decode_spec(info, data.get("spec"), (*prefix, "spec"), report)
    refusal = refused_annotation(info.kind, metadata)
    if refusal is not None:
        key, message = refusal
        report.error((*prefix, "metadata", "annotations", key), message)
    elif spec is not MISSING:
        context = ResourceContext(
            info.kind, metadata.name, metadata.namespace, metadata.annotations
        )
        info.validate(spec, context, report, (*prefix, "spec"))
    return Resource(info.kind, api_version, metadata, None if spec is MISSING else spec, origin)


def _decode_spec(info: KindInfo, raw: object, path: Path, report: Report) -> Any:
    if raw is None:
        if info.kind in _SPEC_REQUIRED:
            report.error(path, "spec is required")
            return MISSING
        raw = {}
    return decode_message(info.spec_type, raw, path, report)


def _is_list(data: dict[Any, Any]) -> bool:
    kind = data.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and "items" in data


def _name_of(data: dict[Any, Any]) -> str:
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else ""
