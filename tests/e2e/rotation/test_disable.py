"""Disabling encryption (for a migration) on the sandbox, with etcd as the oracle."""

from __future__ import annotations

import pytest

from secretkit.core.formats import classify_value
from secretkit.core.formats.model import ValueProvider
from tests.e2e.reencrypt.helpers import stored_values
from tests.e2e.rotation.helpers import create_secrets, metrics_flags, read_secrets, secretkit
from tests.fixtures.sandbox import SandboxFactory

pytestmark = pytest.mark.e2e


def test_disable_decrypts_everything_and_gates_the_prune(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("secretbox", reload_interval=0.5)
    values = create_secrets(sb, 8, prefix="d")
    encrypted_before = stored_values(sb)
    assert {classify_value(v).provider for v in encrypted_before.values()} == {
        ValueProvider.SECRETBOX
    }
    cfg = ["--config", str(sb.config_path), *metrics_flags(sb)]
    run = secretkit("encryption", "disable", "prepare", *cfg, "--resources", "secrets,configmaps")
    assert run.rc == 0, run.output
    run = secretkit("encryption", "disable", "promote", *cfg)
    assert run.rc == 0, run.output
    run = secretkit(
        "encryption", "disable", "reencrypt", *cfg, "--kubeconfig", str(sb.kubeconfig),
        "--endpoints", sb.etcd_endpoint,
    )
    assert run.rc == 0, run.output
    now = {k: v for k, v in stored_values(sb).items() if "/secrets/" in k}
    assert {classify_value(v).provider for v in now.values()} == {ValueProvider.IDENTITY}

    # a lagging apiserver writes d0 encrypted again: dropping secretbox is refused
    key = "/registry/secrets/default/d0"
    with sb.etcd_client() as etcd:
        kv = etcd.get(key.encode())
        assert kv is not None
        assert etcd.compare_and_swap(key.encode(), encrypted_before[key],
                                     mod_revision=kv.mod_revision)
    prune = ["encryption", "disable", "prune", *cfg, "--endpoints", sb.etcd_endpoint]
    refused = secretkit(*prune, "--ignore-history")
    assert refused.rc == 3, refused.output
    assert "secretbox key 'key1' is not in the config" in refused.stderr

    assert secretkit("encryption", "disable", "reencrypt", *cfg, "--kubeconfig",
                     str(sb.kubeconfig), "--endpoints", sb.etcd_endpoint).rc == 0
    with sb.etcd_client() as etcd:
        etcd.compact(etcd.current_revision())
    run = secretkit(*prune)
    assert run.rc == 0, run.output
    import yaml

    rule = yaml.safe_load(sb.config_path.read_text())["resources"][0]
    assert [next(iter(p)) for p in rule["providers"]] == ["identity"]
    assert read_secrets(sb, list(values)) == values
