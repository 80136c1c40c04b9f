"""Label and field selectors for list requests (the subset kubectl and clients use)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from secretkit.sandbox.apiserver.status import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)([^\s!=,()]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")


def _split_terms(text: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current)
    return terms


def label_selector(text: str | None) -> Predicate | None:
    """Parse ``a=b,c!=d,e,!f,g in (x,y),h notin (z)``; None when empty."""
    if not text:
        return None
    checks: list[Predicate] = []
    for term in _split_terms(text):
        checks.append(_label_term(term.strip()))

    def matches(obj: dict[str, Any]) -> bool:
        return all(check(obj) for check in checks)

    return matches


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    labels = obj.get("metadata", {}).get("labels") or {}
    return dict(labels)


def _label_term(term: str) -> Predicate:
    for op in ("!=", "==", "="):
        if op in term:
            key, _, value = (part.strip() for part in term.partition(op))
            if not key:
                break
            return _label_equals(key, value, negate=op == "!=")
    match = _SET_RE.match(term)
    if not match:
        raise bad_request(f"unable to parse requirement: {term!r}")
    negate, key, op, values = match.groups()
    if op:
        allowed = {v.strip() for v in values.split(",") if v.strip()}
        if op == "in":
            return lambda o: _labels(o).get(key) in allowed
        return lambda o: _labels(o).get(key) not in allowed
    if negate:
        return lambda o: key not in _labels(o)
    return lambda o: key in _labels(o)


def _label_equals(key: str, value: str, *, negate: bool) -> Predicate:
    def check(obj: dict[str, Any]) -> bool:
        return (_labels(obj).get(key) == value) != negate

    return check


def _field_equals(
    getter: Callable[[dict[str, Any]], str], value: str, *, negate: bool
) -> Predicate:
    def check(obj: dict[str, Any]) -> bool:
        return (getter(obj) == value) != negate

    return check


def field_selector(text: str | None) -> Predicate | None:
    """Parse ``metadata.name=x`` / ``metadata.namespace!=y`` (and ``type`` for Secrets)."""
    if not text:
        return None
    checks: list[Predicate] = []
    for term in text.split(","):
        op = "!=" if "!=" in term else "==" if "==" in term else "="
        field, _, value = (part.strip() for part in term.partition(op))
        getter = _field_getter(field)
        checks.append(_field_equals(getter, value, negate=op == "!="))

    def matches(obj: dict[str, Any]) -> bool:
        return all(check(obj) for check in checks)

    return matches


def _field_getter(field: str) -> Callable[[dict[str, Any]], str]:
    if field == "metadata.name":
        return lambda o: str(o.get("metadata", {}).get("name", ""))
    if field == "metadata.namespace":
        return lambda o: str(o.get("metadata", {}).get("namespace", ""))
    if field == "type":
        return lambda o: str(o.get("type", ""))
    raise bad_request(f'field label not supported: "{field}"')
