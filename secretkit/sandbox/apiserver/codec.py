"""Secret and ConfigMap protobuf codec (JSON form ↔ ``k8s.io/api/core/v1`` bytes).

Field numbers are those of ``k8s.io/api/core/v1/generated.proto`` and
``k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto``. The writer mimics the
apiserver's gogo-generated marshallers: fields in ascending order, non-pointer
scalars always written (even when empty), map entries sorted by key, optional
pointers (``immutable``) only when set. Unknown fields are skipped on read.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from secretkit.errors import FormatError
from secretkit.formats.protowire import (
    WIRE_LEN,
    WIRE_VARINT,
    encode_len_field,
    encode_varint_field,
    iter_fields,
)
from secretkit.sandbox.apiserver.resources import SECRETS, ResourceType

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


# -- writing -------------------------------------------------------------------------------
def _string(number: int, value: str) -> bytes:
    return encode_len_field(number, value.encode())


def _map_entries(number: int, values: dict[str, bytes]) -> bytes:
    return b"".join(
        encode_len_field(number, _string(1, key) + encode_len_field(2, values[key]))
        for key in sorted(values)
    )


def _time(number: int, timestamp: str | None) -> bytes:
    seconds = 0
    if timestamp:
        parsed = datetime.strptime(timestamp, _TIME_FORMAT).replace(tzinfo=UTC)
        seconds = int(parsed.timestamp())
    # int64 varints of negative values use the two's complement 64-bit form
    body = encode_varint_field(1, seconds & ((1 << 64) - 1)) + encode_varint_field(2, 0)
    return encode_len_field(number, body)


def _owner_reference(ref: dict[str, Any]) -> bytes:
    out = [
        _string(1, str(ref.get("kind", ""))),
        _string(3, str(ref.get("name", ""))),
        _string(4, str(ref.get("uid", ""))),
        _string(5, str(ref.get("apiVersion", ""))),
    ]
    if ref.get("controller") is not None:
        out.append(encode_varint_field(6, int(bool(ref["controller"]))))
    if ref.get("blockOwnerDeletion") is not None:
        out.append(encode_varint_field(7, int(bool(ref["blockOwnerDeletion"]))))
    return b"".join(out)


def _object_meta(meta: dict[str, Any]) -> bytes:
    out = [
        _string(1, meta.get("name", "")),
        _string(2, meta.get("generateName", "")),
        _string(3, meta.get("namespace", "")),
        _string(4, ""),  # selfLink
        _string(5, meta.get("uid", "")),
        _string(6, ""),  # resourceVersion is never stored
        encode_varint_field(7, int(meta.get("generation", 0))),
        _time(8, meta.get("creationTimestamp")),
        _map_entries(11, {k: v.encode() for k, v in (meta.get("labels") or {}).items()}),
        _map_entries(12, {k: v.encode() for k, v in (meta.get("annotations") or {}).items()}),
    ]
    out.extend(encode_len_field(13, _owner_reference(r)) for r in meta.get("ownerReferences", []))
    out.extend(_string(14, f) for f in meta.get("finalizers", []))
    return b"".join(out)


def encode_object(rtype: ResourceType, obj: dict[str, Any]) -> bytes:
    """Serialize a normalized Secret/ConfigMap (JSON form) to its v1 protobuf bytes."""
    out = [encode_len_field(1, _object_meta(obj["metadata"]))]
    if rtype is SECRETS:
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        out.append(_map_entries(2, data))
        out.append(_string(3, obj.get("type", "")))
        if obj.get("immutable") is not None:
            out.append(encode_varint_field(5, int(bool(obj["immutable"]))))
    else:
        out.append(_map_entries(2, {k: v.encode() for k, v in (obj.get("data") or {}).items()}))
        binary = {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
        out.append(_map_entries(3, binary))
        if obj.get("immutable") is not None:
            out.append(encode_varint_field(4, int(bool(obj["immutable"]))))
    return b"".join(out)


# -- reading -------------------------------------------------------------------------------
def _text(value: int | memoryview, where: str) -> str:
    if not isinstance(value, memoryview):
        raise FormatError("expected a length-delimited field", where=where)
    try:
        return str(value, "utf-8")
    except UnicodeDecodeError:
        raise FormatError("string field is not valid UTF-8", where=where) from None


def _entry(value: int | memoryview, where: str) -> tuple[str, bytes]:
    if not isinstance(value, memoryview):
        raise FormatError("map entry is not length-delimited", where=where)
    key, item = "", b""
    for number, _wire, field in iter_fields(value, where=where):
        if number == 1:
            key = _text(field, where)
        elif number == 2 and isinstance(field, memoryview):
            item = bytes(field)
    return key, item


def _read_time(value: int | memoryview, where: str) -> str | None:
    if not isinstance(value, memoryview):
        raise FormatError("timestamp is not length-delimited", where=where)
    seconds = 0
    for number, wire, field in iter_fields(value, where=where):
        if number == 1 and wire == WIRE_VARINT and isinstance(field, int):
            seconds = field - (1 << 64) if field >= 1 << 63 else field
    if seconds == 0:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime(_TIME_FORMAT)


def _read_owner(value: int | memoryview, where: str) -> dict[str, Any]:
    if not isinstance(value, memoryview):
        raise FormatError("ownerReference is not length-delimited", where=where)
    names = {1: "kind", 3: "name", 4: "uid", 5: "apiVersion"}
    ref: dict[str, Any] = {}
    for number, _wire, field in iter_fields(value, where=where):
        if number in names:
            ref[names[number]] = _text(field, where)
        elif number == 6:
            ref["controller"] = bool(field)
        elif number == 7:
            ref["blockOwnerDeletion"] = bool(field)
    return ref


def _read_meta(buf: int | memoryview, where: str) -> dict[str, Any]:
    if not isinstance(buf, memoryview):
        raise FormatError("metadata is not length-delimited", where=where)
    strings = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    meta: dict[str, Any] = {}
    for number, wire, field in iter_fields(buf, where=where):
        if number in strings:
            text = _text(field, where)
            if text:
                meta[strings[number]] = text
        elif number == 7 and wire == WIRE_VARINT and isinstance(field, int) and field:
            meta["generation"] = field
        elif number == 8:
            stamp = _read_time(field, where)
            if stamp:
                meta["creationTimestamp"] = stamp
        elif number in (11, 12):
            key, item = _entry(field, where)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = item.decode(
                "utf-8", "replace"
            )
        elif number == 13:
            meta.setdefault("ownerReferences", []).append(_read_owner(field, where))
        elif number == 14:
            meta.setdefault("finalizers", []).append(_text(field, where))
    return meta


def decode_object(rtype: ResourceType, raw: bytes | memoryview) -> dict[str, Any]:
    """Parse v1 Secret/ConfigMap protobuf bytes into the JSON form (FormatError if bad)."""
    where = f"v1.{rtype.kind}"
    obj: dict[str, Any] = {"kind": rtype.kind, "apiVersion": "v1", "metadata": {}}
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    string_data: dict[str, str] = {}
    for number, wire, field in iter_fields(raw, where=where):
        if number == 1:
            obj["metadata"] = _read_meta(field, where + ".metadata")
        elif number == 2 and wire == WIRE_LEN:
            key, item = _entry(field, where)
            if rtype is SECRETS:
                data[key] = base64.b64encode(item).decode()
            else:
                data[key] = item.decode("utf-8", "replace")
        elif rtype is SECRETS and number == 3:
            text = _text(field, where)
            if text:
                obj["type"] = text
        elif rtype is SECRETS and number == 4 and wire == WIRE_LEN:
            # only in requests: the apiserver merges stringData into data before storing
            key, item = _entry(field, where)
            string_data[key] = item.decode("utf-8", "replace")
        elif (rtype is SECRETS and number == 5) or (rtype is not SECRETS and number == 4):
            obj["immutable"] = bool(field)
        elif rtype is not SECRETS and number == 3 and wire == WIRE_LEN:
            key, item = _entry(field, where)
            binary[key] = base64.b64encode(item).decode()
    if data:
        obj["data"] = data
    if binary:
        obj["binaryData"] = binary
    if string_data:
        obj["stringData"] = string_data
    return obj
