"""Header names and header operations, as Istio's ``validation.go`` checks them."""

from __future__ import annotations

import re
from collections.abc import Mapping

from meshlib.config._problems import Path, Report
from meshlib.config._rules._common import go_quote, validate_header_value
from meshlib.config._virtual_service import HeaderOperations, Headers

__all__ = [
    "is_authority_header",
    "is_jwt_claim",
    "validate_cors_header_name",
    "validate_header_operations",
    "validate_match_header_name",
]

# RFC 7230 token characters, with the character range "+-." of Istio's regex (so "," too).
_TOKEN = re.compile(r"[!#$%&'*+,\-.^_`|~A-Za-z0-9]+\Z")
_PSEUDO_HEADERS = frozenset({":method", ":scheme", ":authority", ":path", ":status"})
_JWT_CLAIMS = "@request.auth.claims"


def is_authority_header(name: str) -> bool:
    """``:authority`` or ``host``, in any case: setting one rewrites the authority."""
    return name.lower() in (":authority", "host")


def is_jwt_claim(name: str) -> bool:
    """``jwt.ToRoutingClaim``: ``@request.auth.claims.<c>`` or ``@request.auth.claims[c]``."""
    if not name.lower().startswith(_JWT_CLAIMS):
        return False
    rest = name[len(_JWT_CLAIMS) :]
    return (rest.startswith(".") and len(rest) > 1) or (
        rest.startswith("[") and rest.endswith("]") and len(rest) > 2
    )


def validate_match_header_name(name: str, report: Report, path: Path) -> None:
    """``ValidateHTTPHeaderNameOrJwtClaimRoute``: a token, a pseudo-header or a JWT claim."""
    if not name:
        report.error(path, "header name cannot be empty")
    elif not (is_jwt_claim(name) or name in _PSEUDO_HEADERS or _TOKEN.match(name)):
        report.error(path, f"header name {name} is not a valid header name")


def validate_cors_header_name(name: str, report: Report, path: Path) -> None:
    """``ValidateCORSHTTPHeaderName``: a token, or ``*``."""
    if not name:
        report.error(path, "header name cannot be empty")
    elif name != "*" and not _TOKEN.match(name):
        report.error(path, f"header name {name} is not a valid header name")


def _request_set_name(name: str, report: Report, path: Path) -> None:
    """``ValidateHTTPHeaderWithAuthorityOperationName``: ``:authority``/``host`` allowed."""
    if not name:
        report.error(path, "header name cannot be empty")
    elif (name.startswith(":") or name.lower() == "host") and not is_authority_header(name):
        report.error(path, f'invalid header {go_quote(name)}: header cannot have ":" prefix')


def _operation_name(name: str, report: Report, path: Path) -> None:
    """``ValidateHTTPHeaderOperationName``: no ``host`` and no pseudo-headers."""
    if not name:
        report.error(path, "header name cannot be empty")
    elif name.lower() == "host":
        report.error(path, f"invalid header {go_quote(name)}: cannot set Host header")
    elif name.startswith(":"):
        report.error(path, f'invalid header {go_quote(name)}: header cannot have ":" prefix')


def _set_or_add(values: Mapping[str, str], report: Report, path: Path, *, request: bool) -> None:
    for name, value in values.items():
        if request:
            _request_set_name(name, report, (*path, name))
        else:
            _operation_name(name, report, (*path, name))
        validate_header_value(value, report, (*path, name))


def _operations(
    ops: HeaderOperations | None, report: Report, path: Path, *, request: bool
) -> None:
    if ops is None:
        return
    _set_or_add(ops.add, report, (*path, "add"), request=request)
    _set_or_add(ops.set, report, (*path, "set"), request=request)
    for index, name in enumerate(ops.remove):
        _operation_name(name, report, (*path, "remove", index))


def validate_header_operations(headers: Headers | None, report: Report, path: Path) -> None:
    """Header manipulation of a route or destination (``HTTPRoute.headers``)."""
    if headers is None:
        return
    _operations(headers.request, report, (*path, "request"), request=True)
    _operations(headers.response, report, (*path, "response"), request=False)
