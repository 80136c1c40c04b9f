"""Staged edits of EncryptionConfiguration documents."""

from __future__ import annotations

import copy

import pytest

from secretkit.errors import ConfigError
from secretkit.rotation import config_edit


def _doc() -> dict:
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [
            {
                "resources": ["secrets"],
                "providers": [
                    {"aesgcm": {"keys": [{"name": "k1", "secret": "AAAA"}]}},
                    {"identity": {}},
                ],
            },
            {"resources": ["configmaps"], "providers": [{"identity": {}}]},
        ],
    }


def test_add_read_key_appends_last_and_does_not_mutate_input() -> None:
    doc = _doc()
    before = copy.deepcopy(doc)
    new = config_edit.add_read_key(doc, ["secrets"], "aesgcm", "k2", "BBBB")
    assert doc == before
    keys = new["resources"][0]["providers"][0]["aesgcm"]["keys"]
    assert [k["name"] for k in keys] == ["k1", "k2"]
    # the configmaps rule is untouched
    assert new["resources"][1] == before["resources"][1]


def test_add_read_key_refuses_duplicate_name() -> None:
    with pytest.raises(ConfigError, match="already exists"):
        config_edit.add_read_key(_doc(), ["secrets"], "aesgcm", "k1", "BBBB")


def test_promote_moves_key_first() -> None:
    doc = config_edit.add_read_key(_doc(), ["secrets"], "aesgcm", "k2", "BBBB")
    new = config_edit.promote_key(doc, ["secrets"], "aesgcm", "k2")
    assert config_edit.key_names(new, ["secrets"], "aesgcm") == ["k2", "k1"]


def test_promote_unknown_key_explains_prepare() -> None:
    with pytest.raises(ConfigError) as info:
        config_edit.promote_key(_doc(), ["secrets"], "aesgcm", "nope")
    assert "prepare" in (info.value.hint or "")


def test_remove_keys_keeps_new_key() -> None:
    doc = config_edit.add_read_key(_doc(), ["secrets"], "aesgcm", "k2", "BBBB")
    doc = config_edit.promote_key(doc, ["secrets"], "aesgcm", "k2")
    new = config_edit.remove_keys(doc, ["secrets"], "aesgcm", ["k1"])
    assert config_edit.key_names(new, ["secrets"], "aesgcm") == ["k2"]


def test_enable_flow_identity_to_provider() -> None:
    doc = _doc()
    provider = {"secretbox": {"keys": [{"name": "sb", "secret": "CCCC"}]}}
    doc = config_edit.insert_provider(doc, ["configmaps"], provider, position=1)
    assert [next(iter(p)) for p in doc["resources"][1]["providers"]] == ["identity", "secretbox"]
    doc = config_edit.move_provider_first(doc, ["configmaps"], "secretbox")
    assert config_edit.write_provider_type(doc, ["configmaps"]) == "secretbox"
    doc = config_edit.remove_provider(doc, ["configmaps"], "identity")
    assert [next(iter(p)) for p in doc["resources"][1]["providers"]] == ["secretbox"]


def test_removing_last_provider_is_refused() -> None:
    with pytest.raises(ConfigError, match="without providers"):
        config_edit.remove_provider(_doc(), ["configmaps"], "identity")


def test_unknown_resource_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as info:
        config_edit.key_names(_doc(), ["widgets.example.com"], "aesgcm")
    assert "--resources" in (info.value.hint or "")
