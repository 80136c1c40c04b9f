"""A minimal protobuf wire-format reader and writer.

Just enough of the encoding (varint, 64-bit, length-delimited, 32-bit) to read and
write ``runtime.Unknown`` and the KMS v2 ``EncryptedObject`` without generated code.
The reader never raises anything but :class:`~secretkit.errors.FormatError`, whatever
the input, and never copies length-delimited payloads (it yields memoryview slices).
"""

from __future__ import annotations

from collections.abc import Iterator

from secretkit.errors import FormatError

WIRE_VARINT = 0
WIRE_FIXED64 = 1
WIRE_LEN = 2
WIRE_FIXED32 = 5

_MAX_FIELD_NUMBER = (1 << 29) - 1
_MAX_VARINT_BYTES = 10
_UINT64_MASK = (1 << 64) - 1


def read_varint(buf: bytes | memoryview, pos: int, *, where: str = "protobuf") -> tuple[int, int]:
    """Read a base-128 varint at ``pos``; return ``(value, next_pos)``.

    Values are truncated to 64 bits like Go's decoder; a varint longer than 10 bytes
    or cut off by the end of the buffer is a :class:`FormatError`.
    """
    result = 0
    shift = 0
    end = len(buf)
    for _ in range(_MAX_VARINT_BYTES):
        if pos >= end:
            raise FormatError("truncated varint", where=where)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _UINT64_MASK, pos
        shift += 7
    raise FormatError("varint longer than 10 bytes", where=where)


def iter_fields(
    buf: bytes | memoryview, *, start: int = 0, where: str = "protobuf"
) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield ``(field_number, wire_type, value)`` for each field of a message.

    The message is ``buf[start:]`` (an offset avoids copying the outer value).
    ``value`` is an ``int`` for varint/fixed32/fixed64 fields and a memoryview slice of
    ``buf`` for length-delimited ones. Groups (wire types 3 and 4, unused by proto3)
    and any other malformation raise :class:`FormatError`.
    """
    # Index a bytes object (much faster than indexing a memoryview) and slice a view
    # of it (no copies of large payloads).
    data = bytes(buf) if isinstance(buf, memoryview) else buf
    view = memoryview(data)
    pos = start
    end = len(data)
    while pos < end:
        tag = data[pos]
        if tag < 0x80:  # one-byte tags are the common case: skip the generic reader
            pos += 1
        else:
            tag, pos = read_varint(data, pos, where=where)
        field_number = tag >> 3
        wire_type = tag & 0x7
        if field_number < 1 or field_number > _MAX_FIELD_NUMBER:
            raise FormatError(f"invalid field number {field_number}", where=where)
        if wire_type == WIRE_LEN:
            if pos < end and data[pos] < 0x80:
                length = data[pos]
                pos += 1
            else:
                length, pos = read_varint(data, pos, where=where)
            if length > end - pos:
                raise FormatError(
                    f"field {field_number} claims {length} bytes, only {end - pos} left",
                    where=where,
                )
            yield field_number, wire_type, view[pos : pos + length]
            pos += length
        elif wire_type == WIRE_VARINT:
            value, pos = read_varint(data, pos, where=where)
            yield field_number, wire_type, value
        elif wire_type == WIRE_FIXED64:
            if end - pos < 8:
                raise FormatError(f"truncated fixed64 field {field_number}", where=where)
            yield field_number, wire_type, int.from_bytes(data[pos : pos + 8], "little")
            pos += 8
        elif wire_type == WIRE_FIXED32:
            if end - pos < 4:
                raise FormatError(f"truncated fixed32 field {field_number}", where=where)
            yield field_number, wire_type, int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        else:
            raise FormatError(
                f"unsupported wire type {wire_type} for field {field_number}", where=where
            )


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer below 2**64 as a varint."""
    if value < 0 or value > _UINT64_MASK:
        raise ValueError("varint out of range")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_len_field(field_number: int, data: bytes | memoryview) -> bytes:
    """Encode one length-delimited field (bytes, string or embedded message)."""
    return b"".join((encode_varint((field_number << 3) | WIRE_LEN), encode_varint(len(data)), data))


def encode_varint_field(field_number: int, value: int) -> bytes:
    """Encode one varint field (int, enum, bool)."""
    return encode_varint((field_number << 3) | WIRE_VARINT) + encode_varint(value)
