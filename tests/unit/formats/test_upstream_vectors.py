"""Every upstream vector, at the formats level: decrypt, decode and classify."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag

from secretkit.core.formats import (
    DEKSourceType,
    PlaintextEncoding,
    ValueProvider,
    aescbc_decrypt,
    aescbc_encrypt,
    aesgcm_decrypt,
    aesgcm_encrypt,
    classify_value,
    decode_encrypted_object,
    encode_encrypted_object,
    kmsv2_decrypt_data,
    kmsv2_encrypt_data,
    match_key_name,
    prefix_for,
    secretbox_decrypt,
    secretbox_encrypt,
)
from secretkit.errors import DecryptError, FormatError
from tests.unit.formats.vectors import ALL, Vector, select

LOCAL_KEY_PROVIDERS = ("aescbc", "aesgcm", "secretbox")


def _ids(vectors: list[Vector]) -> list[str]:
    return [v.id for v in vectors]


def decrypt_vector(v: Vector) -> bytes:
    """Decrypt a vector with its own key material, as the formats layer would."""
    if v.provider == "identity":
        return v.stored
    if v.provider == "aescbc":
        return aescbc_decrypt(v.key, v.data)
    if v.provider == "aesgcm":
        return aesgcm_decrypt(v.key, v.data, v.aad)
    if v.provider == "secretbox":
        return secretbox_decrypt(v.key, v.data)
    assert v.provider == "kms-v2"
    obj = decode_encrypted_object(v.data)
    seed = v.unwrap_dek_source(obj.encrypted_dek_source, obj.key_id)
    return kmsv2_decrypt_data(obj, seed, v.aad)


def _prefix_name(v: Vector) -> str:
    """The key or provider name recorded in the stored prefix (``...:v1:<name>:``)."""
    version_end = v.prefix.index(b":v") + 4
    return v.prefix[version_end:-1].decode()


def _configured_names(v: Vector) -> list[str]:
    names: list[str] = []
    for provider in v.raw["writer_config"]:
        names.extend(key["name"] for key in provider.get("keys", ()))
        if "name" in provider:
            names.append(provider["name"])
    return names


def test_vector_file_covers_every_provider_and_negative_kind() -> None:
    assert {v.provider for v in ALL} == {"identity", *LOCAL_KEY_PROVIDERS, "kms-v2"}
    kinds = {v.raw["negative_kind"] for v in select(negative=True)}
    assert kinds == {
        "tampered_ciphertext",
        "wrong_etcd_key",
        "unknown_key_name",
        "tampered_ciphertext_undetected",
        "tampered_wrapped_dek",
        "unknown_kms_provider",
        "identity_reads_encrypted",
    }


@pytest.mark.parametrize("v", select(negative=False), ids=_ids(select(negative=False)))
def test_positive_vector_decrypts_to_plaintext(v: Vector) -> None:
    assert not v.expected_error
    assert decrypt_vector(v) == v.plaintext


@pytest.mark.parametrize("v", ALL, ids=_ids(ALL))
def test_prefix_for_rebuilds_the_stored_prefix(v: Vector) -> None:
    provider = "identity" if v.provider == "identity" else v.provider
    name = "" if v.provider == "identity" else _prefix_name(v)
    assert prefix_for(provider, name) == v.prefix


@pytest.mark.parametrize("v", ALL, ids=_ids(ALL))
def test_classify_matches_vector(v: Vector) -> None:
    result = classify_value(v.stored)
    assert result.size == len(v.stored)
    if v.provider == "identity":
        assert result.provider is ValueProvider.IDENTITY
        assert result.prefix == ""
        return
    assert result.provider == ValueProvider(v.provider)
    assert result.prefix.encode() == v.prefix[: v.prefix.index(b":v") + 4]
    assert result.encoding is None
    rest = v.stored[len(result.prefix) :]
    key_name = _prefix_name(v)
    if v.provider in LOCAL_KEY_PROVIDERS:
        assert result.detail is None
        # The guess is exact for names without ':'; configured names disambiguate the rest.
        if ":" in key_name:
            assert result.name is not None and key_name.startswith(result.name)
        else:
            assert result.name == key_name
        if v.raw.get("negative_kind") != "unknown_key_name":
            assert key_name == v.raw["key_name"]
            assert match_key_name(rest, _configured_names(v)) == key_name
        return
    assert result.name == key_name
    obj = result.kms_v2
    assert obj is not None, result.detail
    assert obj.key_id == v.raw["key_id"]
    assert obj.encrypted_dek_source_type == DEKSourceType[v.raw["encrypted_dek_source_type"]]
    expected_annotations = {
        key: base64.b64decode(value) for key, value in v.raw.get("annotations", {}).items()
    }
    assert dict(obj.annotations) == expected_annotations
    if "encrypted_dek_source_b64" in v.raw:
        assert obj.encrypted_dek_source == base64.b64decode(v.raw["encrypted_dek_source_b64"])
        assert obj.encrypted_data == base64.b64decode(v.raw["encrypted_data_b64"])


@pytest.mark.parametrize("v", select(provider="identity"), ids=_ids(select(provider="identity")))
def test_identity_encodings(v: Vector) -> None:
    result = classify_value(v.stored)
    if not v.stored:
        assert result.encoding is PlaintextEncoding.EMPTY
    elif v.stored.startswith(b"{"):
        assert result.encoding is PlaintextEncoding.JSON
        assert (result.api_version, result.kind) == ("v1", "Secret")
    else:
        # identity-03 is the protobuf magic followed by random bytes, not a real object.
        assert result.encoding is PlaintextEncoding.PROTOBUF
        assert result.detail is not None and "does not parse" in result.detail


def test_kms_v2_seed_vectors_unwrap_to_recorded_dek_source() -> None:
    for v in select(provider="kms-v2", negative=False):
        obj = decode_encrypted_object(v.data)
        seed = v.unwrap_dek_source(obj.encrypted_dek_source, obj.key_id)
        assert seed == base64.b64decode(v.raw["dek_source_b64"]), v.id


NEGATIVE_ERRORS = [v for v in select(negative=True) if v.expected_error]
NEGATIVE_ACCEPTED = [v for v in select(negative=True) if not v.expected_error]


@pytest.mark.parametrize("v", NEGATIVE_ACCEPTED, ids=_ids(NEGATIVE_ACCEPTED))
def test_negative_accepted_by_upstream_gives_upstream_output(v: Vector) -> None:
    assert v.raw["upstream_read"]["ok"]
    assert decrypt_vector(v) == v.expected_output


def test_tampered_cbc_middle_block_really_garbles_output() -> None:
    (v,) = [v for v in NEGATIVE_ACCEPTED if v.raw["negative_kind"].endswith("undetected")]
    assert decrypt_vector(v) != v.plaintext


@pytest.mark.parametrize("v", NEGATIVE_ERRORS, ids=_ids(NEGATIVE_ERRORS))
def test_negative_fails_where_upstream_failed(v: Vector) -> None:
    assert not v.raw["upstream_read"]["ok"]
    kind = v.raw["negative_kind"]
    if kind in ("tampered_ciphertext", "wrong_etcd_key"):
        with pytest.raises((DecryptError, FormatError)):
            decrypt_vector(v)
    elif kind == "unknown_key_name":
        result = classify_value(v.stored)
        rest = v.stored[len(result.prefix) :]
        assert match_key_name(rest, _configured_names(v)) is None
    elif kind == "unknown_kms_provider":
        result = classify_value(v.stored)
        assert result.provider is ValueProvider.KMS_V2
        assert result.name not in _configured_names(v)
    elif kind == "tampered_wrapped_dek":
        # The layout is intact; the KMS (here the vectors' stand-in) refuses the DEK source.
        obj = decode_encrypted_object(v.data)
        with pytest.raises(InvalidTag):
            v.unwrap_dek_source(obj.encrypted_dek_source, obj.key_id)
    elif kind == "identity_reads_encrypted":
        result = classify_value(v.stored)
        assert result.provider is not ValueProvider.IDENTITY
        assert v.stored.startswith(b"k8s:enc:")
    else:  # pragma: no cover - a new kind in the vector file needs a test
        pytest.fail(f"unhandled negative kind {kind}")


def test_decrypt_with_wrong_key_fails_for_every_local_vector() -> None:
    for v in select(negative=False):
        if v.provider not in LOCAL_KEY_PROVIDERS:
            continue
        wrong = bytes(b ^ 0x5A for b in v.key)
        with pytest.raises((DecryptError, FormatError)):
            if v.provider == "aescbc":
                # CBC has no MAC: a wrong key is only caught by the padding check, which
                # random output passes with probability ~1/256; these vectors do not.
                aescbc_decrypt(wrong, v.data)
            elif v.provider == "aesgcm":
                aesgcm_decrypt(wrong, v.data, v.aad)
            else:
                secretbox_decrypt(wrong, v.data)


ENCODER_VECTORS = [
    v for v in select(negative=False) if v.provider in (*LOCAL_KEY_PROVIDERS, "kms-v2")
]


@pytest.mark.parametrize("v", ENCODER_VECTORS, ids=_ids(ENCODER_VECTORS))
def test_encoders_reproduce_upstream_bytes_given_its_randomness(v: Vector) -> None:
    """With the IV/nonce/info upstream drew, our encoders write upstream's exact bytes."""
    data = v.data
    if v.provider == "aescbc":
        assert aescbc_encrypt(v.key, v.plaintext, iv=data[:16]) == data
    elif v.provider == "aesgcm":
        assert aesgcm_encrypt(v.key, v.plaintext, v.aad, nonce=data[:12]) == data
    elif v.provider == "secretbox":
        assert secretbox_encrypt(v.key, v.plaintext, nonce=data[:24]) == data
    else:
        obj = decode_encrypted_object(data)
        seed = base64.b64decode(v.raw["dek_source_b64"])
        enc = obj.encrypted_data
        if obj.encrypted_dek_source_type is DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED:
            rebuilt = kmsv2_encrypt_data(seed, v.plaintext, v.aad, info=enc[:32], nonce=enc[32:44])
        else:
            rebuilt = aesgcm_encrypt(seed, v.plaintext, v.aad, nonce=enc[:12])
        assert rebuilt == enc
        # Field order and map order vary upstream, so compare decoded objects.
        assert decode_encrypted_object(encode_encrypted_object(obj)) == obj
