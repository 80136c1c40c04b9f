"""KMS v2 EncryptedObject: upstream validation, wire details, type 0 vs type 1 payloads."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given
from hypothesis import strategies as st

from secretkit.core.formats import (
    DEKSourceType,
    EncryptedObject,
    decode_encrypted_object,
    encode_encrypted_object,
    kmsv2_decrypt_data,
    kmsv2_encrypt_data,
)
from secretkit.core.formats.kmsv2 import _derive_key, is_fully_qualified_domain_name
from secretkit.core.formats.protowire import encode_len_field, encode_varint_field
from secretkit.errors import DecryptError, FormatError
from tests.unit.formats.proto_reference import reference_decode, reference_encode

SEED = bytes(range(32))
INFO = bytes(range(100, 132))
NONCE = bytes(range(200, 212))
AAD = b"/registry/secrets/default/db-password"

VALID = {
    "encrypted_data": b"\x01" * 40,
    "key_id": "key-1",
    "encrypted_dek_source": b"\x02" * 60,
    "annotations": {"version.kms.example.com": b"7"},
    "source_type": 1,
}


def _encode(**changes: object) -> bytes:
    fields = {**VALID, **changes}
    return reference_encode(**fields)  # type: ignore[arg-type]


def test_valid_reference_encoding_decodes() -> None:
    obj = decode_encrypted_object(_encode())
    assert obj == EncryptedObject(
        encrypted_data=b"\x01" * 40,
        key_id="key-1",
        encrypted_dek_source=b"\x02" * 60,
        annotations={"version.kms.example.com": b"7"},
        encrypted_dek_source_type=DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED,
    )


def test_type_zero_has_no_field_5_and_decodes_as_aes_gcm_key() -> None:
    data = _encode(source_type=0, annotations={})
    assert b"\x28" not in data[-2:]  # proto3 omits the zero enum
    obj = decode_encrypted_object(data)
    assert obj.encrypted_dek_source_type is DEKSourceType.AES_GCM_KEY
    assert obj.annotations == {}
    assert encode_encrypted_object(obj) == data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"encrypted_data": b""}, "encryptedData is empty"),
        ({"key_id": ""}, "keyID is empty"),
        ({"key_id": "k" * 1025}, "keyID is 1025 bytes"),
        ({"key_id": "é" * 513}, "keyID is 1026 bytes"),  # counted in UTF-8 bytes
        ({"encrypted_dek_source": b""}, "encryptedDEKSource is empty"),
        ({"encrypted_dek_source": b"x" * 1025}, "more than 1024"),
        ({"source_type": 2}, "unknown encryptedDEKSourceType 2"),
        ({"annotations": {"nodots": b"1"}}, "not a fully qualified"),
        ({"annotations": {"": b"1"}}, "not a fully qualified"),
        ({"annotations": {"a.b": b"x" * (32 * 1024)}}, "more than 32768"),
    ],
)
def test_upstream_validation_rejects(changes: dict[str, object], message: str) -> None:
    with pytest.raises(FormatError) as info:
        decode_encrypted_object(_encode(**changes))
    assert message in info.value.what
    obj = EncryptedObject(
        encrypted_data=changes.get("encrypted_data", VALID["encrypted_data"]),  # type: ignore[arg-type]
        key_id=changes.get("key_id", VALID["key_id"]),  # type: ignore[arg-type]
        encrypted_dek_source=changes.get("encrypted_dek_source", VALID["encrypted_dek_source"]),  # type: ignore[arg-type]
        annotations=changes.get("annotations", VALID["annotations"]),  # type: ignore[arg-type]
        encrypted_dek_source_type=changes.get("source_type", 1),  # type: ignore[arg-type]
    )
    with pytest.raises(FormatError):
        encode_encrypted_object(obj)


@pytest.mark.parametrize(
    "changes",
    [
        {"key_id": "k" * 1024},
        {"encrypted_dek_source": b"x" * 1024},
        {"annotations": {"a.b": b"x" * (32 * 1024 - 3)}},  # keys + values == 32 KiB
        {"annotations": {"example.com.": b""}},  # one trailing dot is stripped upstream
        {"annotations": {}},
        {"source_type": 0},
    ],
)
def test_upstream_validation_limits_are_inclusive(changes: dict[str, object]) -> None:
    decode_encrypted_object(_encode(**changes))


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("a.b", True),
        ("kms.example.com", True),
        ("x-1.y-2.example.com", True),
        ("example.com.", True),
        ("a", False),
        ("Upper.example.com", False),
        ("-bad.example.com", False),
        ("bad-.example.com", False),
        ("a..b", False),
        (".a.b", False),
        ("a.b..", False),
        ("under_score.example.com", False),
        ("x" * 63 + ".com", True),
        ("x" * 64 + ".com", False),
        (("abcdefghi." * 25) + "com", True),  # 253 characters
        (("abcdefghi." * 25) + "comm", False),  # 254 characters
        ("ex\u00e4mple.com", False),
    ],
)
def test_fully_qualified_domain_name(name: str, valid: bool) -> None:
    assert is_fully_qualified_domain_name(name) is valid


def test_wire_oddities_follow_go() -> None:
    base = _encode(source_type=0, annotations={})
    # Unknown fields are skipped.
    assert decode_encrypted_object(base + encode_len_field(9, b"zz")).key_id == "key-1"
    # A repeated scalar field: the last one wins.
    assert decode_encrypted_object(base + encode_len_field(2, b"key-2")).key_id == "key-2"
    # Go keeps the enum in an int32: 2**32 + 1 reads as 1.
    obj = decode_encrypted_object(base + encode_varint_field(5, (1 << 32) + 1))
    assert obj.encrypted_dek_source_type is DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED
    # A map entry without a value has an empty value.
    entry = encode_len_field(1, b"a.b")
    assert decode_encrypted_object(base + encode_len_field(4, entry)).annotations == {"a.b": b""}


@pytest.mark.parametrize(
    "suffix",
    [
        encode_varint_field(1, 5),  # encryptedData as a varint
        encode_len_field(5, b"\x01"),  # the enum as bytes
        b"\x12\x05ab",  # truncated keyID
        b"\x12",  # tag without length
        encode_len_field(2, b"\xff\xfe"),  # keyID not UTF-8
        encode_len_field(4, b"\x0a\x05ab"),  # truncated map entry
        b"\x0b",  # field 1, wire type 3 (group)
    ],
)
def test_malformed_wire_data_is_format_error(suffix: bytes) -> None:
    with pytest.raises(FormatError):
        decode_encrypted_object(_encode(source_type=0, annotations={}) + suffix)


def test_our_encoding_parses_with_the_official_runtime() -> None:
    obj = decode_encrypted_object(_encode(annotations={"b.example.com": b"2", "a.x": b""}))
    message = reference_decode(encode_encrypted_object(obj))
    assert message.keyID == "key-1"
    assert dict(message.annotations) == {"b.example.com": b"2", "a.x": b""}
    assert message.encryptedDEKSourceType == 1


def _independent_hkdf_expand_32(prk: bytes, info: bytes) -> bytes:
    # RFC 5869 expand, one block: T(1) = HMAC-SHA256(PRK, info ‖ 0x01)
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def test_type1_known_answer_uses_hkdf_expand_only() -> None:
    data = kmsv2_encrypt_data(SEED, b"plaintext", AAD, info=INFO, nonce=NONCE)
    dk = _independent_hkdf_expand_32(SEED, INFO)
    assert data == INFO + NONCE + AESGCM(dk).encrypt(NONCE, b"plaintext", AAD)
    obj = EncryptedObject(
        encrypted_data=data,
        key_id="k",
        encrypted_dek_source=b"w",
        encrypted_dek_source_type=DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED,
    )
    assert kmsv2_decrypt_data(obj, SEED, AAD) == b"plaintext"
    # The seed is not the data key: reading as type 0 (seed used directly) fails.
    with pytest.raises((DecryptError, FormatError)):
        kmsv2_decrypt_data(
            replace(obj, encrypted_dek_source_type=DEKSourceType.AES_GCM_KEY), SEED, AAD
        )


def test_type0_known_answer_uses_dek_directly() -> None:
    dek = bytes(range(50, 82))
    data = NONCE + AESGCM(dek).encrypt(NONCE, b"legacy", AAD)
    obj = EncryptedObject(encrypted_data=data, key_id="k", encrypted_dek_source=b"w")
    assert kmsv2_decrypt_data(obj, dek, AAD) == b"legacy"
    with pytest.raises(DecryptError):
        kmsv2_decrypt_data(obj, dek, AAD + b"-copy")
    with pytest.raises((DecryptError, FormatError)):
        kmsv2_decrypt_data(
            replace(obj, encrypted_dek_source_type=DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED),
            dek,
            AAD,
        )


def test_type1_short_seed_and_short_data() -> None:
    obj = EncryptedObject(
        encrypted_data=INFO + NONCE + bytes(16),
        key_id="k",
        encrypted_dek_source=b"w",
        encrypted_dek_source_type=DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED,
    )
    with pytest.raises(DecryptError):
        kmsv2_decrypt_data(obj, SEED[:31], AAD)
    with pytest.raises(FormatError):
        kmsv2_decrypt_data(replace(obj, encrypted_data=INFO[:31]), SEED, AAD)
    with pytest.raises(FormatError):
        kmsv2_decrypt_data(replace(obj, encrypted_data=INFO + NONCE), SEED, AAD)
    with pytest.raises(ValueError):
        kmsv2_encrypt_data(SEED[:31], b"x", AAD)
    with pytest.raises(ValueError):
        kmsv2_encrypt_data(SEED, b"x", AAD, info=INFO[:16])


def test_longer_seed_is_accepted() -> None:
    seed = bytes(64)
    data = kmsv2_encrypt_data(seed, b"x", AAD)
    obj = EncryptedObject(
        encrypted_data=data,
        key_id="k",
        encrypted_dek_source=b"w",
        encrypted_dek_source_type=DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED,
    )
    assert kmsv2_decrypt_data(obj, seed, AAD) == b"x"
    assert len(data) == 32 + 12 + 1 + 16


def test_repr_hides_ciphertexts() -> None:
    obj = decode_encrypted_object(_encode())
    assert "\\x01" not in repr(obj)
    assert "\\x02" not in repr(obj)


def test_fast_and_slow_decoding_paths_agree() -> None:
    tail = _encode(encrypted_data=b"")  # fields 2-5 only
    # Field 1 first (the apiserver's order, cached metadata path) and field 1 last.
    first = decode_encrypted_object(encode_len_field(1, b"payload") + tail)
    last = decode_encrypted_object(tail + encode_len_field(1, b"payload"))
    assert first == last
    assert first.encrypted_data == b"payload"
    # Field 1 twice: the last one wins on both paths.
    twice = encode_len_field(1, b"old") + tail + encode_len_field(1, b"new")
    assert decode_encrypted_object(twice).encrypted_data == b"new"
    # Same cached metadata, different payloads.
    assert decode_encrypted_object(encode_len_field(1, b"other") + tail).encrypted_data == b"other"


def test_error_order_follows_upstream_on_every_path() -> None:
    bad_type_tail = _encode(encrypted_data=b"", source_type=3)
    for data in (encode_len_field(1, b"") + bad_type_tail, bad_type_tail):
        with pytest.raises(FormatError, match="unknown encryptedDEKSourceType"):
            decode_encrypted_object(data)
    empty_both = _encode(encrypted_data=b"", encrypted_dek_source=b"")
    with pytest.raises(FormatError, match="encryptedData is empty"):
        decode_encrypted_object(encode_len_field(1, b"") + empty_both)


def test_decoded_annotations_are_read_only() -> None:
    obj = decode_encrypted_object(_encode())
    with pytest.raises(TypeError):
        obj.annotations["x.y"] = b"1"  # type: ignore[index]
    again = decode_encrypted_object(_encode())
    assert dict(again.annotations) == {"version.kms.example.com": b"7"}


def test_bytes_like_input_is_accepted() -> None:
    data = _encode()
    assert decode_encrypted_object(bytearray(data)) == decode_encrypted_object(data)  # type: ignore[arg-type]
    assert decode_encrypted_object(memoryview(data)) == decode_encrypted_object(data)  # type: ignore[arg-type]


@given(seed=st.binary(min_size=32, max_size=64), info=st.binary(min_size=32, max_size=32))
def test_derived_key_is_hkdf_expand_only_with_sha256(seed: bytes, info: bytes) -> None:
    # upstream's sha256KDFExpandOnly; ours is written as one HMAC block (RFC 5869, L=32)
    assert _derive_key(seed, info) == HKDFExpand(hashes.SHA256(), 32, info).derive(seed)
