"""Objects of the served kinds: JSON form <-> the bytes kube-apiserver stores.

The protobuf body of a typed kind is written and read by the table-driven codec of
:mod:`.schema` from the kind's message (:mod:`.kinds`); stored values are that body
wrapped in ``k8s\\x00`` + ``runtime.Unknown{apiVersion, kind, raw}``. Untyped kinds
(:mod:`.generic`) are stored as JSON, like kube-apiserver stores custom resources.
"""

from __future__ import annotations

import json
from typing import Any

from secretkit.core.formats import decode_unknown, encode_unknown
from secretkit.core.formats.protowire import encode_len_field, iter_fields, read_varint
from secretkit.errors import FormatError
from secretkit.sandbox.apiserver import jsonwire
from secretkit.sandbox.apiserver.resources import ResourceType
from secretkit.sandbox.apiserver.schema import (
    OBJECT_META,
    decode_message,
    encode_message,
    with_field,
)


def encode_object(rtype: ResourceType, obj: dict[str, Any]) -> bytes:
    """Serialize a normalized object (JSON form) to its protobuf bytes (no envelope)."""
    if rtype.message is None:
        raise AssertionError(f"{rtype.qualified} is served in JSON only")
    return encode_message(rtype.message, obj)


def decode_object(rtype: ResourceType, raw: bytes | memoryview) -> dict[str, Any]:
    """Parse protobuf bytes of ``rtype`` into the JSON form (FormatError if bad)."""
    if rtype.message is None:
        raise FormatError(f"{rtype.qualified} is served in JSON only", where="object")
    body = decode_message(rtype.message, raw, where=f"{rtype.api_version}.{rtype.kind}")
    obj: dict[str, Any] = {"kind": rtype.kind, "apiVersion": rtype.api_version}
    obj["metadata"] = body.pop("metadata", {})
    obj.update(body)
    return obj


def encode_stored(rtype: ResourceType, obj: dict[str, Any]) -> bytes:
    """The plaintext kube-apiserver stores: ``k8s\\x00`` + runtime.Unknown of the object,
    or, for a kind stored as JSON, the object as Go's JSON encoder writes an
    unstructured one (keys sorted, a newline at the end)."""
    if rtype.message is None:
        return jsonwire.go_unstructured(obj) + b"\n"
    return encode_unknown(rtype.api_version, rtype.kind, encode_object(rtype, obj))


def decode_stored(rtype: ResourceType, plaintext: bytes) -> dict[str, Any]:
    """Inverse of :func:`encode_stored` (FormatError when the bytes are not ``rtype``).

    A JSON value is read as ``rtype`` whichever API wrote it: both Event APIs share
    ``events/`` and list each other's objects. kube-apiserver converts the fields
    between the two Event versions; the stand-in only relabels ``apiVersion``/``kind``.
    """
    if rtype.message is None:
        body = _json_object(plaintext)
        obj: dict[str, Any] = {"kind": rtype.kind, "apiVersion": rtype.api_version,
                               "metadata": body.pop("metadata", None) or {}}
        body.pop("kind", None)
        body.pop("apiVersion", None)
        obj.update(body)
        return obj
    return decode_object(rtype, decode_unknown(plaintext).raw)


def decode_stored_metadata(plaintext: bytes) -> dict[str, Any]:
    """Only the ``metadata`` of a stored object (field 1 of every kind's message)."""
    if not plaintext.startswith(b"k8s\x00"):
        meta = _json_object(plaintext).get("metadata") or {}
        return dict(meta) if isinstance(meta, dict) else {}
    raw = decode_unknown(plaintext).raw
    for number, _wire, value in iter_fields(raw, where="object"):
        if number == 1 and isinstance(value, memoryview):
            return decode_message(OBJECT_META, value, where="metadata")
    return {}


def _json_object(plaintext: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(plaintext)
    except ValueError:
        raise FormatError("a stored JSON value is not valid JSON", where="object") from None
    if not isinstance(doc, dict):
        raise FormatError("a stored JSON value is not an object", where="object")
    return doc


def stored_metadata_raw(plaintext: bytes, resource_version: str) -> bytes:
    """A stored object's ``ObjectMeta`` bytes with ``resourceVersion`` set, not re-encoded.

    What a metadata-only answer in protobuf carries: the bytes kube-apiserver stored
    (field 1 of every kind), with field 6 filled in as it fills it on read. This runs
    for every object of a metadata list and every no-op patch, so it walks only the
    envelope's ``raw`` (field 2) and the object's first field instead of decoding.
    A JSON value's metadata is encoded from its JSON form.
    """
    if not plaintext.startswith(b"k8s\x00"):
        meta_doc = decode_stored_metadata(plaintext)
        meta_doc["resourceVersion"] = resource_version
        return encode_message(OBJECT_META, meta_doc)
    start, end = _len_field(plaintext, 4, len(plaintext), 2)  # runtime.Unknown.raw
    meta_start, meta_end = _len_field(plaintext, start, end, 1)  # the object's metadata
    rv_field = encode_len_field(6, resource_version.encode())
    at = _before_field_6(plaintext, meta_start, meta_end)
    if at is None:  # a field 6 is stored, or a header this walk does not read
        return with_field(plaintext[meta_start:meta_end], 6, rv_field, ordered=True)
    return plaintext[meta_start:at] + rv_field + plaintext[at:meta_end]


def _before_field_6(data: bytes, pos: int, end: int) -> int | None:
    """Where ``resourceVersion`` (field 6) goes in an ObjectMeta stored without one.

    ObjectMeta's fields 1-5 (name, generateName, namespace, selfLink, uid) are short
    strings: one-byte tags and, nearly always, one-byte lengths. Walking them inline
    is what keeps a metadata answer cheap; anything else (a long name, a stored
    field 6) returns None and the general splice decides.
    """
    while pos < end:
        tag = data[pos]
        if tag >= 0x30:  # field 6 or later (or a multi-byte tag)
            return pos if 0x38 <= tag < 0x80 else None
        if tag & 7 != 2 or pos + 1 >= end or data[pos + 1] >= 0x80:
            return None
        pos += 2 + data[pos + 1]
    return end if pos == end else None


def _len_field(data: bytes, pos: int, end: int, number: int) -> tuple[int, int]:
    """``(start, end)`` of the payload of length-delimited field ``number`` in
    ``data[pos:end]`` (FormatError when absent or malformed)."""
    if not data.startswith(b"k8s\x00"):
        raise FormatError("not a k8s protobuf value", where="object")
    while pos < end:
        tag, pos = read_varint(data, pos, where="object")
        if tag & 7 != 2:
            if tag & 7 == 0:
                _, pos = read_varint(data, pos, where="object")
                continue
            raise FormatError("unexpected wire type", where="object")
        length, pos = read_varint(data, pos, where="object")
        if pos + length > end:
            raise FormatError("truncated field", where="object")
        if tag >> 3 == number:
            return pos, pos + length
        pos += length
    raise FormatError(f"field {number} is missing", where="object")
