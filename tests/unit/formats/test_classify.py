"""classify_value on hand-built values of every kind (the vectors are in another file)."""

from __future__ import annotations

import pytest

from secretkit.core.formats import (
    DEKSourceType,
    EncryptedObject,
    PlaintextEncoding,
    ValueProvider,
    aescbc_encrypt,
    aesgcm_encrypt,
    classify_value,
    encode_encrypted_object,
    encode_kmsv1,
    encode_unknown,
    prefix_for,
    secretbox_encrypt,
)

KEY = bytes(range(32))
AAD = b"/registry/secrets/ns/name"


def test_protobuf_identity_reports_type_meta() -> None:
    result = classify_value(encode_unknown("v1", "Secret", b"\x0a\x00"))
    assert result.provider is ValueProvider.IDENTITY
    assert result.encoding is PlaintextEncoding.PROTOBUF
    assert (result.api_version, result.kind, result.detail) == ("v1", "Secret", None)


@pytest.mark.parametrize(
    ("value", "api_version", "kind", "has_detail"),
    [
        (b'{"apiVersion":"v1","kind":"ConfigMap","data":{}}', "v1", "ConfigMap", False),
        (b'{"kind": 5}', None, None, False),
        (b"{not json", None, None, True),
        (b"{" * 100_000, None, None, True),  # deep nesting must not escape as RecursionError
    ],
)
def test_json_identity(
    value: bytes, api_version: str | None, kind: str | None, has_detail: bool
) -> None:
    result = classify_value(value)
    assert result.provider is ValueProvider.IDENTITY
    assert result.encoding is PlaintextEncoding.JSON
    assert (result.api_version, result.kind) == (api_version, kind)
    assert (result.detail is not None) is has_detail


@pytest.mark.parametrize("value", [b"plain text", b"[1,2]", b"\x00\x01", b"k8s:", b"k8s:en"])
def test_other_identity(value: bytes) -> None:
    result = classify_value(value)
    assert result.provider is ValueProvider.IDENTITY
    assert result.encoding is PlaintextEncoding.OTHER


def test_empty_value() -> None:
    result = classify_value(b"")
    assert (result.provider, result.encoding, result.size) == (
        ValueProvider.IDENTITY,
        PlaintextEncoding.EMPTY,
        0,
    )


@pytest.mark.parametrize(
    ("value", "prefix"),
    [
        (b"k8s:enc:foo:v1:name:data", "k8s:enc:foo:v1:"),
        (b"k8s:enc:kms:v3:name:data", "k8s:enc:kms:v3:"),
        (b"k8s:enc:aesgcm:v2:name:data", "k8s:enc:aesgcm:v2:"),
        (b"k8s:enc:\xff\xfe", "k8s:enc:"),
        (b"k8s:enc:", "k8s:enc:"),
    ],
)
def test_unknown_encrypted_prefix(value: bytes, prefix: str) -> None:
    result = classify_value(value)
    assert result.provider is ValueProvider.UNKNOWN
    assert result.prefix == prefix
    assert result.detail is not None


def test_local_key_names_with_colons_are_disambiguated_by_layout() -> None:
    # "k" leaves 2 + 48 bytes (not a block multiple), so the guess moves on to "k:1".
    value = prefix_for("aescbc", "k:1") + aescbc_encrypt(KEY, b"x" * 20)
    assert classify_value(value).name == "k:1"
    # Without a layout hint the guess stops at the first ':' (documented best effort).
    value = prefix_for("aesgcm", "k:1") + aesgcm_encrypt(KEY, b"x" * 20, AAD)
    assert classify_value(value).name == "k"


@pytest.mark.parametrize(
    ("provider", "data"),
    [
        ("aescbc", bytes(31)),
        ("aescbc", bytes(40)),
        ("aesgcm", bytes(27)),
        ("secretbox", bytes(39)),
    ],
)
def test_local_key_bad_layout_is_reported(provider: str, data: bytes) -> None:
    result = classify_value(prefix_for(provider, "key") + data)
    assert result.provider == ValueProvider(provider)
    assert result.name == "key"
    assert result.detail is not None


def test_missing_name_terminator() -> None:
    result = classify_value(b"k8s:enc:aesgcm:v1:" + b"\x00" * 40)
    assert result.provider is ValueProvider.AESGCM
    assert result.name is None
    assert result.detail is not None
    assert classify_value(b"k8s:enc:aesgcm:v1::" + bytes(40)).name is None


def test_secretbox_value() -> None:
    result = classify_value(prefix_for("secretbox", "sb") + secretbox_encrypt(KEY, b"v"))
    assert (result.provider, result.name, result.detail) == (ValueProvider.SECRETBOX, "sb", None)


def test_kms_v1_value_and_dek_length_sanity() -> None:
    payload = aesgcm_encrypt(KEY, b"v1 data", AAD)
    good = prefix_for("kms-v1", "legacy") + encode_kmsv1(b"w" * 100, payload)
    result = classify_value(good)
    assert (result.provider, result.name, result.detail) == (ValueProvider.KMS_V1, "legacy", None)
    # A name containing ':' is found because only the right split gives a sane DEK length.
    result = classify_value(prefix_for("kms-v1", "a:b") + encode_kmsv1(b"w" * 100, payload))
    assert (result.name, result.detail) == ("a:b", None)
    bad = prefix_for("kms-v1", "legacy") + b"\x7f\xff" + bytes(40)
    result = classify_value(bad)
    assert result.provider is ValueProvider.KMS_V1
    assert result.detail is not None and "DEK" in result.detail


def test_kms_v2_value() -> None:
    obj = EncryptedObject(
        encrypted_data=b"d" * 60,
        key_id="key:with:colons",
        encrypted_dek_source=b"s" * 40,
        annotations={"v.example.com": b"1"},
        encrypted_dek_source_type=DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED,
    )
    value = prefix_for("kms-v2", "prod") + encode_encrypted_object(obj)
    result = classify_value(value)
    assert (result.provider, result.name, result.kms_v2, result.detail) == (
        ValueProvider.KMS_V2,
        "prod",
        obj,
        None,
    )
    assert result.prefix == "k8s:enc:kms:v2:"


@pytest.mark.parametrize(
    "rest",
    [b"prod:", b"prod:\x0a\x05ab", b"prod:\x12\x01k", b"noterminator", b":\x0a\x01x"],
)
def test_kms_v2_bad_object_is_detail_not_error(rest: bytes) -> None:
    result = classify_value(b"k8s:enc:kms:v2:" + rest)
    assert result.provider is ValueProvider.KMS_V2
    assert result.kms_v2 is None
    assert result.detail is not None


def test_accepts_other_bytes_like_values() -> None:
    value = prefix_for("aesgcm", "k") + aesgcm_encrypt(KEY, b"x", AAD)
    assert classify_value(bytearray(value)).name == "k"  # type: ignore[arg-type]
    assert classify_value(memoryview(value)).name == "k"  # type: ignore[arg-type]


def test_never_raises_on_wrong_types() -> None:
    result = classify_value(None)  # type: ignore[arg-type]
    assert result.provider is ValueProvider.UNKNOWN
    assert result.detail == "value could not be classified"


def test_result_holds_no_plaintext() -> None:
    result = classify_value(b'{"apiVersion":"v1","kind":"Secret","data":{"p":"aHVudGVyMg=="}}')
    assert "aHVudGVyMg" not in repr(result)
