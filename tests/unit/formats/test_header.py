"""Value headers: what decides how a value is read, found from upstream's bytes."""

from __future__ import annotations

import pytest

from secretkit.core.formats import (
    decode_encrypted_object,
    encode_encrypted_object,
    encrypted_data_span,
    header_decides_key,
    value_header,
)
from secretkit.core.formats.model import DEKSourceType, EncryptedObject
from tests.unit.formats.vectors import ALL, Vector, select


def test_every_upstream_value_with_a_header_starts_with_its_prefix() -> None:
    with_header = 0
    for v in ALL:
        header = value_header(v.stored)
        if v.provider == "identity":
            # upstream's identity vectors: protobuf envelopes, JSON, or empty (no header)
            assert header in (b"k8s\x00", b"{", None)
            assert (header is None) is (v.stored[:1] not in (b"k", b"{"))
            continue
        if header is None:
            continue
        with_header += 1
        if v.provider in ("aescbc", "aesgcm", "secretbox"):
            # the header ends at the first ':' after the prefix: a name like gcm:key:3
            # is cut short (its header does not decide the key, see below)
            assert v.prefix.startswith(header) and v.stored.startswith(header), v.id
            assert (header == v.prefix) is (v.prefix.count(b":") == 5)
        else:
            assert header.startswith(v.prefix), v.id
    assert with_header >= 25


@pytest.mark.parametrize("v", select(provider="kms-v2", negative=False), ids=lambda v: v.id)
def test_kms_v2_header_is_the_metadata_after_the_encrypted_data(v: Vector) -> None:
    header = value_header(v.stored)
    assert header is not None
    data = v.stored[len(v.prefix) :]
    span = encrypted_data_span(data)
    assert span is not None
    obj = decode_encrypted_object(data)
    assert data[span[0] : span[1]] == obj.encrypted_data
    assert header == v.prefix + data[span[1] :]
    # the same metadata around other data gives the same header; other metadata does not
    other = encode_encrypted_object(
        EncryptedObject(
            encrypted_data=b"x" * 77,
            key_id=obj.key_id,
            encrypted_dek_source=obj.encrypted_dek_source,
            annotations=dict(obj.annotations),
            encrypted_dek_source_type=obj.encrypted_dek_source_type,
        )
    )
    if list(obj.annotations) == sorted(obj.annotations):  # our encoder sorts annotations
        assert value_header(v.prefix + other) == header
    rotated = encode_encrypted_object(
        EncryptedObject(
            encrypted_data=b"x" * 77,
            key_id=obj.key_id + "-2",
            encrypted_dek_source=obj.encrypted_dek_source,
            annotations=dict(obj.annotations),
            encrypted_dek_source_type=DEKSourceType(obj.encrypted_dek_source_type),
        )
    )
    assert value_header(v.prefix + rotated) != header


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"garbage",
        b"k8s:enc:aesgcm:v1:",
        b"k8s:enc:aesgcm:v1:nocolon",
        b"k8s:enc:aesgcm:v1::empty-name",
        b"k8s:enc:kms:v1:p:\x00\x01x",
        b"k8s:enc:kms:v2:p:",
        b"k8s:enc:kms:v2:p:\x12\x02id",  # keyID first: not the apiserver's field order
        b"k8s:enc:kms:v2:p:\x0a\x00\x12\x02id",  # empty encryptedData
        b"k8s:enc:kms:v2:p:\x0a\x09short",  # encryptedData runs past the end
        b"k8s:enc:kms:v2:p:\x0a\xff",  # truncated varint
        b"k8s:enc:unknown:v9:x:",
    ],
)
def test_values_without_a_header(value: bytes) -> None:
    assert value_header(value) is None


def test_local_header_decides_the_key_unless_a_longer_name_shares_it() -> None:
    assert header_decides_key(b"key1", [b"key1", b"key2", b"key10"])
    assert header_decides_key(b"key1", [])
    assert not header_decides_key(b"gcm", [b"gcm:key:3", b"gcm-key-1"])
