"""The three data-loss reproductions of a rule shared by Secrets and ConfigMaps.

Followed literally, the old runbooks removed an aesgcm key, the identity fallback, or
old KMS key versions while ConfigMaps still needed them (every gate said OK). Each test
walks the same path on the sandbox (whose rule is ``resources: [secrets, configmaps]``)
and ends with every object readable through the API, or the step refused.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
import yaml

from secretkit.core.formats import classify_value
from secretkit.core.formats.model import ValueProvider
from secretkit.rotation.state import default_state_path, load_state, save_state
from secretkit.sandbox import configs
from tests.e2e.reencrypt.helpers import kms_key_ids, stored_values
from tests.e2e.rotation.helpers import create_secrets, metrics_flags, read_secrets, secretkit
from tests.fixtures.sandbox import Sandbox, SandboxFactory

pytestmark = pytest.mark.e2e


def _create_configmaps(sb: Sandbox, count: int, prefix: str = "cm") -> dict[str, str]:
    from kubernetes import client

    core = sb.core_v1()
    values = {}
    for i in range(count):
        name = f"{prefix}{i}"
        values[name] = f"config-value-{prefix}-{i}"
        core.create_namespaced_config_map(
            "default",
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"v": values[name]}),
        )
    return values


def _read_configmaps(sb: Sandbox, names: list[str]) -> dict[str, str]:
    core = sb.core_v1()
    return {n: core.read_namespaced_config_map(n, "default").data["v"] for n in names}


def _reencrypt_secrets_only(sb: Sandbox) -> None:
    """What the old reencrypt stage did: `secretkit reencrypt --resources secrets`."""
    run = secretkit("reencrypt", "--resources", "secrets", "--kubeconfig", str(sb.kubeconfig),
                    "--no-progress")
    assert run.rc == 0, run.output


def _forge_old_state(sb: Sandbox) -> None:
    """The state file the old code wrote after its secrets-only reencrypt stage."""
    path = default_state_path([sb.config_path])
    state = load_state(path)
    assert state is not None and state.next_stage == "reencrypt"
    state.resources = ["secrets"]
    state.rule_indexes = []
    state.record("reencrypt", state.completed[-1].hashes)
    save_state(path, state)


def _wait_loaded(sb: Sandbox, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    want = hashlib.sha256(sb.config_path.read_bytes()).hexdigest()
    while sb.config_hash() != want and time.monotonic() < deadline:
        time.sleep(0.3)
    assert sb.config_hash() == want


def _compact(sb: Sandbox) -> None:
    with sb.etcd_client() as etcd:
        etcd.compact(etcd.current_revision())


def test_local_key_rotation_never_drops_a_key_configmaps_need(
    sandbox_factory: SandboxFactory,
) -> None:
    sb = sandbox_factory("aesgcm", reload_interval=0.5)
    secrets = create_secrets(sb, 5, prefix="s")
    cms = _create_configmaps(sb, 5)
    cfg = ["--config", str(sb.config_path), *metrics_flags(sb)]
    etcd = ["--endpoints", sb.etcd_endpoint]

    # 1. the runbook's literal first command is refused, naming the other resource
    run = secretkit("rotate", "prepare", *cfg, "--resources", "secrets", "--key-name", "key2")
    assert run.rc == 2 and "configmaps" in run.stderr and "split-rule" in run.stderr, run.output

    # 2. an operator who still gets there (a state file of the old version that only
    #    re-encrypted Secrets): the gate judges the whole keyspace and refuses
    run = secretkit("rotate", "prepare", *cfg, "--resources", "secrets,configmaps",
                    "--key-name", "key2")
    assert run.rc == 0, run.output
    assert secretkit("rotate", "promote", *cfg).rc == 0
    _wait_loaded(sb)
    _reencrypt_secrets_only(sb)
    _forge_old_state(sb)
    _compact(sb)
    run = secretkit("rotate", "prune", *cfg, *etcd)
    assert run.rc == 3, run.output
    assert "refusing to prune" in run.stderr and "/registry/configmaps/default/cm" in run.stderr
    assert "aesgcm key 'key1' is not in the config" in run.stderr
    assert "key1" in sb.config_path.read_text()

    # 3. the reencrypt stage covers the whole rule, then prune passes and says what it proved
    run = secretkit("rotate", "reencrypt", *cfg, *etcd, "--kubeconfig", str(sb.kubeconfig),
                    "--no-progress", "-o", "json")
    assert run.rc == 0, run.output
    proof = run.json()["proof"]
    assert proof["covered"] >= 10 and proof["stale"] == 0
    _compact(sb)
    run = secretkit("rotate", "prune", *cfg, *etcd, "-o", "json")
    assert run.rc == 0, run.output
    gate = run.json()["gate"]
    assert gate["blockers"] == 0 and gate["covered"] >= 10
    _wait_loaded(sb)
    assert read_secrets(sb, list(secrets)) == secrets
    assert _read_configmaps(sb, list(cms)) == cms


def test_enable_never_drops_identity_while_configmaps_are_plaintext(
    sandbox_factory: SandboxFactory,
) -> None:
    sb = sandbox_factory("none", reload_interval=0.5)
    secrets = create_secrets(sb, 4, prefix="s")
    cms = _create_configmaps(sb, 4)
    cfg = ["--config", str(sb.config_path), *metrics_flags(sb)]
    etcd = ["--endpoints", sb.etcd_endpoint]
    run = secretkit("encryption", "enable", "prepare", *cfg, "--resources", "secrets",
                    "--provider", "aescbc")
    assert run.rc == 2 and "configmaps" in run.stderr, run.output

    run = secretkit("encryption", "enable", "prepare", *cfg, "--resources",
                    "secrets,configmaps", "--provider", "aescbc")
    assert run.rc == 0, run.output
    assert secretkit("encryption", "enable", "promote", *cfg).rc == 0
    _wait_loaded(sb)
    _reencrypt_secrets_only(sb)
    _forge_old_state(sb)
    _compact(sb)
    run = secretkit("encryption", "enable", "prune", *cfg, *etcd)
    assert run.rc == 3, run.output
    assert "plaintext value but the config has no identity provider" in run.stderr
    assert "/registry/configmaps/default/cm" in run.stderr
    assert "identity" in sb.config_path.read_text()

    run = secretkit("encryption", "enable", "reencrypt", *cfg, *etcd, "--kubeconfig",
                    str(sb.kubeconfig), "--no-progress")
    assert run.rc == 0, run.output
    _compact(sb)
    run = secretkit("encryption", "enable", "prune", *cfg, *etcd)
    assert run.rc == 0, run.output
    _wait_loaded(sb)
    values = stored_values(sb)
    assert {classify_value(v).provider for v in values.values()} == {ValueProvider.AESCBC}
    assert read_secrets(sb, list(secrets)) == secrets
    assert _read_configmaps(sb, list(cms)) == cms


def test_kms_rotate_retires_old_versions_only_when_nothing_needs_them(
    sandbox_factory: SandboxFactory,
) -> None:
    sb = sandbox_factory("kms")
    secrets = create_secrets(sb, 4, prefix="k")
    cms = _create_configmaps(sb, 4)
    common = [
        "kms", "rotate", "--backends", str(sb.backends_file),
        "--provider", configs.KMS_PROVIDER_NAME, "--kms-socket", sb.plugin_endpoint,
        "--endpoints", sb.etcd_endpoint, "--config", str(sb.config_path),
        "--kubeconfig", str(sb.kubeconfig), "--plugin-timeout", "30", "--refresh-wait", "3",
        "--no-progress",
    ]
    run = secretkit(*common, "--retire-old", "--ignore-history", "-o", "json")
    assert run.rc == 0, run.output
    report: dict[str, Any] = run.json()
    # the whole rule was re-encrypted and proven: configmaps too
    assert report["resources"] == ["secrets", "configmaps"]
    assert report["counts_after"] == {report["new_key_id"]: len(stored_values(sb))}
    assert report["retired_old"] is True and report["gate"]["blockers"] == 0
    assert kms_key_ids(stored_values(sb)) == {report["new_key_id"]}
    assert read_secrets(sb, list(secrets)) == secrets
    assert _read_configmaps(sb, list(cms)) == cms

    # the run's own re-encryption leaves old values in etcd's history: retiring in the
    # same run is refused up front, before the backend is rotated
    before = kms_key_ids(stored_values(sb))
    run = secretkit(*common, "--retire-old", "-o", "json")
    assert run.rc == 2, run.output
    assert "--ignore-history" in run.output and "kms retire" in run.output
    assert kms_key_ids(stored_values(sb)) == before

    # `kms retire` proves the history too: etcd still holds the older revisions
    run = secretkit("kms", "retire", "--backends", str(sb.backends_file),
                    "--provider", configs.KMS_PROVIDER_NAME, "--kms-socket", sb.plugin_endpoint,
                    "--endpoints", sb.etcd_endpoint, "--config", str(sb.config_path),
                    "-o", "json")
    assert run.rc == 3, run.output
    assert "older revision" in run.stderr and "will no longer decrypt" in run.stderr


def test_split_rule_then_rotate_only_secrets(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("aesgcm", reload_interval=0.5)
    secrets = create_secrets(sb, 3, prefix="s")
    cms = _create_configmaps(sb, 3)
    run = secretkit("config", "split-rule", "--config", str(sb.config_path),
                    "--resources", "secrets", "-o", "json")
    assert run.rc == 0, run.output
    rules = yaml.safe_load(sb.config_path.read_text())["resources"]
    assert [r["resources"] for r in rules] == [["secrets"], ["configmaps"]]
    assert rules[0]["providers"] == rules[1]["providers"]
    _wait_loaded(sb)
    cfg = ["--config", str(sb.config_path), *metrics_flags(sb)]
    etcd = ["--endpoints", sb.etcd_endpoint]
    for stage, extra in (
        ("prepare", ["--resources", "secrets", "--key-name", "key2"]),
        ("promote", []),
        ("reencrypt", [*etcd, "--kubeconfig", str(sb.kubeconfig), "--no-progress"]),
    ):
        run = secretkit("rotate", stage, *cfg, *extra)
        assert run.rc == 0, (stage, run.output)
    _compact(sb)
    run = secretkit("rotate", "prune", *cfg, *etcd)
    assert run.rc == 0, run.output
    rules = yaml.safe_load(sb.config_path.read_text())["resources"]
    secret_keys = [k["name"] for k in rules[0]["providers"][0]["aesgcm"]["keys"]]
    cm_keys = [k["name"] for k in rules[1]["providers"][0]["aesgcm"]["keys"]]
    assert secret_keys == ["key2"] and cm_keys == ["key1"]
    _wait_loaded(sb)
    assert read_secrets(sb, list(secrets)) == secrets
    assert _read_configmaps(sb, list(cms)) == cms
