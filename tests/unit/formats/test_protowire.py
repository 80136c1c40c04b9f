"""The minimal protobuf wire reader/writer."""

from __future__ import annotations

import pytest

from secretkit.core.formats.protowire import (
    encode_len_field,
    encode_varint,
    encode_varint_field,
    iter_fields,
    read_varint,
)
from secretkit.errors import FormatError


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        ((1 << 64) - 1, b"\xff" * 9 + b"\x01"),
    ],
)
def test_varint_known_answers(value: int, encoded: bytes) -> None:
    assert encode_varint(value) == encoded
    assert read_varint(encoded, 0) == (value, len(encoded))


def test_varint_errors() -> None:
    with pytest.raises(FormatError):
        read_varint(b"\x80\x80", 0)
    with pytest.raises(FormatError):
        read_varint(b"\xff" * 10 + b"\x01", 0)
    with pytest.raises(ValueError):
        encode_varint(-1)
    with pytest.raises(ValueError):
        encode_varint(1 << 64)


def test_every_wire_type_reads() -> None:
    data = (
        encode_varint_field(1, 150)
        + b"\x11"
        + (7).to_bytes(8, "little")
        + encode_len_field(3, b"abc")
        + b"\x25"
        + (9).to_bytes(4, "little")
    )
    fields = [(n, w, v if isinstance(v, int) else bytes(v)) for n, w, v in iter_fields(data)]
    assert fields == [(1, 0, 150), (2, 1, 7), (3, 2, b"abc"), (4, 5, 9)]


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01",  # field number 0
        b"\x0b",  # start group
        b"\x0c",  # end group
        b"\x0e",  # wire type 6
        b"\x0f",  # wire type 7
        b"\x0a\x05abc",  # length beyond the end
        b"\x09\x01\x02",  # truncated fixed64
        b"\x0d\x01",  # truncated fixed32
        b"\x08",  # varint field without value
        b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # absurd length
    ],
)
def test_malformed_input_is_format_error(data: bytes) -> None:
    with pytest.raises(FormatError):
        list(iter_fields(data))
