"""Which stored values no provider of a chain can read (``--verify``'s undecryptable
verdict), on values written by the real apiserver, and how the summary shows it."""

from __future__ import annotations

from typing import Any

import pytest

from secretkit.core.encryption_config.model import (
    IdentityProvider,
    KMSProvider,
)
from secretkit.core.formats import encode_kmsv1
from secretkit.reencrypt.stale import is_stale, is_unreadable
from secretkit.reencrypt.summary import Summary
from tests.unit.reencrypt.vectors import IDENTITY, KMS, LOCAL, local, stored


def kms(name: str, version: str = "v2") -> KMSProvider:
    return KMSProvider(name=name, endpoint="unix:///x.sock", api_version=version)


@pytest.mark.parametrize("v", LOCAL, ids=lambda v: v["id"])
def test_local_value_under_a_key_absent_from_the_config_is_unreadable(v: dict[str, Any]) -> None:
    value = stored(v)
    # the writing key anywhere in the chain, even demoted: readable (merely stale)
    assert not is_unreadable(value, (local(v["provider"], "new", v["key_name"]),))
    assert not is_unreadable(value, (IdentityProvider(), local(v["provider"], v["key_name"])))
    # the key was removed from the config: nothing reads it, and it is stale too
    # (--only-stale still sends it to the API server, whose error names it)
    chain = (local(v["provider"], "new"), IdentityProvider())
    assert is_unreadable(value, chain)
    assert is_stale(value, chain)
    # same key name under another provider type does not read it either
    other = "aesgcm" if v["provider"] != "aesgcm" else "secretbox"
    assert is_unreadable(value, (local(other, v["key_name"]),))
    # a name that merely extends the writer's ("<writer>:x") is another key
    assert is_unreadable(value, (local(v["provider"], v["key_name"] + ":x"),))


@pytest.mark.parametrize("v", KMS, ids=lambda v: v["id"])
def test_kms_v2_value_needs_its_provider_name_and_api_version(v: dict[str, Any]) -> None:
    value = stored(v)
    name = v["provider_name"]
    assert not is_unreadable(value, (IdentityProvider(), kms(name)))
    assert is_unreadable(value, (kms(name + "-other"), IdentityProvider()))
    assert is_unreadable(value, (kms(name, "v1"),))


def _kms_v1_value(name: str, payload_size: int) -> bytes:
    """A kms v1 value as the apiserver writes it: prefix, 2-byte DEK length, DEK, payload."""
    return f"k8s:enc:kms:v1:{name}:".encode() + encode_kmsv1(bytes(range(32)), bytes(payload_size))


# 30,000 payload bytes: "b:" read as a DEK length (0x623a = 25,146) also fits, so the
# bytes alone cannot tell provider "a" from "a:b"; only the configured names can
@pytest.mark.parametrize("payload_size", [40, 30_000])
def test_kms_v1_provider_names_with_colons_are_matched_by_prefix(payload_size: int) -> None:
    value = _kms_v1_value("a:b", payload_size)
    # its own provider reads it: readable, and not stale when it is the write provider
    assert not is_unreadable(value, (kms("a:b", "v1"),))
    assert not is_stale(value, (kms("a:b", "v1"), IdentityProvider()))
    # behind a provider whose name is a prefix of it: the apiserver tries "a" (its
    # prefix matches), fails, and "a:b" reads it; readable, stale (not written by #0)
    chain = (kms("a", "v1"), kms("a:b", "v1"))
    assert not is_unreadable(value, chain)
    assert is_stale(value, chain)
    # only "a" configured (or "a:b" as kms v2): "a:b" is gone, and so is the value
    assert is_unreadable(value, (kms("a:b", "v2"), IdentityProvider()))
    assert is_unreadable(value, (kms("a:bc", "v1"),))
    # a plain name is unaffected
    plain = _kms_v1_value("a", payload_size)
    assert not is_unreadable(plain, (kms("a:b", "v1"), kms("a", "v1")))
    assert is_stale(plain, (kms("a:b", "v1"), kms("a", "v1")))
    assert not is_stale(plain, (kms("a", "v1"),))


def test_kms_v2_value_whose_encrypted_object_does_not_parse_is_unreadable() -> None:
    v = KMS[0]
    prefix = f"k8s:enc:kms:v2:{v['provider_name']}:".encode()
    assert is_unreadable(prefix + b"\xff\x00not a protobuf", (kms(v["provider_name"]),))


@pytest.mark.parametrize("v", IDENTITY, ids=lambda v: v["id"])
def test_plaintext_needs_an_identity_provider(v: dict[str, Any]) -> None:
    value = stored(v)
    assert not is_unreadable(value, (local("aesgcm", "k"), IdentityProvider()))
    assert is_unreadable(value, (local("aesgcm", "k"),))


def test_bytes_of_no_known_format_are_unreadable() -> None:
    chain = (local("aesgcm", "k"), IdentityProvider())
    assert is_unreadable(b"k8s:enc:rot13:v1:k:abc", chain)


def test_text_summary_lists_undecryptable_keys_apart_from_stale_ones() -> None:
    summary = Summary(mode="etcd", complete=True)
    keys = [f"/registry/secrets/ns/s-{i:02d}" for i in range(25)]
    summary.verify = {
        "checked": 40,
        "stale": 12,
        "stale_examples": [f"secrets:ns/t-{i:02d}" for i in range(10)],
        "undecryptable": 26,
        "undecryptable_keys": keys,
        "undecryptable_keys_dropped": 1,
        "kms_key_ids_checked": [],
        "verdict": "undecryptable",
    }
    text = summary.to_text()
    assert "verify: undecryptable (40 checked, 12 stale, 26 undecryptable)" in text
    assert "UNDECRYPTABLE (data-loss risk" in text
    assert "    /registry/secrets/ns/s-19" in text
    assert "s-20" not in text  # 20 listed, the rest counted
    assert "... and 6 more (use -o json)" in text
    assert "  stale: secrets:ns/t-09" in text
    assert "... and 2 more stale" in text


def test_text_summary_of_a_clean_verify_is_one_line() -> None:
    summary = Summary(mode="api", complete=True)
    summary.verify = {
        "checked": 3,
        "stale": 0,
        "stale_examples": [],
        "undecryptable": 0,
        "undecryptable_keys": [],
        "undecryptable_keys_dropped": 0,
        "kms_key_ids_checked": [],
        "verdict": "ok",
    }
    lines = summary.to_text().splitlines()
    assert lines[-1] == "  verify: ok (3 checked, 0 stale, 0 undecryptable)"
    assert "UNDECRYPTABLE" not in summary.to_text()


def test_a_verify_that_read_nothing_is_not_a_pass() -> None:
    """-n with a namespace that holds nothing, a misspelt name in etcd mode, a wrong
    --etcd-prefix: 0 values checked must not read as "verify: ok"."""
    from secretkit.core.encryption_config import load_encryption_config
    from secretkit.etcd import MemoryEtcd
    from secretkit.kube.discovery import ApiResource
    from secretkit.reencrypt.request import ReencryptRequest, outcome_error
    from secretkit.reencrypt.verify import verify_no_stale

    config = load_encryption_config(
        b"apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
        b"resources: [{resources: [secrets], providers: [{identity: {}}]}]\n")
    secrets = ApiResource(group="", version="v1", resource="secrets", kind="Secret",
                          namespaced=True)
    assert verify_no_stale(MemoryEtcd(), [secrets], config)["verdict"] == "empty"
    summary = Summary(mode="api", complete=True)
    summary.verify = {"checked": 0, "stale": 0, "undecryptable": 0, "verdict": "empty"}
    error = outcome_error(summary, ReencryptRequest())
    assert error is not None and "nothing is proven" in error.what
