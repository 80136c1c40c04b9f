"""The ``k8s\\x00`` protobuf envelope (``runtime.Unknown``) of built-in objects.

Layout: magic ``k8s\\x00`` then a protobuf ``runtime.Unknown``:
``typeMeta=1{apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4``.
"""

from __future__ import annotations

from secretkit.core.formats.model import RuntimeUnknown
from secretkit.core.formats.protowire import WIRE_LEN, encode_len_field, iter_fields
from secretkit.errors import FormatError

PROTOBUF_MAGIC = b"k8s\x00"

_WHERE = "runtime.Unknown"


def _text(value: memoryview, field_name: str) -> str:
    try:
        return str(value, "utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{field_name} is not valid UTF-8", where=_WHERE) from None


def _decode_type_meta(buf: memoryview) -> tuple[str, str]:
    api_version = ""
    kind = ""
    for number, wire_type, value in iter_fields(buf, where=_WHERE + ".typeMeta"):
        if number not in (1, 2):
            continue  # unknown fields are skipped, like every protobuf reader
        if wire_type != WIRE_LEN or not isinstance(value, memoryview):
            raise FormatError(f"typeMeta field {number} has wire type {wire_type}", where=_WHERE)
        if number == 1:
            api_version = _text(value, "apiVersion")
        else:
            kind = _text(value, "kind")
    return api_version, kind


def _parse(data: bytes) -> tuple[str, str, memoryview | None, str, str]:
    if not data.startswith(PROTOBUF_MAGIC):
        raise FormatError("value does not start with the k8s\\x00 protobuf magic", where=_WHERE)
    api_version = kind = content_encoding = content_type = ""
    raw: memoryview | None = None
    for number, wire_type, value in iter_fields(data, start=len(PROTOBUF_MAGIC), where=_WHERE):
        if number > 4:
            continue
        if wire_type != WIRE_LEN or not isinstance(value, memoryview):
            raise FormatError(f"field {number} has wire type {wire_type}", where=_WHERE)
        if number == 1:
            api_version, kind = _decode_type_meta(value)
        elif number == 2:
            raw = value
        elif number == 3:
            content_encoding = _text(value, "contentEncoding")
        else:
            content_type = _text(value, "contentType")
    return api_version, kind, raw, content_encoding, content_type


def decode_unknown(data: bytes) -> RuntimeUnknown:
    """Decode ``k8s\\x00`` + ``runtime.Unknown``; :class:`FormatError` on any malformation."""
    api_version, kind, raw, content_encoding, content_type = _parse(data)
    raw_bytes = b"" if raw is None else bytes(raw)
    return RuntimeUnknown(api_version, kind, raw_bytes, content_encoding, content_type)


def read_type_meta(data: bytes) -> tuple[str, str]:
    """Return ``(apiVersion, kind)`` of a ``k8s\\x00`` value without copying ``raw``.

    Validates the whole envelope like :func:`decode_unknown`.
    """
    api_version, kind, _raw, _encoding, _type = _parse(data)
    return api_version, kind


def encode_unknown(api_version: str, kind: str, raw: bytes) -> bytes:
    """Encode like the apiserver: magic, typeMeta, raw, and empty contentEncoding/Type."""
    type_meta = encode_len_field(1, api_version.encode()) + encode_len_field(2, kind.encode())
    # The apiserver's gogo-generated marshaller always writes fields 3 and 4, even empty.
    return b"".join(
        (
            PROTOBUF_MAGIC,
            encode_len_field(1, type_meta),
            encode_len_field(2, raw),
            encode_len_field(3, b""),
            encode_len_field(4, b""),
        )
    )
