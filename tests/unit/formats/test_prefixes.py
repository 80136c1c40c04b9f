"""Provider prefixes and key-name matching (names may contain ':')."""

from __future__ import annotations

import pytest

from secretkit.core.formats import match_key_name, matching_key_names, prefix_for
from secretkit.errors import ConfigError


@pytest.mark.parametrize(
    ("provider", "name", "prefix"),
    [
        ("aescbc", "k1", b"k8s:enc:aescbc:v1:k1:"),
        ("aesgcm", "gcm:key:3", b"k8s:enc:aesgcm:v1:gcm:key:3:"),
        ("secretbox", "sb", b"k8s:enc:secretbox:v1:sb:"),
        ("kms-v1", "old", b"k8s:enc:kms:v1:old:"),
        ("kms-v2", "kms-prod", b"k8s:enc:kms:v2:kms-prod:"),
        ("identity", "", b""),
    ],
)
def test_prefix_for(provider: str, name: str, prefix: bytes) -> None:
    assert prefix_for(provider, name) == prefix


@pytest.mark.parametrize(
    ("provider", "name"),
    [("kms", "x"), ("aes", "x"), ("aesgcm", ""), ("kms-v2", "a:b"), ("unknown", "x")],
)
def test_prefix_for_rejects(provider: str, name: str) -> None:
    with pytest.raises(ConfigError):
        prefix_for(provider, name)


def test_match_prefers_the_longest_name() -> None:
    names = ["gcm", "gcm:key:3", "other"]
    assert match_key_name(b"gcm:key:3:\x00\x01", names) == "gcm:key:3"
    assert match_key_name(b"gcm:\x00\x01", names) == "gcm"
    assert matching_key_names(b"gcm:key:3:\x00", names) == ["gcm", "gcm:key:3"]


def test_match_needs_the_colon_after_the_name() -> None:
    assert match_key_name(b"gcm-key-10:xx", ["gcm-key-1"]) is None
    assert match_key_name(b"gcm-key-1", ["gcm-key-1"]) is None
    assert match_key_name(b"anything", []) is None
    assert match_key_name(b":xx", [""]) is None


def test_match_accepts_any_iterable_once() -> None:
    assert match_key_name(b"b:x", iter(["a", "b"])) == "b"
