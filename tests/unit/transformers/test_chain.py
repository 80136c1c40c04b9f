"""Write path, kms v2 seed life cycle and staleness rules of the chain."""

from __future__ import annotations

import base64
import itertools

import pytest

from secretkit.core.encryption_config import KMSProvider, load_encryption_config
from secretkit.core.formats import classify_value, decode_encrypted_object
from secretkit.core.formats.model import DEKSourceType, ValueProvider
from secretkit.core.transformers import (
    DEK_CACHE_SIZE,
    TransformerSet,
    _DEKCache,
    build_transformers,
)
from secretkit.errors import BackendError, ConfigError, DecryptError
from tests.unit.transformers.vectors import VECTORS, FakeKMS, b64, fake_kms_specs

KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()
ETCD_KEY = "/registry/secrets/default/db"


def _cfg(providers: str, resources: str = "[secrets]") -> bytes:
    return (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
        f"resources:\n  - resources: {resources}\n    providers:\n{providers}"
    ).encode()


def _local(ptype: str, *names: str) -> str:
    keys = "".join(
        f"            - name: {n}\n              secret: {KEY_A if i == 0 else KEY_B}\n"
        for i, n in enumerate(names)
    )
    return f"      - {ptype}:\n          keys:\n{keys}"


def _kms(name: str) -> str:
    return f"      - kms:\n          apiVersion: v2\n          name: {name}\n          endpoint: unix:///tmp/k.sock\n"


def _build(data: bytes, services: dict[str, FakeKMS] | None = None, **kw: object) -> TransformerSet:
    services = services or {}

    def factory(provider: KMSProvider) -> FakeKMS:
        return services[provider.name]

    return build_transformers(load_encryption_config(data), factory, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("ptype", ["aescbc", "aesgcm", "secretbox"])
def test_local_provider_writes_with_key_zero_and_reads_back_fresh(ptype: str) -> None:
    chain = _build(_cfg(_local(ptype, "k0", "k1") + "      - identity: {}\n")).for_resource(
        "secrets"
    )
    stored = chain.write(b"k8s\x00payload", ETCD_KEY)
    assert stored.startswith(f"k8s:enc:{ptype}:v1:k0:".encode())
    assert b"payload" not in stored
    assert classify_value(stored).provider == ValueProvider(ptype)
    result = chain.read(stored, ETCD_KEY)
    assert (result.plaintext, result.stale, result.key_name) == (b"k8s\x00payload", False, "k0")


def test_value_written_by_a_later_key_is_stale() -> None:
    writer = _build(_cfg(_local("aesgcm", "k1", "k0"))).for_resource("secrets")
    stored = writer.write(b"x", ETCD_KEY)
    # same key material under the same names, but k1 is now the second key
    reader_cfg = _cfg(
        "      - aesgcm:\n          keys:\n"
        f"            - name: k0\n              secret: {KEY_B}\n"
        f"            - name: k1\n              secret: {KEY_A}\n"
    )
    result = _build(reader_cfg).for_resource("secrets").read(stored, ETCD_KEY)
    assert result.stale and result.key_name == "k1"


def test_identity_first_reads_encrypted_data_through_the_next_provider() -> None:
    encrypted = _build(_cfg(_local("aesgcm", "k0"))).for_resource("secrets").write(b"v", ETCD_KEY)
    chain = _build(_cfg("      - identity: {}\n" + _local("aesgcm", "k0"))).for_resource("secrets")
    result = chain.read(encrypted, ETCD_KEY)
    assert (result.plaintext, result.stale, result.provider) == (b"v", True, ValueProvider.AESGCM)
    assert chain.write(b"plain", ETCD_KEY) == b"plain"
    assert chain.read(b"plain", ETCD_KEY).stale is False


def test_unconfigured_resources_get_identity_which_refuses_encrypted_data() -> None:
    transformers = _build(_cfg(_local("aesgcm", "k0")))
    encrypted = transformers.for_resource("secrets").write(b"v", ETCD_KEY)
    configmaps = transformers.for_etcd_key("/registry/configmaps/default/c")
    assert (
        configmaps.read(b"{}", "/registry/configmaps/default/c").provider == ValueProvider.IDENTITY
    )
    with pytest.raises(DecryptError, match="no matching prefix found"):
        configmaps.read(encrypted, "/registry/configmaps/default/c")


def test_aesgcm_binds_the_etcd_key() -> None:
    chain = _build(_cfg(_local("aesgcm", "k0"))).for_resource("secrets")
    stored = chain.write(b"v", ETCD_KEY)
    with pytest.raises(DecryptError, match="authentication failed"):
        chain.read(stored, ETCD_KEY + "-copy")


def test_randomness_is_injected() -> None:
    counter = itertools.count()

    def rng(n: int) -> bytes:
        return bytes([next(counter) % 256]) * n

    one = (
        _build(_cfg(_local("aesgcm", "k0")), rng=rng).for_resource("secrets").write(b"v", ETCD_KEY)
    )
    counter = itertools.count()
    two = (
        _build(_cfg(_local("aesgcm", "k0")), rng=rng).for_resource("secrets").write(b"v", ETCD_KEY)
    )
    assert one == two


def _fake(name: str = "kms-prod") -> FakeKMS:
    return FakeKMS.from_spec(fake_kms_specs()[name])


def test_kms_v2_one_encrypt_per_key_id_shared_by_every_write() -> None:
    service = _fake()
    transformers = _build(_cfg(_kms("kms-prod")), {"kms-prod": service})
    chain = transformers.for_resource("secrets")
    values = [chain.write(f"v{i}".encode(), f"{ETCD_KEY}{i}") for i in range(5)]
    assert service.encrypt_calls == 1
    prefix = b"k8s:enc:kms:v2:kms-prod:"
    objects = [decode_encrypted_object(v[len(prefix) :]) for v in values]
    assert len({o.encrypted_dek_source for o in objects}) == 1
    assert {o.key_id for o in objects} == {service.key_id}
    assert {o.encrypted_dek_source_type for o in objects} == {
        DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED
    }
    assert len({o.encrypted_data[:32] for o in objects}) == 5  # fresh HKDF info per write
    for i, value in enumerate(values):
        result = chain.read(value, f"{ETCD_KEY}{i}")
        assert (result.plaintext, result.stale, result.key_id) == (
            f"v{i}".encode(),
            False,
            service.key_id,
        )
    # our own seed is cached: no Decrypt round trip for what we wrote
    assert service.decrypt_calls == 0


def test_kms_v2_refresh_reseeds_on_key_id_change_and_marks_old_values_stale() -> None:
    service = _fake()
    transformers = _build(_cfg(_kms("kms-prod")), {"kms-prod": service})
    chain = transformers.for_resource("secrets")
    old = chain.write(b"old", ETCD_KEY)
    transformers.refresh_kms()
    assert service.encrypt_calls == 1  # same key_id: no new seed
    service.key_id = "rotated-key-2"
    transformers.refresh_kms()
    assert service.encrypt_calls == 2
    new = chain.write(b"new", ETCD_KEY)
    prefix = len(b"k8s:enc:kms:v2:kms-prod:")
    assert decode_encrypted_object(new[prefix:]).key_id == "rotated-key-2"
    assert chain.read(old, ETCD_KEY).stale is True
    assert chain.read(new, ETCD_KEY).stale is False


def test_kms_v2_upstream_values_are_fresh_only_under_current_key_id_and_type_1() -> None:
    prod = next(v for v in VECTORS if v["id"] == "kms-v2-22")
    legacy = next(v for v in VECTORS if v["id"] == "kms-v2-28")
    services = {"kms-prod": _fake("kms-prod"), "legacy-kms": _fake("legacy-kms")}
    first_prod = _build(_cfg(_kms("kms-prod") + _kms("legacy-kms")), services)
    chain = first_prod.for_etcd_key(prod["etcd_key"])
    assert chain.read(b64(prod["stored_b64"]), prod["etcd_key"]).stale is False
    services["kms-prod"].key_id = "something-newer"
    fresh_set = _build(_cfg(_kms("kms-prod")), services).for_etcd_key(prod["etcd_key"])
    assert fresh_set.read(b64(prod["stored_b64"]), prod["etcd_key"]).stale is True
    # legacy-kms wrote a type-0 DEK: stale even as provider #0 with its current key_id
    first_legacy = _build(_cfg(_kms("legacy-kms")), services).for_etcd_key(legacy["etcd_key"])
    result = first_legacy.read(b64(legacy["stored_b64"]), legacy["etcd_key"])
    assert result.plaintext == b64(legacy["plaintext_b64"]) and result.stale is True


def test_kms_v2_encrypt_key_id_must_match_status() -> None:
    class Disagreeing(FakeKMS):
        def encrypt(self, plaintext: bytes, uid: str):  # type: ignore[no-untyped-def]
            result = super().encrypt(plaintext, uid)
            return type(result)(result.ciphertext, "other", result.annotations)

    spec = fake_kms_specs()["kms-prod"]
    service = Disagreeing(b64(spec["kek_b64"]), spec["key_id"], {})
    chain = _build(_cfg(_kms("kms-prod")), {"kms-prod": service}).for_resource("secrets")
    with pytest.raises(BackendError, match="key_id other than"):
        chain.write(b"x", ETCD_KEY)


def test_missing_kms_service_is_a_reason_not_a_crash() -> None:
    vector = next(v for v in VECTORS if v["id"] == "kms-v2-22")
    chain = _build(_cfg(_kms("kms-prod")), {}).for_etcd_key(vector["etcd_key"])
    with pytest.raises(DecryptError, match="failed to decrypt DEK"):
        chain.read(b64(vector["stored_b64"]), vector["etcd_key"])


def test_kms_v1_cannot_write() -> None:
    data = _cfg("      - kms:\n          name: old\n          endpoint: unix:///tmp/k.sock\n")
    with pytest.raises(ConfigError, match="kms v1"):
        _build(data).for_resource("secrets").write(b"x", ETCD_KEY)


def test_dek_cache_is_bounded_lru() -> None:
    cache = _DEKCache(size=2)
    cache.put(("a",), b"1")
    cache.put(("b",), b"2")
    assert cache.get(("a",)) == b"1"  # a is now most recent
    cache.put(("c",), b"3")
    assert cache.get(("b",)) is None and cache.get(("a",)) == b"1" and len(cache) == 2
    assert DEK_CACHE_SIZE >= 100


def test_kms_v1_reads_gcm_fresh_and_legacy_cbc_stale() -> None:
    # no upstream kms v1 vectors exist: built from the documented layout (storage-formats §0)
    from secretkit.core.formats import aescbc_encrypt, aesgcm_encrypt, encode_kmsv1

    service = FakeKMS(b"K" * 32, "", {})  # v1 plugins wrap without a key_id
    dek = b"D" * 32
    wrapped = service.encrypt(dek, "uid").ciphertext
    prefix = b"k8s:enc:kms:v1:old:"
    gcm_value = prefix + encode_kmsv1(wrapped, aesgcm_encrypt(dek, b"gcm", ETCD_KEY.encode()))
    cbc_value = prefix + encode_kmsv1(wrapped, aescbc_encrypt(dek, b"cbc"))
    data = _cfg(
        _local("aesgcm", "k0")
        + "      - kms:\n          name: old\n          endpoint: unix:///tmp/k.sock\n"
    )
    chain = _build(data, {"old": service}).for_resource("secrets")
    gcm = chain.read(gcm_value, ETCD_KEY)
    assert (gcm.plaintext, gcm.provider, gcm.provider_name) == (b"gcm", ValueProvider.KMS_V1, "old")
    assert gcm.stale  # not provider #0
    first = _build(
        _cfg("      - kms:\n          name: old\n          endpoint: unix:///k.sock\n"),
        {"old": service},
    )
    v1_chain = first.for_resource("secrets")
    service.decrypt_calls = 0
    assert v1_chain.read(gcm_value, ETCD_KEY).stale is False
    assert v1_chain.read(cbc_value, ETCD_KEY).stale is True
    assert service.decrypt_calls == 1  # one Decrypt, then the DEK is cached
    with pytest.raises(DecryptError, match="kms v1 'old'"):
        v1_chain.read(gcm_value, ETCD_KEY + "-moved")
