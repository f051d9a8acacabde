"""Checks shared by several kinds, with Istio's wording.

Sources: ``pkg/config/validation/agent/validation.go`` (durations, ports, domains, IPs),
``pkg/config/labels/instance.go`` (label syntax; Istio's DNS-1123 label accepts upper
case), ``pkg/config/visibility`` (``exportTo``), ``header_value_validator.go`` (Envoy's
header format strings) and ``validation.go`` (header names, regexes, gateway names).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping

from meshlib._regex import MAX_REGEX_LENGTH, RegexError, compile_re2
from meshlib.config._problems import Path, Report
from meshlib.config._values import Duration, Percent

__all__ = [
    "go_float",
    "go_quote",
    "is_dns1123_label",
    "is_valid_ip",
    "validate_duration",
    "validate_export_to",
    "validate_fqdn",
    "validate_header_value",
    "validate_ip_subnet",
    "validate_labels",
    "validate_percent",
    "validate_percentage",
    "validate_port",
    "validate_regex",
    "validate_wildcard_domain",
]

_MILLISECOND = 1_000_000
_DNS1123_LABEL = re.compile(r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?\Z")
_WILDCARD_LABEL = re.compile(r"(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)\Z")
_LABEL_NAME = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_TAG_KEY = re.compile(
    r"((?:[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)*/)?"
    rf"({_LABEL_NAME})\Z"
)
_TAG_VALUE = re.compile(rf"(?:{_LABEL_NAME})?\Z")
_HEADER_VALUE = re.compile("[^\x00-\x08\x0a-\x1f\x7f]*\\Z")


def go_quote(text: str) -> str:
    """Go's ``%q`` of a string (double quotes, backslash escapes)."""
    return json.dumps(text, ensure_ascii=False)


def go_float(value: float) -> str:
    """Go's ``%v`` of a float64: the shortest form, no trailing ``.0``."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


# --------------------------------------------------------------------------- numbers


def validate_duration(duration: Duration | None, report: Report, path: Path) -> None:
    """``agent.ValidateDuration``: at least 1 ms, whole milliseconds."""
    if duration is None:
        return
    if duration.nanos < _MILLISECOND:
        report.error(path, "duration must be greater than 1ms")
    elif duration.nanos % _MILLISECOND:
        report.error(path, "only durations to ms precision are supported")


def validate_port(port: int, report: Report, path: Path, prefix: str = "") -> None:
    """``agent.ValidatePort``: 1..65535."""
    if not 1 <= port <= 65535:
        report.error(path, f"{prefix}port number {port} must be in the range 1..65535")


def validate_percent(value: int, report: Report, path: Path) -> None:
    """``ValidatePercent`` for int32 percentages: 0..100."""
    if not 0 <= value <= 100:
        report.error(path, f"percentage {value} is not in range 0..100")


def validate_percentage(percent: Percent | None, report: Report, path: Path) -> None:
    """``validatePercentage``: 0, or 0.0001..100 (Envoy's resolution is one per million)."""
    if percent is None:
        return
    value = percent.value
    if value < 0 or value > 100 or 0 < value < 0.0001:
        report.error(
            path, f"percentage {go_float(value)} is neither 0.0, nor in range [0.0001, 100.0]"
        )


# ----------------------------------------------------------------------------- names


def is_dns1123_label(value: str) -> bool:
    """Istio's ``labels.IsDNS1123Label`` (upper case allowed, at most 63 characters)."""
    return len(value) <= 63 and _DNS1123_LABEL.match(value) is not None


def _preconditions(name: str) -> str | None:
    if len(name) > 255:
        return f"domain name {go_quote(name)} too long (max 255)"
    if not name:
        return "empty domain name not allowed"
    return None


def _dns1123_labels(domain: str) -> str | None:
    parts = domain.split(".")
    top = parts[-1]
    if re.fullmatch(r"[+-]?\d+", top):
        return (
            f"domain name {go_quote(domain)} invalid "
            f"(top level domain {go_quote(top)} cannot be all-numeric)"
        )
    for index, label in enumerate(parts):
        if index == len(parts) - 1 and not label:
            return None  # a trailing dot is allowed: "istio.io."
        if not is_dns1123_label(label):
            return f"domain name {go_quote(domain)} invalid (label {go_quote(label)} invalid)"
    return None


def validate_fqdn(name: str) -> str | None:
    """``agent.ValidateFQDN``: the problem with ``name`` as a DNS name, or None."""
    return _preconditions(name) or _dns1123_labels(name)


def validate_wildcard_domain(name: str) -> str | None:
    """``agent.ValidateWildcardDomain``: a DNS name whose first label may be a wildcard."""
    problem = _preconditions(name)
    if problem:
        return problem
    first, dot, rest = name.partition(".")
    if not (len(first) <= 63 and _WILDCARD_LABEL.match(first)):
        return f"domain name {go_quote(name)} invalid (label {go_quote(first)} invalid)"
    return _dns1123_labels(rest) if dot else None


def is_valid_ip(address: str) -> bool:
    """``netutil.IsValidIPAddress``: an IPv4 or IPv6 address (zones allowed), no CIDR."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def validate_ip_subnet(subnet: str, report: Report, path: Path) -> None:
    """``agent.ValidateIPSubnet``: a CIDR block, or a single IP address."""
    if subnet.count("/") == 1:
        try:
            ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            report.error(path, f"{subnet} is not a valid CIDR block")
    elif not is_valid_ip(subnet):
        report.error(path, f"{subnet} is not a valid IP")


def validate_labels(labels: Mapping[str, str], report: Report, path: Path) -> None:
    """``labels.Instance.Validate``: Kubernetes label keys and values."""
    for key, value in labels.items():
        match = _TAG_KEY.match(key)
        if match is None:
            report.error((*path, key), f"invalid tag key: {go_quote(key)}")
        elif match.group(1) and len(match.group(1)) - 1 > 253:
            report.error(
                (*path, key), f"invalid tag key: {go_quote(key)} (DNS prefix is too long)"
            )
        elif len(match.group(2)) > 63:
            report.error((*path, key), f"invalid tag key: {go_quote(key)} (name is too long)")
        if not _TAG_VALUE.match(value):
            report.error((*path, key), f"invalid tag value: {go_quote(value)}")


# -------------------------------------------------------------------------- exportTo


def validate_export_to(
    namespace: str,
    export_to: Iterable[str],
    report: Report,
    path: Path,
    *,
    service_entry: bool = False,
    selector: bool = False,
) -> None:
    """``validateExportTo``: ``.``, ``*``, namespace names; ``~`` for ServiceEntries only."""
    entries = list(export_to)
    if not entries:
        return
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        key = namespace if entry == "." else entry
        if key in seen:
            message = (
                f"duplicate entries in exportTo: . and current namespace {namespace}"
                if key != entry
                else f"duplicate entries in exportTo for entry {entry}"
            )
            report.error((*path, index), message)
        elif service_entry and entry == "~":
            seen.add(key)
        elif key == "~":
            report.error(
                (*path, index), "exportTo ~ (none) is not allowed for Istio configuration objects"
            )
        elif key not in (".", "*") and not is_dns1123_label(key):
            report.error(
                (*path, index),
                "only .,*,~, or a valid DNS 1123 label is allowed as exportTo entry",
            )
        else:
            seen.add(key)
    if selector and seen:
        if namespace not in seen:
            report.error(
                path,
                "destination rule with workload selector cannot have exportTo beyond current "
                "namespace",
            )
        elif len(seen) > 1:
            report.error(
                path,
                "destination rule with workload selector cannot have multiple entries in exportTo",
            )
    if "*" in seen and len(entries) > 1:
        report.error(
            path, "cannot have both public (*) and non-public exportTo values for a resource"
        )
    if "~" in seen and len(entries) > 1:
        report.error(path, "cannot export service entry to no one (~) and someone")


# --------------------------------------------------------------------------- regexes


def validate_regex(pattern: str, where: str, report: Report, path: Path) -> None:
    """``validateStringRegexp``: at most 1024 characters, and valid RE2."""
    if len(pattern.encode()) > MAX_REGEX_LENGTH:
        report.error(
            path,
            f"{go_quote(where)}: regex is too large, max length allowed is {MAX_REGEX_LENGTH}",
        )
        return
    if _has_any_byte_escape(pattern):
        report.error(
            path,
            f"{go_quote(where)}: error parsing regexp: invalid escape sequence: `\\C`; Istio "
            "uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)",
        )
        return
    try:
        compile_re2(pattern)
    except RegexError as error:
        report.error(
            path,
            f"{go_quote(where)}: error parsing regexp: {error}; Istio uses RE2 style regex-based "
            "match (https://github.com/google/re2/wiki/Syntax)",
        )


def _has_any_byte_escape(pattern: str) -> bool:
    """``\\C`` (any byte): RE2 accepts it, Go's regexp (Istio's validator) does not."""
    escaped = False
    for char in pattern:
        if escaped and char == "C":
            return True
        escaped = not escaped and char == "\\"
    return False


# ----------------------------------------------------------------------- header values


def validate_header_value(value: str, report: Report, path: Path) -> None:
    """``ValidateHTTPHeaderValue``: no control characters, and a valid Envoy format string."""
    if not _HEADER_VALUE.match(value):
        report.error(path, f"header value configuration {value} is invalid")
        return
    problem = _header_format_problem(value)
    if problem:
        report.error(path, f"header value configuration: invalid header configuration. {problem}")


def _header_format_problem(value: str) -> str | None:
    """Envoy's ``header_parser.cc`` grammar, as Istio ports it (``%VAR%``, ``%%``)."""
    state = "literal"
    data = value.encode()
    position = 0
    while position < len(data):
        char = chr(data[position])
        if state == "literal":
            if char == "%":
                if position + 1 >= len(data):
                    return "Un-escaped %"
                if chr(data[position + 1]) == "%":
                    position += 1
                else:
                    state = "name"
        elif state == "name":
            state = {"%": "literal", "(": "array"}.get(char, "name")
        elif state == "array":
            if char == "[":
                state = "expect-string"
            elif char != " ":
                state = "string"
        elif state == "delimiter":
            if char == ",":
                state = "expect-string"
            elif char == "]":
                state = "args-end"
            elif char != " ":
                return "Expecting ',', ']', or whitespace"
        elif state == "expect-string":
            if char == '"':
                state = "string"
            elif char != " ":
                return "Expecting '\"'"
        elif state == "string":
            if char == "\\":
                if position + 1 >= len(data):
                    return "Un-terminated backslash in JSON string"
                position += 1
            elif char == ")":
                state = "variable-end"
            elif char == '"':
                state = "delimiter"
        elif state == "args-end":
            if char == ")":
                state = "variable-end"
            elif char != " ":
                return "Expecting ')' or whitespace after '{}', but found '{}'"
        elif state == "variable-end":
            if char == "%":
                state = "literal"
            elif char != " ":
                return "Expecting '%' or whitespace after"
        position += 1
    if state != "literal":
        return f"Un-terminated variable expression '{value}'"
    return None
