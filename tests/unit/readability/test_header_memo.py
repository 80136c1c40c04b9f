"""Sharing verdicts by value header never changes a verdict.

``Judge`` keeps the verdict of a readable value per (key owner, value header) and
reuses it for the next value with that header. The oracle is a fresh ``Judge`` per
value (no memo at all), over values the real apiserver code wrote (the upstream
vectors, key names with ':' included), values cut short or extended after their
header, and every combination of the vectors' provider chains as configs, in orders
hypothesis chooses (a shareable header first, then a value the header does not decide).
"""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.encryption_config.model import EncryptionConfig
from secretkit.core.readability import Judge

DATA = Path(__file__).parents[2] / "data"
VECTORS: list[dict[str, Any]] = json.loads((DATA / "upstream-vectors.json").read_text())


def _provider(entry: dict[str, Any]) -> dict[str, Any]:
    kind = entry["type"]
    if kind == "identity":
        return {"identity": {}}
    if kind == "kms":
        return {"kms": {"apiVersion": "v2", "name": entry["name"],
                        "endpoint": f"unix:///run/{entry['name']}.sock"}}
    return {kind: {"keys": entry["keys"]}}


def _chains() -> list[list[dict[str, Any]]]:
    distinct = {json.dumps(v["writer_config"]): v["writer_config"] for v in VECTORS}
    return [[_provider(p) for p in chain] for chain in distinct.values()]


def _configs() -> list[EncryptionConfig]:
    chains = _chains()
    out = []
    for first, second in itertools.product(chains, repeat=2):
        providers: list[dict[str, Any]] = []
        for p in first + second:
            if p not in providers and not (
                "kms" in p and any("kms" in q and q["kms"]["name"] == p["kms"]["name"]
                                   for q in providers)
            ):
                providers.append(p)
        # kms names are unique across a config: the second rule reads locally only
        local_first = [p for p in providers[::-1] if "kms" not in p] or [{"identity": {}}]
        doc = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
               "resources": [{"resources": ["secrets"], "providers": providers},
                             {"resources": ["configmaps"], "providers": local_first}]}
        out.append(load_encryption_config(yaml.safe_dump(doc).encode()))
    return out


CONFIGS = _configs()


def _values() -> list[tuple[bytes, bytes]]:
    out = []
    for v in VECTORS:
        stored = base64.b64decode(v["stored_b64"])
        for key in (v["etcd_key"], v["etcd_key"].replace("/configmaps/", "/secrets/")):
            out.append((key.encode(), stored))
            out.append((key.encode(), stored[: max(len(stored) - 20, 0)]))  # cut short
            out.append((key.encode(), stored + b"trailing"))
    return out


VALUES = _values()


@settings(max_examples=300, deadline=None)
@given(
    config=st.sampled_from(CONFIGS),
    key_ids=st.sampled_from([None, {"kms-prod": "x"}]),
    order=st.lists(st.integers(0, len(VALUES) - 1), min_size=1, max_size=60),
)
def test_a_shared_verdict_is_the_verdict_of_each_value(
    config: EncryptionConfig, key_ids: dict[str, str] | None, order: list[int]
) -> None:
    shared = Judge(config, current_key_ids=key_ids)
    for index in order:
        key, value = VALUES[index]
        alone = Judge(config, current_key_ids=key_ids).judge(key, value)
        assert shared.judge(key, value) == alone, (key, value[:40])


def test_every_config_and_value_once_in_file_order() -> None:
    """The exhaustive version of the property: each config sees every value in order."""
    for config in CONFIGS:
        shared = Judge(config)
        for key, value in VALUES:
            assert shared.judge(key, value) == Judge(config).judge(key, value), key


def test_names_with_colons_are_judged_value_by_value() -> None:
    """Keys 'a' and 'a:b' share the header '...:a:'; neither may lend its verdict."""
    secret = base64.b64encode(b"k" * 32).decode()
    doc = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
           "resources": [{"resources": ["secrets"], "providers": [
               {"aesgcm": {"keys": [{"name": "a:b", "secret": secret},
                                    {"name": "a", "secret": secret}]}}]}]}
    judge = Judge(load_encryption_config(yaml.safe_dump(doc).encode()))
    by_a = judge.judge(b"/registry/secrets/ns/x", b"k8s:enc:aesgcm:v1:a:" + b"n" * 40)
    by_ab = judge.judge(b"/registry/secrets/ns/y", b"k8s:enc:aesgcm:v1:a:b:" + b"n" * 40)
    assert (by_a.verdict.value, by_a.key_name) == ("stale", "a")
    assert (by_ab.verdict.value, by_ab.key_name) == ("current", "a:b")


def test_a_key_of_an_unknown_resource_is_judged_under_every_rule_that_could_own_it() -> None:
    """/registry/widgets/... is in no layout table: its group is unknown. A value the
    guessed core chain reads but a ``*.<group>`` rule's chain does not is at risk."""
    old = base64.b64encode(b"o" * 32).decode()
    new = base64.b64encode(b"n" * 32).decode()
    doc = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
           "resources": [
               {"resources": ["*.example.com"],
                "providers": [{"aesgcm": {"keys": [{"name": "new", "secret": new}]}}]},
               {"resources": ["*.*"],
                "providers": [{"aesgcm": {"keys": [{"name": "old", "secret": old}]}},
                              {"identity": {}}]}]}
    judge = Judge(load_encryption_config(yaml.safe_dump(doc).encode()))
    value = b"k8s:enc:aesgcm:v1:old:" + b"n" * 40
    judged = judge.judge(b"/registry/widgets/ns/w", value)
    assert judged.verdict.value == "unreadable", judged
    # a resource the table knows keeps its one chain
    assert judge.judge(b"/registry/secrets/ns/s", value).readable
