"""Property tests: round trips of every codec, and robustness against garbage."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretkit.core.formats import (
    DEKSourceType,
    EncryptedObject,
    StoredValue,
    ValueProvider,
    aescbc_decrypt,
    aescbc_encrypt,
    aesgcm_decrypt,
    aesgcm_encrypt,
    classify_value,
    decode_encrypted_object,
    decode_kmsv1,
    decode_unknown,
    encode_encrypted_object,
    encode_kmsv1,
    encode_unknown,
    kmsv1_decrypt_payload,
    kmsv2_decrypt_data,
    kmsv2_encrypt_data,
    match_key_name,
    prefix_for,
    secretbox_decrypt,
    secretbox_encrypt,
)
from secretkit.errors import DecryptError, FormatError
from tests.unit.formats.proto_reference import reference_decode, reference_encode
from tests.unit.formats.vectors import ALL

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

aes_keys = st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
keys32 = st.binary(min_size=32, max_size=32)
plaintexts = st.binary(max_size=300)
etcd_keys = st.text(min_size=1, max_size=60).map(lambda s: ("/registry/secrets/" + s).encode())
# Key names may contain ':' (and are printable); kms v2 names may not.
key_names = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
)
labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
fqdns = st.lists(labels, min_size=2, max_size=4).map(".".join)
encrypted_objects = st.builds(
    EncryptedObject,
    encrypted_data=st.binary(min_size=1, max_size=200),
    key_id=st.text(min_size=1, max_size=100),
    encrypted_dek_source=st.binary(min_size=1, max_size=300),
    annotations=st.dictionaries(fqdns, st.binary(max_size=40), max_size=4),
    encrypted_dek_source_type=st.sampled_from(list(DEKSourceType)),
)


@SETTINGS
@given(aes_keys, plaintexts)
def test_aescbc_round_trip(key: bytes, plaintext: bytes) -> None:
    data = aescbc_encrypt(key, plaintext)
    assert len(data) == 16 + (len(plaintext) // 16 + 1) * 16
    assert aescbc_decrypt(key, data) == plaintext


@SETTINGS
@given(aes_keys, plaintexts, etcd_keys)
def test_aesgcm_round_trip(key: bytes, plaintext: bytes, aad: bytes) -> None:
    assert aesgcm_decrypt(key, aesgcm_encrypt(key, plaintext, aad), aad) == plaintext


@SETTINGS
@given(keys32, plaintexts)
def test_secretbox_round_trip(key: bytes, plaintext: bytes) -> None:
    assert secretbox_decrypt(key, secretbox_encrypt(key, plaintext)) == plaintext


@SETTINGS
@given(st.binary(min_size=32, max_size=64), plaintexts, etcd_keys)
def test_kmsv2_type1_round_trip(seed: bytes, plaintext: bytes, aad: bytes) -> None:
    obj = EncryptedObject(
        encrypted_data=kmsv2_encrypt_data(seed, plaintext, aad),
        key_id="k",
        encrypted_dek_source=b"wrapped",
        encrypted_dek_source_type=DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED,
    )
    assert kmsv2_decrypt_data(obj, seed, aad) == plaintext


@SETTINGS
@given(st.binary(min_size=1, max_size=600), st.binary(max_size=200), keys32, plaintexts)
def test_kmsv1_round_trip(wrapped: bytes, extra: bytes, dek: bytes, plaintext: bytes) -> None:
    payload = aesgcm_encrypt(dek, plaintext, b"/registry/x")
    assert decode_kmsv1(encode_kmsv1(wrapped, payload + extra)) == (wrapped, payload + extra)
    assert kmsv1_decrypt_payload(dek, payload, b"/registry/x") == plaintext


@SETTINGS
@given(encrypted_objects)
def test_encrypted_object_round_trip_and_cross_check(obj: EncryptedObject) -> None:
    data = encode_encrypted_object(obj)
    assert decode_encrypted_object(data) == obj
    message = reference_decode(data)
    assert (message.keyID, bytes(message.encryptedData)) == (obj.key_id, obj.encrypted_data)
    assert dict(message.annotations) == dict(obj.annotations)
    reference = reference_encode(
        encrypted_data=obj.encrypted_data,
        key_id=obj.key_id,
        encrypted_dek_source=obj.encrypted_dek_source,
        annotations=dict(obj.annotations),
        source_type=int(obj.encrypted_dek_source_type),
    )
    assert decode_encrypted_object(reference) == obj


@SETTINGS
@given(st.text(max_size=30), st.text(max_size=30), st.binary(max_size=300))
def test_envelope_round_trip(api_version: str, kind: str, raw: bytes) -> None:
    decoded = decode_unknown(encode_unknown(api_version, kind, raw))
    assert (decoded.api_version, decoded.kind, decoded.raw) == (api_version, kind, raw)
    result = classify_value(encode_unknown(api_version, kind, raw))
    assert (result.api_version or "", result.kind or "") == (api_version, kind)


@SETTINGS
@given(
    st.sampled_from(["aescbc", "aesgcm", "secretbox"]),
    key_names,
    st.lists(key_names, max_size=4),
    keys32,
    plaintexts,
)
def test_full_value_names_resolve_with_match_key_name(
    provider: str, name: str, others: list[str], key: bytes, plaintext: bytes
) -> None:
    aad = b"/registry/secrets/a/b"
    if provider == "aescbc":
        data = aescbc_encrypt(key, plaintext)
    elif provider == "aesgcm":
        data = aesgcm_encrypt(key, plaintext, aad)
    else:
        data = secretbox_encrypt(key, plaintext)
    value = prefix_for(provider, name) + data
    result = classify_value(value)
    assert result.provider == ValueProvider(provider)
    assert result.name is not None and (name + ":").startswith(result.name + ":")
    rest = value[len(result.prefix) :]
    configured = [n for n in others if not name.startswith(n + ":")] + [name]
    assert match_key_name(rest, configured) == name


def _decoders() -> list[Callable[[bytes], object]]:
    key16 = bytes(16)
    key32 = bytes(range(32))
    source_types = list(DEKSourceType)

    def kmsv2(data: bytes) -> object:
        obj = EncryptedObject(
            encrypted_data=data,
            key_id="k",
            encrypted_dek_source=b"w",
            encrypted_dek_source_type=source_types[len(data) % 2],
        )
        return kmsv2_decrypt_data(obj, key32, b"aad")

    return [
        lambda d: aescbc_decrypt(key16, d),
        lambda d: aescbc_decrypt(key32, d),
        lambda d: aesgcm_decrypt(key32, d, b"aad"),
        lambda d: secretbox_decrypt(key32, d),
        lambda d: kmsv1_decrypt_payload(key32, d, b"aad"),
        decode_kmsv1,
        decode_encrypted_object,
        decode_unknown,
        kmsv2,
    ]


DECODERS = _decoders()


def _assert_robust(data: bytes) -> None:
    for decoder in DECODERS:
        with contextlib.suppress(FormatError, DecryptError):
            decoder(data)
    result = classify_value(data)
    assert isinstance(result, StoredValue)
    assert result.size == len(data)
    assert result.detail != "value could not be classified"


prefixes = st.sampled_from(
    [
        b"",
        b"k8s\x00",
        b"k8s:enc:",
        b"k8s:enc:aescbc:v1:",
        b"k8s:enc:aesgcm:v1:k:",
        b"k8s:enc:secretbox:v1:",
        b"k8s:enc:kms:v1:n:",
        b"k8s:enc:kms:v2:n:",
        b"{",
    ]
)


@SETTINGS
@given(prefixes, st.binary(max_size=400))
def test_garbage_never_escapes(prefix: bytes, data: bytes) -> None:
    _assert_robust(prefix + data)
    _assert_robust(data)


@st.composite
def mutated_vectors(draw: st.DrawFn) -> bytes:
    value = bytearray(draw(st.sampled_from([v.stored for v in ALL if v.stored])))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(value) - 1, 0)))
        if op == "flip" and value:
            value[pos] ^= draw(st.integers(1, 255))
        elif op == "insert":
            value[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and value:
            del value[pos : pos + draw(st.integers(1, 8))]
        else:
            del value[pos:]
    return bytes(value)


@SETTINGS
@given(mutated_vectors())
def test_mutated_upstream_values_never_escape(value: bytes) -> None:
    _assert_robust(value)
    result = classify_value(value)
    for prefix in (b"k8s:enc:aescbc:v1:", b"k8s:enc:aesgcm:v1:", b"k8s:enc:secretbox:v1:"):
        if value.startswith(prefix) and result.name is not None:
            _assert_robust(value[len(prefix) + len(result.name) + 1 :])
    if value.startswith(b"k8s:enc:kms:v2:") and result.name is not None:
        _assert_robust(value[len(b"k8s:enc:kms:v2:") + len(result.name) + 1 :])
