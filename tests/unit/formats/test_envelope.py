"""The k8s\\x00 runtime.Unknown envelope, checked against the official protobuf runtime."""

from __future__ import annotations

from typing import Any

import pytest

from secretkit._proto.k8s import runtime_pb2
from secretkit.core.formats import PROTOBUF_MAGIC, RuntimeUnknown, decode_unknown, encode_unknown
from secretkit.core.formats.protowire import encode_len_field
from secretkit.errors import FormatError


def _reference(**fields: Any) -> bytes:
    return PROTOBUF_MAGIC + runtime_pb2.Unknown(**fields).SerializeToString()


def test_encode_matches_apiserver_layout() -> None:
    # The apiserver always writes contentEncoding and contentType, even empty.
    expected = _reference(
        typeMeta=runtime_pb2.TypeMeta(apiVersion="v1", kind="Secret"),
        raw=b"\x0a\x03abc",
        contentEncoding="",
        contentType="",
    )
    assert encode_unknown("v1", "Secret", b"\x0a\x03abc") == expected
    assert expected.endswith(b"\x1a\x00\x22\x00")


def test_decode_reference_encodings() -> None:
    data = _reference(
        typeMeta=runtime_pb2.TypeMeta(apiVersion="apps/v1", kind="Deployment"),
        raw=b"object-bytes",
        contentType="application/vnd.kubernetes.protobuf",
    )
    assert decode_unknown(data) == RuntimeUnknown(
        "apps/v1", "Deployment", b"object-bytes", "", "application/vnd.kubernetes.protobuf"
    )
    assert decode_unknown(_reference(raw=b"x")) == RuntimeUnknown("", "", b"x")
    assert decode_unknown(PROTOBUF_MAGIC) == RuntimeUnknown("", "", b"")


def test_unknown_fields_are_skipped() -> None:
    data = encode_unknown("v1", "ConfigMap", b"r") + encode_len_field(7, b"future")
    assert decode_unknown(data).kind == "ConfigMap"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"k8s",
        b"{}",
        PROTOBUF_MAGIC + b"\x0a\x05ab",  # truncated typeMeta
        PROTOBUF_MAGIC + b"\x08\x01",  # typeMeta as a varint
        PROTOBUF_MAGIC + encode_len_field(1, encode_len_field(1, b"\xff")),  # not UTF-8
        PROTOBUF_MAGIC + b"\x13",  # field 2, wire type 3
    ],
)
def test_garbage_is_format_error(data: bytes) -> None:
    with pytest.raises(FormatError):
        decode_unknown(data)


def test_repr_hides_raw() -> None:
    assert "topsecret" not in repr(decode_unknown(encode_unknown("v1", "Secret", b"topsecret")))
