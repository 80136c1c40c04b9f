"""Stale verdicts from prefixes alone, on values written by the real apiserver."""

from __future__ import annotations

from typing import Any

import pytest

from secretkit.core.encryption_config.model import (
    IdentityProvider,
    KMSProvider,
)
from secretkit.reencrypt.stale import is_stale
from tests.unit.reencrypt.vectors import IDENTITY, KMS, LOCAL, local, stored


def test_vectors_cover_every_provider() -> None:
    assert LOCAL and KMS and IDENTITY


@pytest.mark.parametrize("v", LOCAL, ids=lambda v: v["id"])
def test_local_value_is_fresh_only_for_its_own_first_key(v: dict[str, Any]) -> None:
    value = stored(v)
    assert not is_stale(value, local(v["provider"], v["key_name"], "other"))
    # the writing key demoted to second place (a rotation's promote step): stale
    assert is_stale(value, local(v["provider"], "new-key", v["key_name"]))
    assert is_stale(value, IdentityProvider())
    other_type = "aesgcm" if v["provider"] != "aesgcm" else "aescbc"
    assert is_stale(value, local(other_type, v["key_name"]))


@pytest.mark.parametrize("v", LOCAL, ids=lambda v: v["id"])
def test_key_name_that_is_a_prefix_of_the_writer_is_not_confused(v: dict[str, Any]) -> None:
    # names may contain ':'; "<writer>:x" starts with "<writer>:" but did not write it
    assert is_stale(stored(v), local(v["provider"], v["key_name"] + ":x", v["key_name"]))


@pytest.mark.parametrize("v", KMS, ids=lambda v: v["id"])
def test_kms_v2_compares_provider_name_key_id_and_dek_type(v: dict[str, Any]) -> None:
    value = stored(v)
    name = v["provider_name"]
    provider = KMSProvider(name=name, endpoint="unix:///x.sock", api_version="v2")
    seed_type = v["encrypted_dek_source_type"] == "HKDF_SHA256_XNONCE_AES_GCM_SEED"
    assert is_stale(value, provider, kms_key_ids={name: v["key_id"]}) is not seed_type
    assert is_stale(value, provider, kms_key_ids={name: v["key_id"] + "-rotated"})
    other = KMSProvider(name=name + "-other", endpoint="unix:///x.sock", api_version="v2")
    assert is_stale(value, other, kms_key_ids={name + "-other": v["key_id"]})
    assert is_stale(value, local("aesgcm", "k"))


@pytest.mark.parametrize("v", IDENTITY, ids=lambda v: v["id"])
def test_identity_value_is_fresh_only_under_identity(v: dict[str, Any]) -> None:
    value = stored(v)
    assert not is_stale(value, IdentityProvider())
    assert is_stale(value, local("aesgcm", "k"))
    assert is_stale(
        value, KMSProvider(name="kms", endpoint="unix:///x.sock", api_version="v2")
    )


@pytest.mark.parametrize("v", LOCAL, ids=lambda v: v["id"])
def test_judged_against_the_whole_chain_like_the_audit(v: dict[str, Any]) -> None:
    # key "<writer>" writes, a second provider of the same type holds "<writer>:x";
    # a value written with "<writer>:x" must be stale, not taken for "<writer>"'s
    from secretkit.core.formats import prefix_for, secretbox_encrypt

    writer = v["key_name"]
    chain = (local(v["provider"], writer), local(v["provider"], writer + ":x"))
    value = prefix_for(v["provider"], writer + ":x") + secretbox_encrypt(b"\x01" * 32, b"x")
    assert is_stale(value, chain)
    assert not is_stale(stored(v), chain)
