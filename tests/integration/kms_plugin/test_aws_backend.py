"""The plugin against AWS KMS as served by a real ``moto_server``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import grpc
import pytest

from secretkit.sandbox.servers import free_port, start_moto
from tests.fixtures.servers import MotoServer
from tests.integration.kms_plugin.harness import running_plugin, wait_for

pytestmark = pytest.mark.aws


def _env(moto_server: Any) -> dict[str, str]:
    creds = moto_server.credentials
    return {
        "AWS_ACCESS_KEY_ID": creds["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": creds["aws_secret_access_key"],
        "AWS_SESSION_TOKEN": creds["aws_session_token"],
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }


def _alias(tmp_path: Path) -> str:
    return f"alias/k8s-{os.getpid()}-{tmp_path.name[-24:].replace('_', '-')}"


def test_round_trip_and_alias_switch(moto_server: Any, tmp_path: Path) -> None:
    kms = moto_server.kms_client()
    key1 = kms.create_key()["KeyMetadata"]["Arn"]
    key2 = kms.create_key()["KeyMetadata"]["Arn"]
    alias = _alias(tmp_path)
    kms.create_alias(AliasName=alias, TargetKeyId=key1)
    config = tmp_path / "plugin.yaml"
    config.write_text(json.dumps({"backend": {
        "type": "aws", "key": alias, "region": moto_server.region,
        "endpoint_url": moto_server.endpoint_url,
        # see an alias switch at once in tests; production keeps the 10 s cache
        "alias_cache_seconds": 0,
    }}))
    args = ["--config", str(config), "--status-ttl", "1"]
    with running_plugin(tmp_path, args, env=_env(moto_server)) as p:
        st = p.status()
        assert (st.healthz, st.key_id) == ("ok", key1)
        seed = os.urandom(32)
        old = p.encrypt(seed)
        assert old.key_id == key1
        assert len(old.ciphertext) < 1024
        assert p.decrypt(old) == seed
        kms.update_alias(AliasName=alias, TargetKeyId=key2)
        wait_for(lambda: p.status().key_id == key2, timeout=15)
        new = p.encrypt(b"n" * 32)
        assert new.key_id == key2
        assert p.decrypt(old) == seed
        assert p.decrypt(new) == b"n" * 32
        # a ciphertext presented under the wrong key_id is refused, not crashed on
        from secretkit._proto.kms.v2 import api_pb2

        bad = api_pb2.DecryptRequest(ciphertext=old.ciphertext[:-1] + b"\x00", key_id=key1)
        with pytest.raises(grpc.RpcError) as info:
            p.v2().Decrypt(bad, timeout=10)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    log = p.log_text()
    assert seed.hex() not in log
    assert moto_server.credentials["aws_secret_access_key"] + '"' not in log


def test_flags_configure_aws(moto_server: Any, tmp_path: Path) -> None:
    kms = moto_server.kms_client()
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    args = ["--backend", "aws", "--aws-key", arn, "--aws-region", moto_server.region,
            "--aws-endpoint-url", moto_server.endpoint_url]
    with running_plugin(tmp_path, args, env=_env(moto_server)) as p:
        assert p.status().key_id == arn
        assert p.decrypt(p.encrypt(b"f" * 32)) == b"f" * 32


def test_moto_killed_and_restarted(tmp_path: Path) -> None:
    """Own throwaway moto: Status turns unhealthy while it is down and recovers after."""
    port = free_port()
    proc, endpoint = start_moto(port, log_path=tmp_path / "moto1.log")
    server = MotoServer(endpoint_url=endpoint, process=proc)
    try:
        kms = server.kms_client()
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/k8s", TargetKeyId=key_id)
        args = ["--backend", "aws", "--aws-key", "alias/k8s", "--aws-region", server.region,
                "--aws-endpoint-url", endpoint, "--status-ttl", "1", "--status-grace", "1"]
        with running_plugin(tmp_path, args, env=_env(server)) as p:
            first = p.status()
            assert first.healthz == "ok"
            proc.stop(10)
            wait_for(lambda: p.status().healthz != "ok", timeout=20, interval=0.3)
            assert p.http("/healthz")[0] == 503
            assert p.http("/livez")[0] == 200
            proc, _ = start_moto(port, log_path=tmp_path / "moto2.log")
            server.process = proc
            # moto is in-memory: a new key behind the same alias, hence a new key_id
            kms = server.kms_client()
            new_key = kms.create_key()["KeyMetadata"]
            kms.create_alias(AliasName="alias/k8s", TargetKeyId=new_key["KeyId"])
            wait_for(lambda: p.status().healthz == "ok", timeout=20, interval=0.3)
            assert p.status().key_id == new_key["Arn"] != first.key_id
            assert p.decrypt(p.encrypt(b"r" * 32)) == b"r" * 32
    finally:
        proc.stop(10)
