"""The bbolt/mvccpb readers reject what they cannot read, with FormatError."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretkit.errors import FormatError, UsageError
from secretkit.etcd.bbolt import BboltReader, _fnv1a64
from secretkit.etcd.snapshot import decode_key_value


def test_fnv1a64_known_values() -> None:
    # reference values of 64-bit FNV-1a
    assert _fnv1a64(b"") == 0xCBF29CE484222325
    assert _fnv1a64(b"a") == 0xAF63DC4C8601EC8C


def test_decode_mvccpb_key_value() -> None:
    # key=1 "k", create_revision=2 5, mod_revision=3 300, version=4 2, value=5 "v", lease=6 7
    data = b"\x0a\x01k\x10\x05\x18\xac\x02\x20\x02\x2a\x01v\x30\x07"
    kv = decode_key_value(data)
    assert (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version) == (
        b"k",
        b"v",
        5,
        300,
        2,
    )
    with pytest.raises(FormatError):
        decode_key_value(b"\x0a\x05k")  # length past the end
    with pytest.raises(FormatError):
        decode_key_value(b"\x0f")  # wire type 7


@pytest.mark.parametrize("content", [b"", b"\x00" * 8192, b"hello world" * 1000])
def test_not_a_bbolt_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(content)
    with pytest.raises(FormatError):
        BboltReader(path)


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot open snapshot file"):
        BboltReader(tmp_path / "missing.db")


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"key": b"/registry/secrets/ns/a", "value": b"v" * 3000},
        {"key": b"k", "create_revision": 2**40, "mod_revision": 2**63 - 1, "version": 1},
        {"key": b"\xff" * 200, "value": b"", "lease": 2**33},
    ],
)
def test_decoder_agrees_with_the_generated_class(fields: dict[str, object]) -> None:
    from secretkit._proto.etcd import kv_pb2

    data = kv_pb2.KeyValue(**fields).SerializeToString()  # type: ignore[arg-type]
    kv = decode_key_value(data)
    reference = kv_pb2.KeyValue.FromString(data)
    assert (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version) == (
        reference.key,
        reference.value,
        reference.create_revision,
        reference.mod_revision,
        reference.version,
    )


def test_decoder_skips_unknown_fields_and_refuses_truncation() -> None:
    # field 20 (a two-byte tag) as a varint, field 7 as fixed64, field 8 as fixed32
    unknown = b"\xa0\x01\x05" + b"\x39" + b"\x00" * 8 + b"\x45" + b"\x00" * 4
    assert decode_key_value(b"\x0a\x01k" + unknown + b"\x20\x03").version == 3
    with pytest.raises(FormatError):
        decode_key_value(b"\x0a\x01k\x39\x00\x00")  # fixed64 cut short
    with pytest.raises(FormatError):
        decode_key_value(b"\x10" + b"\xff" * 11)  # a varint longer than 10 bytes
    with pytest.raises(FormatError):
        decode_key_value(b"\x10\x80")  # a varint cut short
