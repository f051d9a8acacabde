"""Istio's validation rules, kind by kind (``pkg/config/validation`` and the CRD schemas).

Each module exposes one ``validate_<kind>(spec, context, report, path)`` that reports every
rule the spec breaks, with Istio's own wording where Istio words it. Shared checks
(durations, host names, labels, header values, ``exportTo``, regexes) live in
:mod:`._common`.
"""
