"""All 46 upstream vectors through the full chain: every verdict must match upstream."""

from __future__ import annotations

from typing import Any

import pytest

from secretkit.core.encryption_config import KMSProvider, load_encryption_config
from secretkit.core.transformers import TransformerSet, build_transformers
from secretkit.errors import DecryptError
from tests.unit.transformers.vectors import (
    IDENTITY_ONLY_CONFIG,
    VECTORS,
    FakeKMS,
    all_providers_config,
    b64,
    fake_kms_specs,
)


def _reader(kind: str) -> tuple[TransformerSet, dict[str, FakeKMS]]:
    services = {name: FakeKMS.from_spec(spec) for name, spec in fake_kms_specs().items()}

    def factory(provider: KMSProvider) -> FakeKMS:
        return services[provider.name]

    data = all_providers_config() if kind == "all-providers" else IDENTITY_ONLY_CONFIG
    cfg = load_encryption_config(data, source=kind)
    return build_transformers(cfg, factory), services


def test_there_are_46_vectors_and_both_readers() -> None:
    assert len(VECTORS) == 46
    assert {v["upstream_read"]["reader"] for v in VECTORS} == {"all-providers", "identity-only"}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vector_verdict_matches_upstream(vector: dict[str, Any]) -> None:
    expected = vector["upstream_read"]
    transformers, _ = _reader(expected["reader"])
    chain = transformers.for_etcd_key(vector["etcd_key"])
    stored = b64(vector["stored_b64"])
    if not expected["ok"]:
        with pytest.raises(DecryptError) as info:
            chain.read(stored, vector["etcd_key"])
        message = info.value.what
        upstream_error = expected["error"]
        # the chain's own messages are upstream's; crypto failures are ours, but say so
        if upstream_error in ("no matching prefix found",) or upstream_error.startswith(
            "no matching key"
        ):
            assert upstream_error in message
        elif upstream_error.startswith("failed to decrypt DEK"):
            assert "failed to decrypt DEK" in message
        else:
            assert "authentication failed" in message or "padding" in message, message
        assert len(message) < 2000
        return
    result = chain.read(stored, vector["etcd_key"])
    want = b64(expected.get("output_b64") or vector["plaintext_b64"])
    assert result.plaintext == want
    assert result.stale is expected["stale"]
    assert result.provider.value == vector["provider"]
    if vector["provider"] == "kms-v2":
        assert result.provider_name == vector["provider_name"]
        assert result.key_id == vector["key_id"]
    elif vector["provider"] != "identity":
        assert result.key_name == vector["key_name"]


def test_the_three_accepted_negatives_are_accepted() -> None:
    accepted = [v for v in VECTORS if v.get("negative_kind") and v["expected_error"] is False]
    assert len(accepted) == 3
    transformers, _ = _reader("all-providers")
    for vector in accepted:
        chain = transformers.for_etcd_key(vector["etcd_key"])
        assert chain.read(b64(vector["stored_b64"]), vector["etcd_key"]).plaintext is not None


def test_decrypt_errors_name_every_provider_tried_and_leak_nothing() -> None:
    vector = next(v for v in VECTORS if v["id"] == "neg-aesgcm-30")
    transformers, _ = _reader("all-providers")
    with pytest.raises(DecryptError) as info:
        transformers.for_etcd_key(vector["etcd_key"]).read(
            b64(vector["stored_b64"]), vector["etcd_key"]
        )
    text = info.value.diagnostics()
    assert "aesgcm" in text and "gcm-key-1" in text
    for secret_field in ("plaintext_b64", "stored_b64"):
        assert vector[secret_field][:12] not in text
    for provider in vector["writer_config"]:
        for key in provider.get("keys", []):
            assert key["secret"] not in text


def test_kms_decrypt_results_are_cached_per_dek_source() -> None:
    transformers, services = _reader("all-providers")
    prod = [v for v in VECTORS if v["provider_name"] == "kms-prod" and v["upstream_read"]["ok"]]
    assert len(prod) >= 4
    for vector in prod:
        transformers.for_etcd_key(vector["etcd_key"]).read(
            b64(vector["stored_b64"]), vector["etcd_key"]
        )
    distinct = {v["encrypted_dek_source_b64"] for v in prod}
    assert services["kms-prod"].decrypt_calls == len(distinct)
