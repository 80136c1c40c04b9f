"""The write probe's pure judgement: the file's writer, the value's writer, the verdict."""

from __future__ import annotations

import base64
import json
import os

import pytest

from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.encryption_config.model import EncryptionConfig
from secretkit.core.formats import encode_encrypted_object, prefix_for
from secretkit.core.formats.model import DEKSourceType, EncryptedObject
from secretkit.core.transformers import build_transformers
from secretkit.errors import DependencyError, ExitCode, KubeError, SafetyError, UsageError
from secretkit.rotation.probe import (
    PROBE_LABEL,
    Writer,
    choose_resource,
    expected_writer,
    is_probe_object,
    mismatch,
    mismatch_message,
    observed_writer,
    probe_chain,
    probe_name,
    probe_object,
)
from secretkit.rotation.probe_run import EndpointResult, ProbeReport

KEY1 = base64.b64encode(b"1" * 32).decode()
KEY2 = base64.b64encode(b"2" * 32).decode()


def _config(
    providers: str, resources: str = "[secrets, configmaps]", extra: str = ""
) -> EncryptionConfig:
    text = (
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n"
        f"  - resources: {resources}\n    providers:\n{providers}{extra}"
    )
    return load_encryption_config(text.encode())


def _aesgcm(*names: str) -> str:
    keys = "".join(
        f"            - name: {n}\n              secret: {KEY1 if i == 0 else KEY2}\n"
        for i, n in enumerate(names)
    )
    return f"      - aesgcm:\n          keys:\n{keys}      - identity: {{}}\n"


KMS = (
    "      - kms:\n          apiVersion: v2\n          name: vault\n"
    "          endpoint: unix:///tmp/kms.sock\n      - identity: {}\n"
)


def _no_kms(provider: object) -> object:
    raise AssertionError("no kms here")


def _written(config: EncryptionConfig, key: str = "/registry/secrets/default/p") -> bytes:
    """A value as the apiserver would write it under ``config`` (real encryption)."""
    return build_transformers(config, _no_kms).for_etcd_key(key).write(  # type: ignore[arg-type]
        b"k8s\x00probe", key
    )


def _kms_v2_value(name: str, key_id: str) -> bytes:
    obj = EncryptedObject(
        encrypted_data=b"\x01" * 40,
        key_id=key_id,
        encrypted_dek_source=b"\x02" * 32,
        encrypted_dek_source_type=DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED,
    )
    return prefix_for("kms-v2", name) + encode_encrypted_object(obj)


# -- the file's writer ---------------------------------------------------------------------


def test_expected_writer_is_the_first_provider_and_first_key() -> None:
    config = _config(_aesgcm("key2", "key1"))
    assert expected_writer(probe_chain(config, "secrets")) == Writer("aesgcm", key_name="key2")
    # a resource no rule names is written by identity
    assert expected_writer(probe_chain(_config(_aesgcm("k"), "[configmaps]"), "secrets")) == (
        Writer("identity")
    )
    assert expected_writer(probe_chain(None, "secrets")) == Writer("identity")


def test_expected_kms_writer_takes_the_plugins_key_id_when_known() -> None:
    chain = probe_chain(_config(KMS), "secrets")
    assert expected_writer(chain) == Writer("kms", api_version="v2", provider_name="vault")
    assert expected_writer(chain, {"vault": "kid-2"}).key_id == "kid-2"
    assert expected_writer(chain, {"other": "x"}).key_id is None


# -- the value's writer --------------------------------------------------------------------


def test_observed_writer_names_the_local_key_that_wrote_a_real_value() -> None:
    old = _config(_aesgcm("key1"))
    new = _config(_aesgcm("key2", "key1"))
    value = _written(old)
    # judged against the new file's chain, the value still names key1
    observed = observed_writer(value, probe_chain(new, "secrets"))
    assert observed == Writer("aesgcm", key_name="key1")
    assert observed_writer(_written(new), probe_chain(new, "secrets")).key_name == "key2"


def test_observed_writer_matches_key_names_with_colons() -> None:
    config = _config(_aesgcm("a:b", "a"))
    assert observed_writer(_written(config), probe_chain(config, "secrets")).key_name == "a:b"


def test_observed_writer_of_plaintext_kms_and_garbage() -> None:
    chain = probe_chain(_config(KMS), "secrets")
    assert observed_writer(b"k8s\x00\n\x02v1", chain) == Writer("identity")
    assert observed_writer(_kms_v2_value("vault", "kid-1"), chain) == Writer(
        "kms", api_version="v2", provider_name="vault", key_id="kid-1"
    )
    assert observed_writer(b"k8s:enc:nonsense", chain).kind == "unknown"


# -- the verdict ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "observed", "reason"),
    [
        (Writer("aesgcm", key_name="k2"), Writer("aesgcm", key_name="k2"), None),
        (Writer("aesgcm", key_name="k2"), Writer("aesgcm", key_name="k1"), "another key"),
        (Writer("aesgcm", key_name="k2"), Writer("aescbc", key_name="k2"), "another provider"),
        (Writer("aesgcm", key_name="k2"), Writer("identity"), "another provider"),
        (Writer("identity"), Writer("identity"), None),
        (Writer("kms", api_version="v2", provider_name="a"),
         Writer("kms", api_version="v2", provider_name="a", key_id="x"), None),
        (Writer("kms", api_version="v2", provider_name="a", key_id="y"),
         Writer("kms", api_version="v2", provider_name="a", key_id="x"), "another kms key_id"),
        (Writer("kms", api_version="v2", provider_name="a"),
         Writer("kms", api_version="v2", provider_name="b", key_id="x"), "another kms provider"),
        (Writer("kms", api_version="v2", provider_name="a"),
         Writer("kms", api_version="v1", provider_name="a"), "another kms provider"),
    ],
)  # fmt: skip
def test_mismatch(expected: Writer, observed: Writer, reason: str | None) -> None:
    assert mismatch(expected, observed) == reason


def test_the_mismatch_message_names_the_endpoint_and_both_writers() -> None:
    text = mismatch_message(
        "https://10.0.0.2:6443",
        Writer("aesgcm", key_name="key2"),
        Writer("aesgcm", key_name="key1"),
    )
    assert text == (
        "apiserver https://10.0.0.2:6443 writes with aesgcm key 'key1'; the file's writer is "
        "aesgcm key 'key2'"
    )
    kms = mismatch_message(
        "https://a:6443",
        Writer("kms", api_version="v2", provider_name="v", key_id="new"),
        Writer("kms", api_version="v2", provider_name="v", key_id="old"),
    )
    assert "key_id 'old'" in kms and "key_id 'new'" in kms and "once a minute" in kms


# -- what gets probed ----------------------------------------------------------------------


def test_choose_resource_follows_the_procedures_rules() -> None:
    two_rules = _config(
        _aesgcm("k"), "[configmaps]",
        extra="  - resources: [secrets]\n    providers:\n      - identity: {}\n",
    )
    assert choose_resource(two_rules) == "secrets"
    assert choose_resource(two_rules, [0]) == "configmaps"  # the configmaps rule only
    assert choose_resource(two_rules, [1]) == "secrets"
    wildcard = _config(_aesgcm("k"), "['*.*']")
    assert choose_resource(wildcard, [0]) == "secrets"
    deployments = _config(_aesgcm("k"), "[deployments.apps]")
    with pytest.raises(UsageError, match="Secrets or ConfigMaps"):
        choose_resource(deployments, [0])


def test_the_probe_object_holds_a_nonce_and_says_what_it_is() -> None:
    name = probe_name(lambda n: b"\xab" * n)
    assert name == "secretkit-write-probe-" + "ab" * 8
    secret = probe_object("secrets", "ns", name, b"\x01" * 16)
    assert secret["kind"] == "Secret" and secret["metadata"]["labels"] == {PROBE_LABEL: "true"}
    assert set(secret["data"]) == {"nonce"}
    assert base64.b64decode(secret["data"]["nonce"]) == (b"\x01" * 16).hex().encode()
    configmap = probe_object("configmaps", "ns", name, os.urandom(16))
    assert configmap["kind"] == "ConfigMap" and set(configmap["data"]) == {"nonce"}
    assert is_probe_object(secret) and is_probe_object(configmap)
    assert not is_probe_object({"metadata": {"name": name}})  # no label: not ours
    assert not is_probe_object({"metadata": {"name": "db", "labels": {PROBE_LABEL: "true"}}})
    with pytest.raises(UsageError):
        probe_object("pods", "ns", name, b"")


# -- the report's outcome -------------------------------------------------------------------


def _report(*results: EndpointResult) -> ProbeReport:
    return ProbeReport("secrets", "default", Writer("aesgcm", key_name="k2"), list(results))


def test_a_mismatch_refuses_before_an_unreachable_endpoint() -> None:
    match = EndpointResult("https://a", "match", "ok")
    wrong = EndpointResult("https://b", "mismatch", "apiserver https://b writes with x")
    down = EndpointResult("https://c", "error", "cannot reach", error=KubeError("cannot reach"))
    assert _report(match).failure() is None and _report(match).exit_code == ExitCode.OK
    error = _report(match, down, wrong).failure()
    assert isinstance(error, SafetyError) and "https://b writes with x" in error.what
    assert _report(match, down, wrong).exit_code == ExitCode.REFUSED
    error = _report(match, down).failure()
    assert isinstance(error, KubeError) and error.exit_code == ExitCode.UNAVAILABLE
    assert error.where == "https://c"
    assert not _report().passed  # no endpoint probed proves nothing
    usage = EndpointResult("https://d", "error", "no ns", error=UsageError("no ns"))
    assert _report(usage).exit_code == ExitCode.USAGE
    untyped = EndpointResult("https://e", "error", "lost")
    assert isinstance(_report(untyped).failure(), DependencyError)


def test_the_report_json_holds_names_only() -> None:
    result = EndpointResult(
        "https://a", "match", "writes with aesgcm key 'k2'", Writer("aesgcm", key_name="k2"),
        "secretkit-write-probe-00", "/registry/secrets/default/secretkit-write-probe-00", 7,
        True,
    )
    doc = _report(result).to_json()
    assert doc["passed"] is True and doc["endpoints"][0]["observed"]["key_name"] == "k2"
    assert KEY1 not in json.dumps(doc) and KEY2 not in json.dumps(doc)
