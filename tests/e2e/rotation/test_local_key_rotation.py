"""The local-key rotation runbook end to end on the sandbox, with etcd as the oracle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from secretkit.config_files import load_encryption_config_file
from secretkit.core.formats.model import ValueProvider
from secretkit.core.transformers import build_transformers
from secretkit.rotation.state import default_state_path, load_state
from tests.e2e.rotation.helpers import (
    config_secrets,
    create_secrets,
    key_names_in_etcd,
    metrics_flags,
    read_secrets,
    secretkit,
)
from tests.fixtures.sandbox import SandboxFactory

pytestmark = pytest.mark.e2e


def _no_kms(provider: object) -> Any:
    raise AssertionError("this config has no kms provider")


def test_rotation_with_prune_gate(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("aesgcm", reload_interval=0.5)
    values = create_secrets(sb, 12)
    cfg = ["--config", str(sb.config_path)]
    secrets_seen = list(config_secrets(sb))
    outputs: list[str] = []

    # 1. prepare: a read-only key2 appears after key1
    # the sandbox's rule covers secrets and configmaps: naming only secrets is refused
    run = secretkit("rotate", "prepare", *cfg, "--key-name", "key2", *metrics_flags(sb))
    assert run.rc == 2, run.output
    assert "also covers configmaps" in run.stderr and "split-rule" in run.stderr
    assert not default_state_path([sb.config_path]).exists()
    run = secretkit("rotate", "prepare", *cfg, "--key-name", "key2", *metrics_flags(sb),
                    "--resources", "secrets,configmaps")
    outputs.append(run.output)
    assert run.rc == 0, run.output
    assert "<redacted sha256:" in run.stdout
    doc = yaml.safe_load(sb.config_path.read_text())
    keys = doc["resources"][0]["providers"][0]["aesgcm"]["keys"]
    assert [k["name"] for k in keys] == ["key1", "key2"]
    secrets_seen += config_secrets(sb)
    old_config = next(sb.config_path.parent.glob(f"{sb.config_path.name}.bak-prepare-*"))

    # out of order: refused, nothing changed
    before = sb.config_path.read_bytes()
    run = secretkit("rotate", "prune", *cfg, "--endpoints", sb.etcd_endpoint, "--yes")
    assert run.rc == 3 and "next one is `promote`" in run.stderr, run.output
    assert sb.config_path.read_bytes() == before

    # 2. promote (waits until the stand-in reports the prepared file's hash)
    run = secretkit("rotate", "promote", *cfg, *metrics_flags(sb))
    outputs.append(run.output)
    assert run.rc == 0, run.output
    status = secretkit("rotate", "status", *cfg, "-o", "json").json()
    assert status["next_stage"] == "reencrypt" and status["new_key_name"] == "key2"

    # 3. reencrypt through the API: every Secret now under key2
    run = secretkit(
        "rotate", "reencrypt", *cfg, *metrics_flags(sb), "--kubeconfig", str(sb.kubeconfig),
        "--endpoints", sb.etcd_endpoint,
    )
    outputs.append(run.output)
    assert run.rc == 0, run.output
    names = key_names_in_etcd(sb, ValueProvider.AESGCM, ["key1", "key2"])
    assert set(names.values()) == {"key2"}

    # a lagging apiserver still on the old file writes s0 with key1 after the re-encryption
    old_chain = build_transformers(load_encryption_config_file(old_config), _no_kms)
    new_chain = build_transformers(load_encryption_config_file(sb.config_path), _no_kms)
    key = "/registry/secrets/default/s0"
    with sb.etcd_client() as etcd:
        kv = etcd.get(key.encode())
        assert kv is not None
        plaintext = new_chain.for_etcd_key(key).read(kv.value, key).plaintext
        assert etcd.compare_and_swap(
            key.encode(), old_chain.for_etcd_key(key).write(plaintext, key),
            mod_revision=kv.mod_revision,
        )

    # 4. prune is refused while s0 needs key1 ...
    prune = ["rotate", "prune", *cfg, *metrics_flags(sb), "--endpoints", sb.etcd_endpoint]
    run = secretkit(*prune, "--ignore-history")
    assert run.rc == 3, run.output
    assert "refusing to prune" in run.stderr and key in run.stderr
    assert "key1" in [k["name"] for k in yaml.safe_load(sb.config_path.read_text())[
        "resources"][0]["providers"][0]["aesgcm"]["keys"]]

    # ... re-encrypting again fixes the current revision, older revisions still block ...
    run = secretkit(
        "rotate", "reencrypt", *cfg, *metrics_flags(sb), "--kubeconfig", str(sb.kubeconfig),
        "--endpoints", sb.etcd_endpoint,
    )
    assert run.rc == 0, run.output
    run = secretkit(*prune)
    assert run.rc == 3 and "older revision" in run.stderr, run.output

    # ... and once etcd has compacted them, prune goes through
    with sb.etcd_client() as etcd:
        etcd.compact(etcd.current_revision())
    run = secretkit(*prune, "-o", "json")
    outputs.append(run.output)
    assert run.rc == 0, run.output
    report = run.json()
    assert report["gate"]["blockers"] == 0 and report["gate"]["scanned"] >= 12
    keys = yaml.safe_load(sb.config_path.read_text())["resources"][0]["providers"][0]["aesgcm"]
    assert [k["name"] for k in keys["keys"]] == ["key2"]
    assert load_state(default_state_path([sb.config_path])).next_stage is None  # type: ignore[union-attr]

    # the stand-in (auto-reloaded onto the pruned file) still reads every Secret
    import time

    deadline = time.monotonic() + 30
    while sb.config_hash() not in report["new_hash"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert read_secrets(sb, list(values)) == values

    # nothing secret was ever printed
    for text in outputs:
        for secret in set(secrets_seen):
            assert secret not in text
        for value in values.values():
            assert value not in text


def test_mismatched_node_configs_are_refused(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory("aesgcm")
    node1 = tmp_path / "node1.yaml"
    node2 = tmp_path / "node2.yaml"
    node1.write_bytes(sb.config_path.read_bytes())
    doc = yaml.safe_load(sb.config_path.read_text())
    doc["resources"][0]["providers"][0]["aesgcm"]["keys"][0]["name"] = "drifted"
    node2.write_text(yaml.safe_dump(doc))
    run = secretkit("rotate", "prepare", "--config", str(node1), "--config", str(node2), "--yes")
    assert run.rc == 3, run.output
    assert "differ" in run.stderr and "node2.yaml" in run.stderr
    assert not (tmp_path / "secretkit-rotation.json").exists()
