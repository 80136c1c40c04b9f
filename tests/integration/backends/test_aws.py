"""AwsKmsBackend against a real moto_server (KMS + STS stand-in)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from secretkit.backends import build_backend
from secretkit.backends.aws import AwsKmsBackend, is_key_arn
from secretkit.errors import (
    BackendError,
    BackendInvalidRequest,
    BackendTimeout,
    BackendUnavailable,
)
from secretkit.sandbox.servers import free_port
from tests.fixtures.servers import MotoServer

pytestmark = pytest.mark.aws


@pytest.fixture(autouse=True)
def _dummy_credentials(monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer) -> None:
    # boto3's default chain must find these and never fall through to IMDS
    for name, value in moto_server.credentials.items():
        monkeypatch.setenv(name.upper(), value)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _new_key(moto: MotoServer) -> str:
    return str(moto.kms_client().create_key(Description="secretkit test")["KeyMetadata"]["Arn"])


def _alias(moto: MotoServer, target: str) -> str:
    alias = f"alias/k8s-{uuid.uuid4().hex[:8]}"
    moto.kms_client().create_alias(AliasName=alias, TargetKeyId=target)
    return alias


def _backend(moto: MotoServer, key: str, **extra: Any) -> AwsKmsBackend:
    definition: dict[str, Any] = {
        "type": "aws",
        "key": key,
        "region": moto.region,
        "endpoint_url": moto.endpoint_url,
        "alias_cache_seconds": 0.001,
    }
    definition.update(extra)
    backend = build_backend(definition, where="test")
    assert isinstance(backend, AwsKmsBackend)
    return backend


def test_round_trip_by_arn(moto_server: MotoServer) -> None:
    arn = _new_key(moto_server)
    backend = _backend(moto_server, arn)
    wrapped = backend.encrypt(b"seed-by-arn")
    assert wrapped.key_id == arn and is_key_arn(arn)
    assert backend.status().key_id == arn and backend.status().healthy
    assert backend.decrypt(wrapped.ciphertext, key_id=wrapped.key_id) == b"seed-by-arn"
    assert b"seed-by-arn" not in wrapped.ciphertext


def test_round_trip_by_alias_reports_the_key_arn(moto_server: MotoServer) -> None:
    arn = _new_key(moto_server)
    backend = _backend(moto_server, _alias(moto_server, arn))
    wrapped = backend.encrypt(b"seed-by-alias")
    assert wrapped.key_id == arn
    assert backend.status().key_id == arn
    assert backend.decrypt(wrapped.ciphertext, key_id=arn) == b"seed-by-alias"


def test_moving_the_alias_changes_key_id_and_old_data_decrypts(moto_server: MotoServer) -> None:
    first, second = _new_key(moto_server), _new_key(moto_server)
    backend = _backend(moto_server, _alias(moto_server, first))
    old = backend.encrypt(b"old-seed")
    assert backend.move_alias(second) == second
    assert backend.status().key_id == second
    new = backend.encrypt(b"new-seed")
    assert new.key_id == second != old.key_id
    assert backend.decrypt(old.ciphertext, key_id=old.key_id) == b"old-seed"
    assert backend.decrypt(new.ciphertext, key_id=new.key_id) == b"new-seed"


def test_alias_moved_elsewhere_is_seen_after_the_cache_ttl(moto_server: MotoServer) -> None:
    first, second = _new_key(moto_server), _new_key(moto_server)
    alias = _alias(moto_server, first)
    backend = _backend(moto_server, alias)
    assert backend.status().key_id == first
    moto_server.kms_client().update_alias(AliasName=alias, TargetKeyId=second)
    assert backend.status().key_id == second


def test_encryption_context_mismatch_fails(moto_server: MotoServer) -> None:
    arn = _new_key(moto_server)
    writer = _backend(moto_server, arn, encryption_context={"cluster": "prod"})
    wrapped = writer.encrypt(b"bound-seed")
    assert writer.decrypt(wrapped.ciphertext, key_id=arn) == b"bound-seed"
    reader = _backend(moto_server, arn, encryption_context={"cluster": "staging"})
    with pytest.raises(BackendInvalidRequest) as err:
        reader.decrypt(wrapped.ciphertext, key_id=arn)
    assert "bound-seed" not in err.value.diagnostics()
    default_reader = _backend(moto_server, arn)
    with pytest.raises(BackendInvalidRequest):
        default_reader.decrypt(wrapped.ciphertext, key_id=arn)


def test_bad_requests_are_invalid(moto_server: MotoServer) -> None:
    arn = _new_key(moto_server)
    backend = _backend(moto_server, arn)
    with pytest.raises(BackendInvalidRequest, match="not an AWS KMS key ARN"):
        backend.decrypt(b"x", key_id="vault:abc:transit:k:v1")
    tampered = bytearray(backend.encrypt(b"seed").ciphertext)
    tampered[-1] ^= 1
    with pytest.raises(BackendInvalidRequest, match="InvalidCiphertext"):
        backend.decrypt(bytes(tampered), key_id=arn)
    missing = _backend(moto_server, "alias/does-not-exist-" + uuid.uuid4().hex[:6])
    with pytest.raises(BackendInvalidRequest, match="NotFoundException"):
        missing.status()


def test_disabled_key_is_unhealthy(moto_server: MotoServer) -> None:
    arn = _new_key(moto_server)
    backend = _backend(moto_server, arn)
    moto_server.kms_client().disable_key(KeyId=arn.split("/")[-1])  # moto: id, not ARN
    status = backend.status()
    assert not status.healthy and "Disabled" in status.detail
    # (real KMS also refuses Encrypt with DisabledException; moto does not model that)


def test_rotate_keeps_the_arn_or_explains(moto_server: MotoServer) -> None:
    arn = _new_key(moto_server)
    backend = _backend(moto_server, arn)
    before = backend.encrypt(b"pre-rotation")
    try:
        assert backend.rotate() == arn
    except BackendError as exc:  # moto may not implement on-demand rotation
        assert exc.hint is not None and "move the alias" in exc.hint
    assert backend.decrypt(before.ciphertext, key_id=arn) == b"pre-rotation"


def test_assume_role_through_sts(moto_server: MotoServer) -> None:
    arn = _new_key(moto_server)
    backend = _backend(
        moto_server,
        arn,
        sts_endpoint_url=moto_server.endpoint_url,
        assume_role={
            "role_arn": "arn:aws:iam::123456789012:role/kms-plugin",
            "external_id": "ext-id-secret",
        },
    )
    wrapped = backend.encrypt(b"assumed-seed")
    assert backend.decrypt(wrapped.ciphertext, key_id=arn) == b"assumed-seed"
    assert "ext-id-secret" not in repr(backend.cfg)


def test_unreachable_endpoint_is_unavailable(moto_server: MotoServer) -> None:
    backend = build_backend(
        {
            "type": "aws",
            "key": "alias/x",
            "region": "us-east-1",
            "endpoint_url": f"http://127.0.0.1:{free_port()}",
            "deadline_seconds": 1.0,
        },
        where="test",
    )
    with pytest.raises((BackendUnavailable, BackendTimeout)):
        backend.encrypt(b"seed")
