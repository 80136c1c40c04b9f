"""KMS v2 rotation with AWS KMS (moto_server): move the alias, re-encrypt in etcd, prove."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.formats import encode_unknown
from secretkit.core.transformers import build_transformers
from secretkit.etcd import EtcdClient
from secretkit.kmsapi import GrpcKMSService
from tests.e2e.rotation.helpers import secretkit
from tests.fixtures.servers import EtcdServer, MotoServer
from tests.integration.kms_plugin.harness import running_plugin

pytestmark = [pytest.mark.e2e, pytest.mark.aws, pytest.mark.etcd]

PROVIDER = "aws-kms"


def test_kms_rotate_by_moving_the_alias(
    moto_server: MotoServer,
    etcd_server: EtcdServer,
    etcd_client: EtcdClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kms = moto_server.kms_client()
    key1 = kms.create_key(Description="etcd kek 1")["KeyMetadata"]["Arn"]
    key2 = kms.create_key(Description="etcd kek 2")["KeyMetadata"]["Arn"]
    alias = f"alias/k8s-{tmp_path.name[-8:]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key1)
    creds = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }
    for name, value in creds.items():  # for the CLI subprocesses of this test only
        monkeypatch.setenv(name, value)
    backend = {
        "type": "aws",
        "key": alias,
        "region": moto_server.region,
        "endpoint_url": moto_server.endpoint_url,
        "alias_cache_seconds": 0,
    }
    backends_file = tmp_path / "backends.yaml"
    backends_file.write_text(yaml.safe_dump({PROVIDER: backend}))
    plugin_args = [
        "--backend", "aws", "--aws-key", alias, "--aws-region", moto_server.region,
        "--aws-endpoint-url", moto_server.endpoint_url, "--status-ttl", "0.5",
    ]
    with running_plugin(tmp_path / "plugin", plugin_args, env=creds) as plugin:
        config = (
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
            "resources:\n- resources: [secrets]\n  providers:\n"
            f"  - kms: {{apiVersion: v2, name: {PROVIDER}, endpoint: '{plugin.endpoint}'}}\n"
            "  - identity: {}\n"
        )
        config_file = tmp_path / "enc.yaml"
        config_file.write_text(config)
        # write objects exactly as an apiserver would: one seed wrapped by the plugin
        service = GrpcKMSService(plugin.endpoint)
        chain = build_transformers(load_encryption_config(config.encode()), lambda p: service)
        plaintexts = {}
        for i in range(6):
            key = f"/registry/secrets/default/aws-{i}"
            plaintexts[key] = encode_unknown("v1", "Secret", f"payload-{i}".encode())
            etcd_client.put(key.encode(), chain.for_etcd_key(key).write(plaintexts[key], key))
        service.close()

        run = secretkit(
            "kms", "rotate", "--backends", str(backends_file), "--provider", PROVIDER,
            "--kms-socket", plugin.endpoint, "--to-key", key2,
            "--endpoints", etcd_server.endpoint, "--refresh-wait", "0",
            "--plugin-timeout", "30", "-o", "json", "--config", str(config_file),
            "--via", "etcd", "--i-understand-the-apiserver-is-stopped", "--no-progress",
        )
        assert run.rc == 0, run.output
        report = run.json()
        assert report["old_key_id"] == key1 and report["new_key_id"] == key2
        assert report["counts_after"] == {key2: 6}

        # every object still decrypts to the same plaintext (old key stays usable)
        service = GrpcKMSService(plugin.endpoint)
        chain = build_transformers(load_encryption_config(config.encode()), lambda p: service)
        for key, plaintext in plaintexts.items():
            kv = etcd_client.get(key.encode())
            assert kv is not None
            result = chain.for_etcd_key(key).read(kv.value, key)
            assert result.plaintext == plaintext and result.key_id == key2
        service.close()

        # in-place AWS rotation keeps the ARN: refused with an explanation, nothing changed
        refused = secretkit(
            "kms", "rotate", "--backends", str(backends_file), "--provider", PROVIDER,
            "--kms-socket", plugin.endpoint, "--endpoints", etcd_server.endpoint,
            "--refresh-wait", "0", "--config", str(config_file),
        )
        assert refused.rc != 0
        assert "--to-key" in refused.stderr or "alias" in refused.stderr, refused.output
