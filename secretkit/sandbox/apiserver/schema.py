"""Protobuf messages of the served kinds as tables, and one codec driven by them.

A message is a tuple of :class:`Field` rows (number, JSON name, kind, flags) taken
from ``k8s.io/api`` and ``k8s.io/apimachinery`` ``generated.proto``. The writer mimics
the apiserver's gogo-generated marshallers, which is what makes stored bytes match a
real kube-apiserver's (``tests/data/real-apiserver`` holds values it wrote):

* fields in ascending number order; map entries sorted by key;
* non-pointer scalars and embedded messages always written, even when empty or zero;
* pointer fields (``*bool``, ``*int32``, ``*string``, ``*MicroTime``...) only when set;
* a zero ``metav1.Time`` is an empty message, any other one is ``{seconds, nanos}``
  with both written;
* ``runtime.RawExtension`` / ``FieldsV1`` keep their raw JSON bytes untouched
  (:class:`RawJSON`), so a byte-for-byte comparison of them is possible.

The JSON form omits empty values like the Go types' ``omitempty`` tags, except fields
marked ``keep``. Unknown field numbers are skipped on read.
"""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from secretkit.core.formats.protowire import (
    WIRE_FIXED32,
    WIRE_FIXED64,
    WIRE_LEN,
    WIRE_VARINT,
    encode_len_field,
    encode_varint,
    iter_fields,
    read_varint,
)
from secretkit.errors import FormatError

_UINT64 = (1 << 64) - 1
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class Kind(enum.Enum):
    """How a field is written on the wire and shown in JSON."""

    STRING = "string"
    BYTES = "bytes"  # base64 text in JSON
    INT = "int"  # int32/int64 varint (two's complement when negative)
    BOOL = "bool"
    MESSAGE = "message"
    MAP_STRING = "map<string,string>"
    MAP_BYTES = "map<string,bytes>"  # values base64 text in JSON
    TIME = "time"  # metav1.Time: RFC 3339, second precision
    MICROTIME = "microtime"  # metav1.MicroTime: RFC 3339 with microseconds
    RAW = "raw"  # runtime.RawExtension / FieldsV1: {1: raw JSON bytes}


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a message: number, JSON name, kind and Go-side flags."""

    number: int
    name: str
    kind: Kind
    #: the embedded message (for ``Kind.MESSAGE``)
    message: tuple[Field, ...] = ()
    repeated: bool = False
    #: a Go pointer: written only when present, shown in JSON even when empty/false
    pointer: bool = False
    #: no ``omitempty``: shown in JSON even when empty or zero
    keep: bool = False


Message = tuple[Field, ...]


class RawJSON:
    """Raw JSON bytes kept exactly as received (a RawExtension's ``Raw``)."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawJSON) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"RawJSON({len(self.raw)} bytes)"

    def value(self) -> Any:
        """The parsed JSON value."""
        return json.loads(self.raw)


# -- messages shared by every kind ---------------------------------------------------------
S, INT, BOOL, M = Kind.STRING, Kind.INT, Kind.BOOL, Kind.MESSAGE

OWNER_REFERENCE: Message = (
    Field(1, "kind", S), Field(3, "name", S), Field(4, "uid", S), Field(5, "apiVersion", S),
    Field(6, "controller", BOOL, pointer=True),
    Field(7, "blockOwnerDeletion", BOOL, pointer=True),
)
MANAGED_FIELDS_ENTRY: Message = (
    Field(1, "manager", S), Field(2, "operation", S), Field(3, "apiVersion", S),
    Field(4, "time", Kind.TIME, pointer=True), Field(6, "fieldsType", S),
    Field(7, "fieldsV1", Kind.RAW, pointer=True), Field(8, "subresource", S),
)
OBJECT_META: Message = (
    Field(1, "name", S), Field(2, "generateName", S), Field(3, "namespace", S),
    Field(4, "selfLink", S), Field(5, "uid", S), Field(6, "resourceVersion", S),
    Field(7, "generation", INT), Field(8, "creationTimestamp", Kind.TIME),
    Field(9, "deletionTimestamp", Kind.TIME, pointer=True),
    Field(10, "deletionGracePeriodSeconds", INT, pointer=True),
    Field(11, "labels", Kind.MAP_STRING), Field(12, "annotations", Kind.MAP_STRING),
    Field(13, "ownerReferences", M, OWNER_REFERENCE, repeated=True),
    Field(14, "finalizers", S, repeated=True),
    Field(17, "managedFields", M, MANAGED_FIELDS_ENTRY, repeated=True),
)
LIST_META: Message = (
    Field(2, "resourceVersion", S), Field(3, "continue", S),
    Field(4, "remainingItemCount", INT, pointer=True),
)


# -- writing -------------------------------------------------------------------------------
def _tag(number: int, wire: int) -> bytes:
    return encode_varint((number << 3) | wire)


def parse_time(text: str, micro: bool) -> tuple[int, int]:
    """``(seconds, nanos)`` of a Time (or, with ``micro``, MicroTime) JSON string."""
    try:
        if micro and "." in text:
            stamp = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
        else:
            stamp = datetime.strptime(text, TIME_FORMAT)
    except ValueError:
        raise FormatError(f"invalid timestamp {text!r}", where="time") from None
    stamp = stamp.replace(tzinfo=UTC)
    seconds = int(stamp.replace(microsecond=0).timestamp())
    return seconds, stamp.microsecond * 1000 if micro else 0


def _encode_time(number: int, value: Any, micro: bool) -> bytes:
    if not value:
        return encode_len_field(number, b"")
    seconds, nanos = parse_time(str(value), micro)
    body = (_tag(1, WIRE_VARINT) + encode_varint(seconds & _UINT64)
            + _tag(2, WIRE_VARINT) + encode_varint(nanos))
    return encode_len_field(number, body)


def _map_entries(number: int, values: dict[str, bytes]) -> bytes:
    return b"".join(
        encode_len_field(number, encode_len_field(1, k.encode()) + encode_len_field(2, values[k]))
        for k in sorted(values)
    )


def _raw_bytes(value: Any) -> bytes:
    if isinstance(value, RawJSON):
        return value.raw
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _encode_one(f: Field, value: Any) -> bytes:
    kind = f.kind
    if kind is Kind.STRING:
        return encode_len_field(f.number, str(value or "").encode())
    if kind is Kind.INT:
        return _tag(f.number, WIRE_VARINT) + encode_varint(int(value or 0) & _UINT64)
    if kind is Kind.BOOL:
        return _tag(f.number, WIRE_VARINT) + (b"\x01" if value else b"\x00")
    if kind is Kind.MESSAGE:
        return encode_len_field(f.number, encode_message(f.message, value or {}))
    if kind is Kind.BYTES:
        return encode_len_field(f.number, base64.b64decode(value or ""))
    if kind is Kind.TIME or kind is Kind.MICROTIME:
        return _encode_time(f.number, value, kind is Kind.MICROTIME)
    if kind is Kind.RAW:
        raw = _raw_bytes(value) if value is not None else b""
        return encode_len_field(f.number, encode_len_field(1, raw) if raw else b"")
    if kind is Kind.MAP_STRING:
        return _map_entries(f.number, {k: str(v).encode() for k, v in (value or {}).items()})
    # Kind.MAP_BYTES
    return _map_entries(f.number, {k: base64.b64decode(v) for k, v in (value or {}).items()})


def encode_message(message: Message, obj: dict[str, Any]) -> bytes:
    """Serialize the JSON form ``obj`` of ``message`` like gogo-protobuf does."""
    out: list[bytes] = []
    for f in message:
        value = obj.get(f.name)
        if f.repeated:
            out.extend(_encode_one(f, item) for item in value or ())
        elif f.pointer:
            if value is not None:
                out.append(_encode_one(f, value))
        elif f.kind in (Kind.MAP_STRING, Kind.MAP_BYTES):
            if value:
                out.append(_encode_one(f, value))
        else:
            out.append(_encode_one(f, value))
    return b"".join(out)


# -- reading -------------------------------------------------------------------------------
def _text(value: int | memoryview, where: str) -> str:
    if not isinstance(value, memoryview):
        raise FormatError("expected a length-delimited field", where=where)
    try:
        return str(value, "utf-8")
    except UnicodeDecodeError:
        raise FormatError("string field is not valid UTF-8", where=where) from None


def _read_time(value: int | memoryview, micro: bool, where: str) -> str | None:
    if not isinstance(value, memoryview):
        raise FormatError("timestamp is not length-delimited", where=where)
    seconds = nanos = 0
    for number, wire, item in iter_fields(value, where=where):
        if wire == WIRE_VARINT and isinstance(item, int):
            if number == 1:
                seconds = item - (1 << 64) if item >= 1 << 63 else item
            elif number == 2:
                nanos = item
    if seconds == 0 and nanos == 0:
        return None
    stamp = datetime.fromtimestamp(seconds, UTC)
    if micro:
        return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return stamp.strftime(TIME_FORMAT)


def _read_entry(value: int | memoryview, where: str) -> tuple[str, bytes]:
    if not isinstance(value, memoryview):
        raise FormatError("map entry is not length-delimited", where=where)
    key, item = "", b""
    for number, _wire, field in iter_fields(value, where=where):
        if number == 1:
            key = _text(field, where)
        elif number == 2 and isinstance(field, memoryview):
            item = bytes(field)
    return key, item


def _read_raw(value: int | memoryview, where: str) -> RawJSON | None:
    if not isinstance(value, memoryview):
        raise FormatError("raw extension is not length-delimited", where=where)
    for number, _wire, field in iter_fields(value, where=where):
        if number == 1 and isinstance(field, memoryview):
            return RawJSON(bytes(field))
    return None


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_one(f: Field, value: int | memoryview, where: str) -> Any:
    kind = f.kind
    if kind is Kind.STRING:
        return _text(value, where)
    if kind is Kind.INT:
        if not isinstance(value, int):
            raise FormatError(f"{f.name}: expected a varint", where=where)
        return _signed(value)
    if kind is Kind.BOOL:
        return bool(value)
    if kind is Kind.MESSAGE:
        if not isinstance(value, memoryview):
            raise FormatError(f"{f.name}: expected a message", where=where)
        return decode_message(f.message, value, where=f"{where}.{f.name}")
    if kind is Kind.BYTES:
        if not isinstance(value, memoryview):
            raise FormatError(f"{f.name}: expected bytes", where=where)
        return base64.b64encode(value).decode()
    if kind is Kind.TIME or kind is Kind.MICROTIME:
        return _read_time(value, kind is Kind.MICROTIME, where)
    if kind is Kind.RAW:
        return _read_raw(value, where)
    raise AssertionError(kind)  # maps are handled by decode_message


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == 0 or value is False or value == {}


def decode_message(message: Message, raw: bytes | memoryview, *, where: str = "protobuf"
                   ) -> dict[str, Any]:
    """Parse ``raw`` as ``message`` into its JSON form (:class:`FormatError` when bad)."""
    by_number = _index(message)
    obj: dict[str, Any] = {}
    for number, wire, value in iter_fields(raw, where=where):
        f = by_number.get(number)
        if f is None:
            continue
        if f.kind is Kind.MAP_STRING or f.kind is Kind.MAP_BYTES:
            if wire != WIRE_LEN:
                raise FormatError(f"{f.name}: map entry is not length-delimited", where=where)
            key, item = _read_entry(value, where)
            target = obj.setdefault(f.name, {})
            target[key] = (base64.b64encode(item).decode() if f.kind is Kind.MAP_BYTES
                           else item.decode("utf-8", "replace"))
            continue
        decoded = _decode_one(f, value, where)
        if f.repeated:
            obj.setdefault(f.name, []).append(decoded)
        elif f.pointer or f.keep or not _empty(decoded):
            if decoded is None and f.kind in (Kind.TIME, Kind.MICROTIME) and not f.pointer:
                continue
            obj[f.name] = decoded
    for f in message:
        if f.keep and f.name not in obj:
            obj[f.name] = _zero(f)
    return obj


def _zero(f: Field) -> Any:
    if f.repeated:
        return []
    return {Kind.STRING: "", Kind.INT: 0, Kind.BOOL: False, Kind.MESSAGE: {}}.get(f.kind)


_INDEXES: dict[int, dict[int, Field]] = {}


def _index(message: Message) -> dict[int, Field]:
    index = _INDEXES.get(id(message))
    if index is None:
        index = {f.number: f for f in message}
        _INDEXES[id(message)] = index
    return index


# -- splicing ------------------------------------------------------------------------------
def field_spans(raw: bytes, *, upto: int | None = None) -> list[tuple[int, int, int]]:
    """``(number, start, end)`` of the fields of ``raw``, tag included (FormatError if bad).

    With ``upto`` the scan stops after the first field numbered ``upto`` or more.
    """
    spans: list[tuple[int, int, int]] = []
    pos, end = 0, len(raw)
    while pos < end:
        start = pos
        tag, pos = read_varint(raw, pos, where="protobuf")
        wire = tag & 0x7
        if wire == WIRE_LEN:
            length, pos = read_varint(raw, pos, where="protobuf")
            pos += length
        elif wire == WIRE_VARINT:
            _value, pos = read_varint(raw, pos, where="protobuf")
        elif wire == WIRE_FIXED64:
            pos += 8
        elif wire == WIRE_FIXED32:
            pos += 4
        else:
            raise FormatError(f"unsupported wire type {wire}", where="protobuf")
        if pos > end:
            raise FormatError("truncated field", where="protobuf")
        spans.append((tag >> 3, start, pos))
        if upto is not None and tag >> 3 >= upto:
            break
    return spans


def with_field(raw: bytes, number: int, encoded: bytes, *, ordered: bool = False) -> bytes:
    """``raw`` with field ``number`` replaced by ``encoded`` (a whole field), or inserted
    in number order when absent; the other bytes are kept as they are.

    ``ordered``: ``raw`` is known to be in field order (what gogo writes), so the scan
    stops at the first field numbered ``number`` or more.
    """
    for found, start, end in field_spans(raw, upto=number if ordered else None):
        if found == number:
            return raw[:start] + encoded + raw[end:]
        if found > number:
            return raw[:start] + encoded + raw[start:]
    return raw + encoded


def field_payload(raw: bytes, number: int) -> bytes | None:
    """The payload of the first length-delimited field ``number`` (None when absent)."""
    for found, wire, value in iter_fields(raw, where="protobuf"):
        if found == number and wire == WIRE_LEN and isinstance(value, memoryview):
            return bytes(value)
    return None
