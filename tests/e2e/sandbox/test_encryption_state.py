"""EncryptionState without servers: write refusal after the unhealthy grace, reload rules.

The KMS side is a real gRPC client pointed at a socket nobody serves (so every
Status fails) and the clock is injected, so no test sleeps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from secretkit.sandbox import configs
from secretkit.sandbox.apiserver.encryption import EncryptionOptions, EncryptionState
from secretkit.sandbox.apiserver.status import ApiError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_writes_refused_only_after_the_grace(tmp_path: Path) -> None:
    config = _write(tmp_path / "enc.yaml", configs.encryption_config(
        "kms", kms_endpoint=f"unix://{tmp_path}/nobody.sock"))
    clock = Clock()
    state = EncryptionState(config, options=EncryptionOptions(unhealthy_grace=180), clock=clock)
    try:
        assert not state.kms_healthy
        assert state.kms_error  # names the provider/endpoint, no key material
        clock.now += 179
        state.check_writable("secrets")  # still inside the grace
        clock.now += 2
        with pytest.raises(ApiError) as err:
            state.check_writable("secrets")
        assert err.value.code == 500
        assert "sandbox-kms" in err.value.message and "unhealthy" in err.value.message
        # a resource whose write provider is not kms is never refused
        state.check_writable("pods")
        metrics = state.metrics("test")
        assert "secretkit_sandbox_kms_healthy 0" in metrics
        assert 'provider="sandbox-kms",method="status"' in metrics
    finally:
        state.stop()


def test_reload_keeps_the_old_config_when_the_new_one_fails(tmp_path: Path) -> None:
    config = _write(tmp_path / "enc.yaml", configs.encryption_config("aesgcm"))
    state = EncryptionState(config)
    try:
        first = state.config.hash
        assert state.reload_if_changed() is False  # unchanged file: nothing to do
        _write(config, b"kind: EncryptionConfiguration\nresources: 7\n")
        assert state.reload_if_changed() is False
        assert state.config.hash == first and state.reloads_failure == 1
        # a kms config whose plugin does not answer is refused as well
        _write(config, configs.encryption_config(
            "kms", kms_endpoint=f"unix://{tmp_path}/nobody.sock"))
        assert state.reload_if_changed() is False
        assert state.config.hash == first and state.reloads_failure == 2
        _write(config, configs.encryption_config("secretbox"))
        assert state.reload_if_changed() is True
        assert state.config.hash != first and state.reloads_success == 1
        assert f'hash="{state.config.hash}"' in state.metrics("test")
    finally:
        state.stop()
