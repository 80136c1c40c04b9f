"""Validator: the apiserver's rules, one problem per violation, with path and hint."""

from __future__ import annotations

import base64

import pytest

from secretkit.core.encryption_config import (
    ConfigProblem,
    EncryptionConfig,
    IdentityProvider,
    Key,
    KMSProvider,
    LocalKeyProvider,
    ProviderType,
    ResourceRule,
    check_encryption_config,
    validate_encryption_config,
)


def _cfg(*rules: ResourceRule) -> EncryptionConfig:
    return EncryptionConfig(rules=rules)


def _rule(*resources: str, providers: tuple[object, ...] = (IdentityProvider(),)) -> ResourceRule:
    return ResourceRule(resources=resources, providers=providers)  # type: ignore[arg-type]


def _messages(problems: list[ConfigProblem]) -> dict[str, str]:
    return {p.path: p.message for p in problems}


def test_a_good_config_has_no_problems() -> None:
    aes = LocalKeyProvider(ProviderType.AESGCM, (Key("k1", b"x" * 32), Key("k2", b"y" * 16)))
    kms = KMSProvider("prod", "unix:///run/kms.sock", api_version="v2")
    cfg = _cfg(
        _rule("secrets", "configmaps", "deployments.apps", providers=(kms, aes, IdentityProvider()))
    )
    assert validate_encryption_config(cfg) == []


@pytest.mark.parametrize(
    ("resources", "words"),
    [
        (("*",), "use '*.' to encrypt all"),
        (("Secrets",), "capital letters"),
        (("events.events.k8s.io",), "stored using the 'events' API group"),
        (("*.events.k8s.io",), "stored using the 'events' API group"),
        (("ingresses.extensions",), "'extensions' group has been removed"),
        (("secrets.*",), "across groups is not supported"),
        (("serviceipallocations",), "do not have REST API"),
        (("apiserveripinfo",), "do not have REST API"),
        (("servicenodeportallocations",), "do not have REST API"),
    ],
)
def test_bad_resource_names(resources: tuple[str, ...], words: str) -> None:
    problems = validate_encryption_config(_cfg(_rule(*resources)))
    assert any(words in p.message and p.path == "resources[0].resources[0]" for p in problems)
    assert all(p.hint for p in problems)


@pytest.mark.parametrize(
    ("resources", "words"),
    [
        (("secrets", "secrets"), "cannot be specified multiple times"),
        (("secrets", "*."), "overlapping resources"),
        (("*.*", "configmaps"), "overlapping resources"),
        (("deployments.apps", "*.apps"), "overlapping resources"),
    ],
)
def test_duplicates_and_overlaps_in_one_rule(resources: tuple[str, ...], words: str) -> None:
    problems = validate_encryption_config(_cfg(_rule(*resources)))
    assert any(words in p.message and p.path == "resources[0].resources" for p in problems)


def test_no_overlap_between_different_groups() -> None:
    assert validate_encryption_config(_cfg(_rule("*.apps", "secrets", "*.batch"))) == []


def test_a_rule_masked_by_an_earlier_wildcard() -> None:
    cfg = _cfg(_rule("*."), _rule("secrets"), _rule("*.*"), _rule("deployments.apps"))
    problems = validate_encryption_config(cfg)
    msgs = _messages(problems)
    assert msgs["resources[1].resources[0]"] == "resource 'secrets' is masked by earlier rule '*.'"
    assert "masked by earlier rule '*.*'" in msgs["resources[3].resources[0]"]
    # a specific rule before a wildcard is the documented way: not masked
    assert validate_encryption_config(_cfg(_rule("secrets"), _rule("*."), _rule("*.*"))) == []


def test_the_same_resource_in_two_rules_is_allowed_like_upstream() -> None:
    assert validate_encryption_config(_cfg(_rule("secrets"), _rule("secrets"))) == []


@pytest.mark.parametrize(
    ("ptype", "size", "ok"),
    [
        (ProviderType.AESCBC, 16, True),
        (ProviderType.AESCBC, 24, True),
        (ProviderType.AESGCM, 32, True),
        (ProviderType.AESGCM, 31, False),
        (ProviderType.SECRETBOX, 32, True),
        (ProviderType.SECRETBOX, 16, False),
    ],
)
def test_key_sizes(ptype: ProviderType, size: int, ok: bool) -> None:
    cfg = _cfg(_rule("secrets", providers=(LocalKeyProvider(ptype, (Key("k", b"\x01" * size),)),)))
    problems = validate_encryption_config(cfg)
    assert (problems == []) is ok
    if not ok:
        (problem,) = problems
        assert problem.path == f"resources[0].providers[0].{ptype.value}.keys[0].secret"
        assert f"got {size}" in problem.message
        assert "\\x01" not in str(problem) and "REDACTED" in problem.message


def test_key_names_and_secrets_are_mandatory_and_keys_non_empty() -> None:
    cfg = _cfg(
        _rule("secrets", providers=(LocalKeyProvider(ProviderType.AESGCM, (Key("", b""),)),)),
        _rule("configmaps", providers=(LocalKeyProvider(ProviderType.AESCBC, ()),)),
    )
    msgs = _messages(validate_encryption_config(cfg))
    assert "name is a mandatory" in msgs["resources[0].providers[0].aesgcm.keys[0].name"]
    assert "secret is a mandatory" in msgs["resources[0].providers[0].aesgcm.keys[0].secret"]
    assert "at least one keys" in msgs["resources[1].providers[0].aescbc.keys"]


def test_kms_rules() -> None:
    providers = (
        KMSProvider("a:b", "unix:///s.sock", api_version="v2"),
        KMSProvider("dup", "unix:///s.sock", api_version="v2"),
        KMSProvider("dup", "unix:///s.sock", api_version="v2"),
        KMSProvider("", "tcp://127.0.0.1:1", api_version="v2", timeout_seconds=0),
        KMSProvider("c", "unix:///s.sock", api_version="v2", cachesize=10),
        KMSProvider("d", "unix:///s.sock", api_version="v1", cachesize=0),
        KMSProvider("e", "unix:///s.sock", api_version="v3"),
        KMSProvider("f", "unix:", api_version="v2"),
    )
    msgs = _messages(validate_encryption_config(_cfg(_rule("secrets", providers=providers))))
    p = "resources[0].providers"
    assert "must not contain ':'" in msgs[f"{p}[0].kms.name"]
    assert f"{p}[1].kms.name" not in msgs
    assert "duplicate KMS provider name dup" in msgs[f"{p}[2].kms.name"]
    assert "mandatory" in msgs[f"{p}[3].kms.name"]
    assert "positive" in msgs[f"{p}[3].kms.timeout"]
    assert "unsupported scheme 'tcp'" in msgs[f"{p}[3].kms.endpoint"]
    assert "not supported in v2" in msgs[f"{p}[4].kms.cachesize"]
    assert "negative to disable" in msgs[f"{p}[5].kms.cachesize"]
    assert "only v1 and v2" in msgs[f"{p}[6].kms.apiVersion"]
    assert "must be absolute" in msgs[f"{p}[7].kms.endpoint"]


def test_v2_name_unique_across_v1_and_v2_but_v1_duplicates_pass() -> None:
    v1 = KMSProvider("same", "unix:///s.sock", api_version="v1", cachesize=1000)
    v2 = KMSProvider("same", "unix:///s.sock", api_version="v2")
    assert validate_encryption_config(_cfg(_rule("secrets", providers=(v1, v1)))) == []
    problems = validate_encryption_config(_cfg(_rule("secrets", providers=(v1, v2))))
    assert [p.path for p in problems] == ["resources[0].providers[1].kms.name"]


def test_empty_rules_and_providers() -> None:
    assert [p.path for p in validate_encryption_config(_cfg())] == ["resources"]
    problems = validate_encryption_config(_cfg(ResourceRule(resources=(), providers=())))
    assert {p.path for p in problems} == {"resources[0].resources", "resources[0].providers"}


def test_every_problem_is_listed_at_once() -> None:
    secret = base64.b64encode(b"z" * 7).decode()
    data = (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
        "  - resources: ['*', Secrets]\n    providers:\n"
        f"      - aesgcm: {{keys: [{{name: k, secret: {secret}}}]}}\n"
        "      - kms: {apiVersion: v2, name: 'x:y', endpoint: 'http://x'}\n"
        "      - {identity: {}, aescbc: {keys: []}}\n"
    ).encode()
    _, problems = check_encryption_config(data)
    assert len(problems) >= 6, problems
    assert any("more than one provider" in p.message for p in problems)
