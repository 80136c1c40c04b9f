"""The classifier's verdicts on values the real apiserver wrote (upstream vectors)."""

from __future__ import annotations

from typing import Any

import pytest

from secretkit.audit.model import FindingKind
from tests.unit.audit.helpers import (
    IDENTITY_ONLY_CONFIG,
    VECTORS,
    classifier,
    config,
    stored,
    vector,
)

POSITIVE = [v for v in VECTORS if v["upstream_read"]["ok"]]
NEGATIVE = [v for v in VECTORS if not v["upstream_read"]["ok"]]
ALL_PROVIDERS = [v for v in VECTORS if v["upstream_read"]["reader"] == "all-providers"]


def _classify(c: Any, v: dict[str, Any]) -> Any:
    return c.classify(v["etcd_key"].encode(), stored(v), 7)


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["id"])
def test_provider_is_read_from_the_bytes_alone(v: dict[str, Any]) -> None:
    record = _classify(classifier(), v)
    assert record.provider == v["provider"]
    assert record.size == v["stored_len"]
    assert record.mod_revision == 7
    if v["provider"] == "kms-v2":
        assert record.provider_name == v["stored_prefix"].split(":")[4]
        assert record.key_id == v["key_id"]
        expected_type = 1 if v["encrypted_dek_source_type"].startswith("HKDF") else 0
        assert record.dek_source_type == expected_type


def test_local_key_names_with_colons_are_matched_against_the_config() -> None:
    v = vector("aesgcm-15")  # key name "gcm:key:3"
    assert _classify(classifier(config()), v).key_name == "gcm:key:3"


def test_plaintext_is_a_finding_only_for_protected_resources() -> None:
    secret = _classify(classifier(), vector("identity-02"))  # /registry/secrets/...
    configmap = _classify(classifier(), vector("identity-01"))  # /registry/configmaps/...
    assert FindingKind.PLAINTEXT in secret.findings
    assert configmap.findings == ()
    widened = _classify(classifier(resources=("configmaps",)), vector("identity-01"))
    assert FindingKind.PLAINTEXT in widened.findings


@pytest.mark.parametrize("v", [v for v in POSITIVE if v in ALL_PROVIDERS], ids=lambda v: v["id"])
def test_classification_only_stale_verdict_matches_upstream(v: dict[str, Any]) -> None:
    """No decryption: prefix, key name and provider order decide staleness like upstream."""
    record = _classify(classifier(config()), v)
    assert (FindingKind.STALE in record.findings) is v["upstream_read"]["stale"]
    assert FindingKind.UNDECRYPTABLE not in record.findings


@pytest.mark.parametrize("v", ALL_PROVIDERS, ids=lambda v: v["id"])
def test_decrypt_check_matches_upstream_read(v: dict[str, Any]) -> None:
    record = _classify(classifier(config(), decrypt=True), v)
    assert (FindingKind.UNDECRYPTABLE in record.findings) is (not v["upstream_read"]["ok"])
    if v["upstream_read"]["ok"]:
        assert (FindingKind.STALE in record.findings) is v["upstream_read"]["stale"]


@pytest.mark.parametrize("vector_id", ["neg-aesgcm-33", "neg-kms-v2-43"])
def test_unknown_key_or_provider_is_undecryptable_without_decrypting(vector_id: str) -> None:
    record = _classify(classifier(config()), vector(vector_id))
    assert FindingKind.UNDECRYPTABLE in record.findings


def test_identity_only_config_cannot_read_encrypted_values() -> None:
    v = vector("neg-aesgcm-46")
    assert v["upstream_read"]["reader"] == "identity-only"
    record = _classify(classifier(config(IDENTITY_ONLY_CONFIG)), v)
    assert FindingKind.UNDECRYPTABLE in record.findings
    decrypted = _classify(classifier(config(IDENTITY_ONLY_CONFIG), decrypt=True), v)
    assert FindingKind.UNDECRYPTABLE in decrypted.findings


def test_plaintext_without_identity_in_the_chain_is_undecryptable() -> None:
    cfg = config(
        b"apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
        b"resources:\n  - resources: [secrets]\n    providers:\n"
        b"      - aesgcm:\n          keys:\n            - name: k1\n"
        b"              secret: hiQYeO4rkePgURAoRJTeYzlwEAkryCMBx57vIvy3/1w=\n"
    )
    record = _classify(classifier(cfg), vector("identity-02"))
    assert {FindingKind.PLAINTEXT, FindingKind.UNDECRYPTABLE} <= set(record.findings)


KMS_FIRST = (
    b"apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
    b"resources:\n  - resources: [secrets, configmaps]\n    providers:\n"
    b"      - kms: {apiVersion: v2, name: %s, endpoint: 'unix:///tmp/x.sock'}\n"
    b"      - identity: {}\n"
)


def test_kms_v2_key_id_against_the_plugin_current_key_id() -> None:
    v = vector("kms-v2-22")
    cfg = config(KMS_FIRST % b"kms-prod")
    current = _classify(classifier(cfg, kms_key_ids={"kms-prod": v["key_id"]}), v)
    rotated = _classify(classifier(cfg, kms_key_ids={"kms-prod": "new-key"}), v)
    unknown = _classify(classifier(cfg), v)
    assert FindingKind.STALE not in current.findings
    assert FindingKind.STALE in rotated.findings
    assert any("key_id" in r for r in rotated.reasons)
    assert FindingKind.STALE not in unknown.findings


def test_kms_v2_legacy_dek_source_type_is_stale() -> None:
    v = vector("kms-v2-28")  # legacy-kms, AES_GCM_KEY
    cfg = config(KMS_FIRST % b"legacy-kms")
    record = _classify(classifier(cfg, kms_key_ids={"legacy-kms": v["key_id"]}), v)
    assert record.dek_source_type == 0
    assert FindingKind.STALE in record.findings


@pytest.mark.parametrize(
    ("value", "provider"),
    [
        (b"\xff\xfegarbage", "identity"),
        (b"k8s:enc:rot13:v1:x:abc", "unknown"),
        (b"k8s:enc:kms:v2:kms-prod:\xff\xff", "kms-v2"),
    ],
)
def test_garbage_is_unknown_and_never_raises(value: bytes, provider: str) -> None:
    record = classifier(config()).classify(b"/registry/secrets/ns/junk", value, 3)
    assert record.provider == provider
    assert FindingKind.UNKNOWN in record.findings
    assert record.size == len(value)


def test_valid_plaintext_objects_are_not_unknown() -> None:
    for vector_id in ("identity-01", "identity-02", "identity-03"):
        record = classifier().classify(b"/registry/secrets/a/b", stored(vector(vector_id)), 1)
        assert FindingKind.UNKNOWN not in record.findings, vector_id


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["id"])
def test_fast_path_agrees_with_classify_value(v: dict[str, Any]) -> None:
    from secretkit.audit.classify import _classify_fast
    from secretkit.core.formats import classify_value

    fast, full = _classify_fast(stored(v)), classify_value(stored(v))
    assert (fast.provider, fast.encoding, fast.prefix) == (
        full.provider,
        full.encoding,
        full.prefix,
    )
    assert fast.name == full.name


@pytest.mark.parametrize("v", [v for v in NEGATIVE if v in ALL_PROVIDERS], ids=lambda v: v["id"])
def test_undecryptable_values_are_not_also_stale(v: dict[str, Any]) -> None:
    record = _classify(classifier(config(), decrypt=True), v)
    assert FindingKind.UNDECRYPTABLE in record.findings
    assert FindingKind.STALE not in record.findings
    assert len(record.findings) == len(set(record.findings))


@pytest.mark.parametrize("payload_size", [40, 30_000])
def test_kms_v1_provider_names_with_a_colon_are_shown_and_judged_whole(payload_size: int) -> None:
    from secretkit.core.formats import encode_kmsv1

    cfg = config(
        b"apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
        b"resources:\n  - resources: ['secrets']\n    providers:\n"
        b"      - kms: {name: 'a:b', endpoint: 'unix:///tmp/k.sock'}\n"
        b"      - identity: {}\n"
    )
    value = b"k8s:enc:kms:v1:a:b:" + encode_kmsv1(b"d" * 32, b"x" * payload_size)
    record = classifier(cfg).classify(b"/registry/secrets/ns/s", value, 1)
    assert record.provider == "kms-v1"
    assert record.provider_name == "a:b"
    assert FindingKind.UNDECRYPTABLE not in record.findings
