"""JSON in and out of the stand-in the way kube-apiserver's Go encoder does it.

Two things Python's ``json`` cannot do on its own:

* keep the raw bytes of a member of a request body (a ``runtime.RawExtension`` such as
  a ControllerRevision's ``data`` is kept exactly as sent, whitespace included, and
  compared byte for byte on update): :func:`raw_members`;
* embed raw JSON in a response: Go writes a RawExtension's bytes compacted, with
  ``<``, ``>``, ``&``, U+2028 and U+2029 escaped like ``encoding/json`` does:
  :func:`dumps` and :func:`go_compact`.
"""

from __future__ import annotations

import json
from typing import Any

from secretkit.sandbox.apiserver.schema import RawJSON

_WS = b" \t\r\n"
_HTML = {ord("<"): b"\\u003c", ord(">"): b"\\u003e", ord("&"): b"\\u0026"}
_LINE_SEPARATORS = (("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029"))


def go_compact(raw: bytes) -> bytes:
    """What Go's ``json.Marshal`` makes of a ``json.Marshaler``'s raw output.

    Whitespace outside strings goes; inside strings ``<``, ``>``, ``&`` become
    ``\\u003c``... and U+2028/U+2029 become escapes. Anything else is kept byte for
    byte (number spellings, existing escapes, key order).
    """
    out = bytearray()
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
            elif byte in _HTML:
                out += _HTML[byte]
                continue
            out.append(byte)
        elif byte in _WS:
            continue
        else:
            if byte == 0x22:
                in_string = True
            out.append(byte)
    result = bytes(out)
    for needle, escape in _LINE_SEPARATORS:
        if needle in result:
            result = result.replace(needle, escape)
    return result


def raw_members(body: bytes) -> dict[str, bytes]:
    """The raw bytes of each member value of a top-level JSON object.

    ``body`` must already be known to be valid JSON (it was parsed by ``json.loads``);
    raises ``ValueError`` if it is not an object.
    """
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    pos = _skip(text, 0)
    if text[pos : pos + 1] != "{":
        raise ValueError("not a JSON object")
    pos = _skip(text, pos + 1)
    members: dict[str, bytes] = {}
    if text[pos : pos + 1] == "}":
        return members
    while True:
        key, pos = decoder.raw_decode(text, pos)
        pos = _skip(text, pos)
        if text[pos : pos + 1] != ":":
            raise ValueError("expected ':'")
        start = _skip(text, pos + 1)
        _value, end = decoder.raw_decode(text, start)
        members[str(key)] = text[start:end].encode()
        pos = _skip(text, end)
        if text[pos : pos + 1] == ",":
            pos = _skip(text, pos + 1)
            continue
        if text[pos : pos + 1] == "}":
            return members
        raise ValueError("expected ',' or '}'")


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def dumps(doc: Any) -> bytes:
    """Compact JSON of ``doc``; :class:`RawJSON` values are embedded as Go writes them."""
    raws: list[bytes] = []

    def placeholder(value: object) -> str:
        if isinstance(value, RawJSON):
            raws.append(value.raw)
            return f"\x00raw{len(raws) - 1}\x00"
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(doc, separators=(",", ":"), default=placeholder).encode()
    for index, raw in enumerate(raws):
        text = text.replace(b'"\\u0000raw%d\\u0000"' % index, go_compact(raw) or b"null", 1)
    return text


def go_unstructured(doc: Any) -> bytes:
    """``doc`` as Go's ``encoding/json`` writes an unstructured object (a custom
    resource): keys sorted, UTF-8 as is, ``<>&`` escaped, integral numbers without
    a fraction (they were decoded to float64). The same object always gives the
    same bytes, so an update that changes nothing is a no-op."""
    return go_compact(json.dumps(_integral(doc), separators=(",", ":"), sort_keys=True,
                                 ensure_ascii=False).encode())


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value
