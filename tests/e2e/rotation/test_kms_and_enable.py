"""KMS v2 key rotation through OpenBao, and enabling encryption, on the sandbox."""

from __future__ import annotations

import pytest

from secretkit.core.formats.model import ValueProvider
from secretkit.sandbox import configs
from tests.e2e.reencrypt.helpers import kms_key_ids, stored_values
from tests.e2e.rotation.helpers import create_secrets, metrics_flags, read_secrets, secretkit
from tests.fixtures.sandbox import SandboxFactory

pytestmark = pytest.mark.e2e


def test_kms_rotate_openbao_end_to_end(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("kms")
    values = create_secrets(sb, 10, prefix="k")
    before = kms_key_ids(stored_values(sb))
    assert len(before) == 1
    etcd = ["--endpoints", sb.etcd_endpoint]
    common = [
        "--backends", str(sb.backends_file),
        "--provider", configs.KMS_PROVIDER_NAME,
        "--kms-socket", sb.plugin_endpoint,
    ]
    run = secretkit(
        "kms", "rotate", *common, *etcd,
        "--plugin-timeout", "30", "--refresh-wait", "3", "--retire-old", "-o", "json",
        "--config", str(sb.config_path), "--kubeconfig", str(sb.kubeconfig),
        "--ignore-history",
    )
    assert run.rc == 0, run.output
    report = run.json()
    assert report["old_key_id"] in before
    assert report["new_key_id"] != report["old_key_id"]
    assert report["remaining_old"] == 0 and report["retired_old"] is True
    # etcd is the oracle: only the new key_id is left
    assert kms_key_ids(stored_values(sb)) == {report["new_key_id"]}
    assert read_secrets(sb, list(values)) == values
    # the token never shows
    assert sb.openbao_token not in run.output

    status = secretkit(
        "kms", "status", "--kms-socket", sb.plugin_endpoint,
        "--provider", configs.KMS_PROVIDER_NAME, *etcd, "-o", "json",
    )
    assert status.rc == 0, status.output
    data = status.json()
    assert data["plugin"]["key_id"] == report["new_key_id"]
    assert data["objects_by_key_id"] == {report["new_key_id"]: 10}


def test_enable_kms_encryption_from_plaintext(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("none", reload_interval=0.5)
    values = create_secrets(sb, 8, prefix="p")
    plaintext_before = stored_values(sb)
    assert {v[:4] for v in plaintext_before.values()} == {b"k8s\x00"}  # plaintext today
    cfg = ["--config", str(sb.config_path), *metrics_flags(sb)]
    name = "enable-kms"
    run = secretkit(
        "encryption", "enable", "prepare", *cfg, "--resources", "secrets,configmaps",
        "--provider", "kms", "--kms-name", name, "--kms-endpoint", sb.plugin_endpoint,
    )
    assert run.rc == 0, run.output
    assert secretkit("encryption", "enable", "promote", *cfg).rc == 0

    prune = ["encryption", "enable", "prune", *cfg, "--endpoints", sb.etcd_endpoint]
    run = secretkit(
        "encryption", "enable", "reencrypt", *cfg, "--kubeconfig", str(sb.kubeconfig),
        "--endpoints", sb.etcd_endpoint,
    )
    assert run.rc == 0, run.output
    from secretkit.core.formats import classify_value

    def secrets_now() -> dict[str, bytes]:
        return {k: v for k, v in stored_values(sb).items() if "/secrets/" in k}

    assert {classify_value(v).provider for v in secrets_now().values()} == {ValueProvider.KMS_V2}
    assert {classify_value(v).name for v in secrets_now().values()} == {name}

    # a lagging apiserver (identity still first) writes p0 in plaintext again
    key = "/registry/secrets/default/p0"
    with sb.etcd_client() as etcd_client:
        kv = etcd_client.get(key.encode())
        assert kv is not None
        assert etcd_client.compare_and_swap(
            key.encode(), plaintext_before[key], mod_revision=kv.mod_revision
        )
    refused = secretkit(*prune, "--ignore-history")
    assert refused.rc == 3, refused.output
    assert "plaintext value but the config has no identity provider" in refused.stderr
    assert key in refused.stderr
    run = secretkit(
        "encryption", "enable", "reencrypt", *cfg, "--kubeconfig", str(sb.kubeconfig),
        "--endpoints", sb.etcd_endpoint,
    )
    assert run.rc == 0, run.output
    assert classify_value(secrets_now()[key]).provider is ValueProvider.KMS_V2

    # plaintext lingers in older revisions until compaction: the default gate says so
    refused = secretkit(*prune)
    assert refused.rc == 3 and "older revision" in refused.stderr, refused.output
    with sb.etcd_client() as etcd_client:
        etcd_client.compact(etcd_client.current_revision())
    run = secretkit(*prune)
    assert run.rc == 0, run.output
    assert "identity" not in sb.config_path.read_text().split("secrets")[1].split("configmaps")[0]
    assert read_secrets(sb, list(values)) == values
    for value in values.values():
        assert value not in run.output
