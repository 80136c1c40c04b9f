"""Loader: upstream's own valid/invalid configs, strictness, defaults, durations."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretkit.config_files import load_encryption_config_file
from secretkit.core.encryption_config import (
    EncryptionConfigInvalid,
    IdentityProvider,
    KMSProvider,
    LocalKeyProvider,
    ProviderType,
    check_encryption_config,
    load_encryption_config,
    parse_duration,
)
from secretkit.errors import ConfigError

DATA = Path(__file__).parents[2] / "data" / "upstream-configs"
VALID = sorted(p for p in (DATA / "valid-configs").rglob("*") if p.suffix in (".yaml", ".json"))
INVALID = sorted(p for p in (DATA / "invalid-configs").rglob("*") if p.suffix in (".yaml", ".json"))


def test_the_upstream_corpus_is_present() -> None:
    assert len(VALID) == 16  # 12 YAML configs + 4 JSON configs (aes/*.json)
    assert len(INVALID) == 6


@pytest.mark.parametrize("path", VALID, ids=lambda p: str(p.relative_to(DATA)))
def test_every_upstream_valid_config_loads(path: Path) -> None:
    cfg = load_encryption_config_file(path)
    assert cfg.rules and all(rule.providers for rule in cfg.rules)
    assert cfg.raw == path.read_bytes()


# what each upstream invalid config must be rejected for: (field path, words in the message)
INVALID_REASONS = {
    "invalid-aes-gcm.yaml": ("resources[0].providers[0].aesgcm.keys", "at least one keys"),
    "invalid-typo.yaml": ("resources[0].providers[3].kms.pandas", "unknown field 'pandas'"),
    "kms/invalid-apiversion.yaml": (
        "resources[0].providers[0].kms.apiVersion",
        "unsupported apiVersion v3",
    ),
    "kms/invalid-config-type.yaml": ("kind", "'EncryptionConfigurations' is registered"),
    "kms/invalid-content.yaml": ("(file)", "is empty"),
    "kms/invalid-gvk.yaml": ("kinds", "unknown field 'kinds'"),
}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: str(p.relative_to(DATA)))
def test_every_upstream_invalid_config_is_rejected_with_a_clear_reason(path: Path) -> None:
    rel = str(path.relative_to(DATA / "invalid-configs"))
    want_path, want_words = INVALID_REASONS[rel]
    with pytest.raises(EncryptionConfigInvalid) as info:
        load_encryption_config_file(path)
    err = info.value
    assert isinstance(err, ConfigError)
    assert any(p.path == want_path and want_words in p.message for p in err.problems), err.problems
    assert want_path in err.diagnostics()


def test_kms_defaults_follow_upstream() -> None:
    cfg = load_encryption_config_file(DATA / "valid-configs" / "kms" / "default-timeout.yaml")
    (provider,) = cfg.rules[0].providers
    assert provider == KMSProvider(
        name="foo",
        endpoint="unix:///tmp/testprovider.sock",
        api_version="v1",
        timeout_seconds=3.0,
        cachesize=1000,
    )
    v2 = load_encryption_config_file(
        DATA / "valid-configs" / "kms" / "multiple-providers-kmsv2.yaml"
    )
    assert all(
        isinstance(p, KMSProvider) and p.cachesize is None and p.timeout_seconds == 15.0
        for p in v2.rules[0].providers
    )


def test_provider_order_types_and_decoded_keys() -> None:
    cfg = load_encryption_config_file(DATA / "valid-configs" / "aes-cbc-first.yaml")
    providers = cfg.rules[0].providers
    assert [p.type for p in providers] == [
        ProviderType.AESCBC,
        ProviderType.KMS,
        ProviderType.KMS,
        ProviderType.IDENTITY,
        ProviderType.SECRETBOX,
        ProviderType.AESGCM,
    ]
    first = providers[0]
    assert isinstance(first, LocalKeyProvider)
    assert [k.name for k in first.keys] == ["key1", "key2"]
    assert first.keys[0].secret == b"secret is secure"
    assert isinstance(providers[3], IdentityProvider)
    kms_v1 = providers[1]
    assert isinstance(kms_v1, KMSProvider)
    assert (kms_v1.cachesize, kms_v1.timeout_seconds) == (10, 5.0)


def test_legacy_kind_loads_and_other_kind_version_pairs_do_not() -> None:
    load_encryption_config_file(DATA / "valid-configs" / "legacy.yaml")
    bad = b"kind: EncryptionConfig\napiVersion: apiserver.config.k8s.io/v1\nresources: []\n"
    _, problems = check_encryption_config(bad)
    assert any(p.path == "kind" for p in problems)


def _config(providers_yaml: str, resources: str = "[secrets]") -> bytes:
    return (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
        f"resources:\n  - resources: {resources}\n    providers:\n{providers_yaml}"
    ).encode()


def test_unknown_field_deep_in_a_key_names_its_path() -> None:
    data = _config(
        "      - aesgcm:\n          keys:\n            - name: k\n"
        "              secrt: c2VjcmV0IGlzIHNlY3VyZQ==\n"
    )
    _, problems = check_encryption_config(data)
    paths = [p.path for p in problems]
    assert "resources[0].providers[0].aesgcm.keys[0].secrt" in paths
    # the missing secret is reported too, at its own path
    assert "resources[0].providers[0].aesgcm.keys[0].secret" in paths


def test_duplicate_fields_are_rejected_in_yaml_and_json() -> None:
    yaml_doc = _config("      - identity: {}\n") + b"kind: EncryptionConfiguration\n"
    _, problems = check_encryption_config(yaml_doc)
    assert problems and "duplicate field 'kind'" in problems[0].message
    json_doc = b'{"kind": "EncryptionConfiguration", "kind": "EncryptionConfiguration"}'
    _, problems = check_encryption_config(json_doc)
    assert problems and "duplicate field" in problems[0].message


def test_bad_base64_is_reported_without_echoing_the_value() -> None:
    data = _config(
        "      - aescbc:\n          keys:\n            - name: k\n"
        "              secret: '!!notbase64!!'\n"
    )
    with pytest.raises(EncryptionConfigInvalid) as info:
        load_encryption_config(data)
    text = info.value.diagnostics()
    assert "base64" in text
    assert "notbase64" not in text
    paths = [p.path for p in info.value.problems]
    # reported once, by the decoder, not again as "mandatory" by the validator
    assert paths.count("resources[0].providers[0].aescbc.keys[0].secret") == 1


def test_wrong_types_are_problems_not_crashes() -> None:
    data = _config(
        "      - kms:\n          name: [a]\n          endpoint: unix:///x.sock\n"
        "          timeout: 3\n          cachesize: yes\n"
    )
    _, problems = check_encryption_config(data)
    messages = {p.path: p.message for p in problems}
    assert "must be a string" in messages["resources[0].providers[0].kms.name"]
    assert "duration string" in messages["resources[0].providers[0].kms.timeout"]
    assert "integer" in messages["resources[0].providers[0].kms.cachesize"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3s", 3.0),
        ("100ms", 0.1),
        ("1m", 60.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        ("-1s", -1.0),
        ("0", 0.0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "3", "s", "3 s", "3sec", "1d"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_config_hash_is_sha256_of_the_raw_bytes() -> None:
    path = DATA / "valid-configs" / "aes" / "aes-gcm.yaml"
    cfg = load_encryption_config_file(path)
    import hashlib

    assert cfg.hash == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_encryption_config_file(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        (b"- a\n- b\n", "(document)", "must be a mapping"),
        (b"kind: [\n", "(file)", "cannot decode"),
        (b"\xff\xfe", "(file)", "UTF-8"),
        (
            b"apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n",
            "resources",
            "at least one resources",
        ),
    ],
)
def test_undecodable_or_empty_documents(data: bytes, path: str, words: str) -> None:
    _, problems = check_encryption_config(data)
    assert any(p.path == path and words in p.message for p in problems), problems
