"""Decode YAML data into the frozen spec dataclasses, as Istio's strict decoder does.

Spec messages are ``@dataclass(frozen=True, slots=True, kw_only=True)`` classes whose
attribute names are the proto field names (``per_try_timeout``); the YAML key is the proto
JSON name (``perTryTimeout``), derived the way ``protoc`` derives it, unless a field says
otherwise with ``field(metadata={"key": ...})``. The annotations drive decoding:

* ``str``, ``bool``, ``float``, ``Int32``/``UInt32``/``Int64`` — proto3 scalars (unset is
  the zero value); ``X | None`` — a wrapper type or message where unset differs from zero;
* ``tuple[X, ...]`` — repeated; ``Mapping[str, X]`` — map (a ``null`` element or value
  that should be a message decodes as an empty one, noted in ``Report.nulls``); an
  ``enum.Enum`` with int
  values — a proto enum, read by name or by number; ``Duration``, ``Percent``, ``Bytes``.

Following Istio (``istio-api.md`` §0.1): unknown fields are errors, ``null`` means unset,
members of a ``oneof`` (declared in a ``_oneofs`` class variable) exclude each other as
the CRD schema's ``oneOf`` makes them, enums accept their names or numbers, numbers are
not accepted as strings. snake_case keys, which Istio's Go decoder accepts but its CRD
schema does not, are read with a warning.

Decoding never raises for bad input: every problem goes to the :class:`Report` with its
path, the field is left unset, and decoding goes on so that one pass finds everything.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, NewType, TypeVar, Union

from meshlib.config._problems import Path, Report
from meshlib.config._values import Duration, parse_duration

__all__ = [
    "MISSING",
    "Bytes",
    "Int32",
    "Int64",
    "OneofGroups",
    "UInt32",
    "decode_message",
    "describe",
    "yaml_key",
]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class _IntRange:
    name: str
    low: int
    high: int


#: The ``_oneofs`` class variable of a spec message: groups of mutually exclusive fields.
OneofGroups = tuple[tuple[str, ...], ...]

Int32 = Annotated[int, _IntRange("int32", -(2**31), 2**31 - 1)]
UInt32 = Annotated[int, _IntRange("uint32", 0, 2**32 - 1)]
Int64 = Annotated[int, _IntRange("int64", -(2**63), 2**63 - 1)]
#: ``bytes`` fields are base64 text in YAML, as in proto JSON.
Bytes = NewType("Bytes", bytes)


class _Missing:
    """Marks a value that could not be decoded (the problem is already reported)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

Decoder = Callable[[object, Path, Report], Any]


def yaml_key(attr: str) -> str:
    """The proto JSON name of a proto field name, as ``protoc`` derives it."""
    head, *rest = attr.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def describe(value: object) -> str:
    """Say what kind of YAML value ``value`` is, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f'string "{value}"' if len(value) <= 40 else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# --------------------------------------------------------------------------- scalars


def _decode_str(value: object, path: Path, report: Report) -> Any:
    if isinstance(value, str):
        return value
    report.error(path, f"expected a string, got {describe(value)}")
    return MISSING


def _decode_bool(value: object, path: Path, report: Report) -> Any:
    if isinstance(value, bool):
        return value
    report.error(path, f"expected true or false, got {describe(value)}")
    return MISSING


def _decode_float(value: object, path: Path, report: Report) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    report.error(path, f"expected a number, got {describe(value)}")
    return MISSING


def _int_decoder(bounds: _IntRange) -> Decoder:
    def decode(value: object, path: Path, report: Report) -> Any:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            report.error(path, f"expected an integer, got {describe(value)}")
            return MISSING
        if not bounds.low <= value <= bounds.high:
            report.error(path, f"{value} is out of range for {bounds.name}")
            return MISSING
        return value

    return decode


def _decode_duration(value: object, path: Path, report: Report) -> Any:
    if not isinstance(value, str):
        report.error(
            path, f'expected a duration string such as "5s" or "250ms", got {describe(value)}'
        )
        return MISSING
    try:
        return parse_duration(value)
    except ValueError as error:
        report.error(path, str(error))
        return MISSING


def _decode_bytes(value: object, path: Path, report: Report) -> Any:
    if isinstance(value, str):
        try:
            return Bytes(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            pass
    report.error(path, f"expected base64 text, got {describe(value)}")
    return MISSING


def _enum_decoder(enum_type: type[enum.Enum]) -> Decoder:
    by_name = {member.name: member for member in enum_type}
    by_number = {member.value: member for member in enum_type}
    names = ", ".join(by_name)

    def decode(value: object, path: Path, report: Report) -> Any:
        if isinstance(value, str) and value in by_name:
            return by_name[value]
        if isinstance(value, int) and not isinstance(value, bool) and value in by_number:
            return by_number[value]
        report.error(path, f"{describe(value)} is not one of {names}")
        return MISSING

    return decode


# ----------------------------------------------------------------------- containers


def _list_decoder(item: Decoder, item_is_message: bool) -> Decoder:
    def decode(value: object, path: Path, report: Report) -> Any:
        if not isinstance(value, list):
            report.error(path, f"expected a list, got {describe(value)}")
            return MISSING
        if not value:
            report.empty.add(path)
        items = []
        for index, element in enumerate(value):
            if element is None and item_is_message:
                report.nulls.add((*path, index))
                element = {}
            decoded = item(element, (*path, index), report)
            if decoded is not MISSING:
                items.append(decoded)
        return tuple(items)

    return decode


def _map_key(key: object) -> str:
    # Kubernetes turns YAML into JSON before Istio reads it, and JSON keys are strings.
    if isinstance(key, bool):
        return "true" if key else "false"
    return key if isinstance(key, str) else str(key)


def _map_decoder(item: Decoder, item_is_message: bool) -> Decoder:
    def decode(value: object, path: Path, report: Report) -> Any:
        if not isinstance(value, dict):
            report.error(path, f"expected an object (a map), got {describe(value)}")
            return MISSING
        if not value:
            report.empty.add(path)
        entries = {}
        for raw_key, element in value.items():
            key = _map_key(raw_key)
            if element is None and item_is_message:
                report.nulls.add((*path, key))
                element = {}
            elif element is None:
                report.error((*path, key), "value must not be null")
                continue
            decoded = item(element, (*path, key), report)
            if decoded is not MISSING:
                entries[key] = decoded
        return entries

    return decode


# ------------------------------------------------------------------------- messages


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    key: str
    attr: str
    decode: Decoder
    #: A YAML value of exactly this type is taken as it is (strings, booleans): the
    #: common case costs one type check instead of a call.
    plain: type | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    cls: type[Any]
    name: str
    fields: Mapping[str, _Field]
    snake_fields: Mapping[str, _Field]
    oneofs: tuple[tuple[_Field, ...], ...]
    #: ``fields`` as plain tuples ``(attr, plain, decode, key)``: the hot loop unpacks them.
    lookup: Mapping[str, tuple[str, type | None, Decoder, str]]


_PLANS: dict[type[Any], _Plan] = {}


def decode_message(cls: type[T], value: object, path: Path, report: Report) -> T | Any:
    """Decode ``value`` (parsed YAML) as the spec message ``cls``.

    Returns ``MISSING`` when ``value`` is not an object at all; otherwise an instance
    built from every field that decoded, with problems reported along the way.
    """
    plan = _PLANS.get(cls) or _build_plan(cls)
    if not isinstance(value, dict):
        report.error(path, f"expected an object, got {describe(value)}")
        return MISSING
    lookup = plan.lookup
    values: dict[str, Any] = {}
    for key, raw in value.items():
        entry = lookup.get(key)
        if entry is None:
            spec = _snake_case_field(plan, key, path, report)
            if spec is None:
                continue
            entry = (spec.attr, spec.plain, spec.decode, spec.key)
        if raw is None:
            continue  # null means unset, as in proto JSON
        attr, plain, decode, yaml_name = entry
        if type(raw) is plain:
            values[attr] = raw
            continue
        decoded = decode(raw, (*path, yaml_name), report)
        if decoded is not MISSING:
            values[attr] = decoded
    for group in plan.oneofs:
        _check_oneof(group, values, path, report)
    return cls(**values)


def _snake_case_field(plan: _Plan, key: object, path: Path, report: Report) -> _Field | None:
    spec = plan.snake_fields.get(key) if isinstance(key, str) else None
    if spec is None:
        report.error((*path, _map_key(key)), f'unknown field "{key}" in {plan.name}')
        return None
    report.warn(
        (*path, spec.key),
        f'"{key}" is the proto name of "{spec.key}": Istio\'s Go decoder accepts it, '
        f"but its CRD schema (kubectl) does not; write {spec.key}",
    )
    return spec


def _check_oneof(
    group: tuple[_Field, ...], values: dict[str, Any], path: Path, rep: Report
) -> None:
    present = [member.key for member in group if member.attr in values]
    if len(present) > 1:
        names = ", ".join(member.key for member in group)
        rep.error(path, f"only one of {names} may be set, got {' and '.join(present)}")


def _build_plan(cls: type[Any]) -> _Plan:
    hints = typing.get_type_hints(cls, include_extras=True)
    by_attr: dict[str, _Field] = {}
    for declared in dataclasses.fields(cls):
        key = declared.metadata.get("key") or yaml_key(declared.name)
        hint = hints[declared.name]
        by_attr[declared.name] = _Field(key, declared.name, _decoder_for(hint), _plain(hint))
    fields = {spec.key: spec for spec in by_attr.values()}
    snake = {
        attr.rstrip("_"): spec for attr, spec in by_attr.items() if attr.rstrip("_") != spec.key
    }
    groups: tuple[tuple[str, ...], ...] = getattr(cls, "_oneofs", ())
    oneofs = tuple(tuple(by_attr[attr] for attr in group) for group in groups)
    lookup = {key: (f.attr, f.plain, f.decode, f.key) for key, f in fields.items()}
    plan = _Plan(cls, cls.__name__, fields, snake, oneofs, lookup)
    _PLANS[cls] = plan
    return plan


def _plain(annotation: object) -> type | None:
    """The YAML type that needs no conversion for this annotation (str or bool), if any."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = (a for a in typing.get_args(annotation) if a is not type(None))
    return annotation if annotation in (str, bool) else None


_SCALARS: dict[object, Decoder] = {
    str: _decode_str,
    bool: _decode_bool,
    float: _decode_float,
    Duration: _decode_duration,
    Bytes: _decode_bytes,
}


def _decoder_for(annotation: object) -> Decoder:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        (inner,) = (arg for arg in typing.get_args(annotation) if arg is not type(None))
        return _decoder_for(inner)
    if origin is Annotated:
        _, bounds = typing.get_args(annotation)
        return _int_decoder(bounds)
    if origin is tuple:
        item_type = typing.get_args(annotation)[0]
        return _list_decoder(_decoder_for(item_type), dataclasses.is_dataclass(item_type))
    if origin is Mapping or origin is dict:
        value_type = typing.get_args(annotation)[1]
        return _map_decoder(_decoder_for(value_type), dataclasses.is_dataclass(value_type))
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_decoder(annotation)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        message_type = annotation
        return lambda value, path, report: decode_message(message_type, value, path, report)
    raise TypeError(f"no decoder for {annotation!r}")  # a bug in a spec class, not input
