"""LocalBackend: the wrap layout against the upstream vectors' fake KMS, KEK files."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from secretkit.backends import (
    BackendKMSService,
    LocalBackend,
    LocalKey,
    read_kek_file,
    write_kek_file,
)
from secretkit.backends.local import default_key_id
from secretkit.errors import BackendError, BackendInvalidRequest, ConfigError

VECTORS = Path(__file__).parents[2] / "data" / "upstream-vectors.json"


def _kms_v2_vectors() -> list[dict[str, Any]]:
    data = json.loads(VECTORS.read_text())
    return [v for v in data if v["provider"] == "kms-v2" and "encrypted_dek_source_b64" in v]


KMS_V2 = _kms_v2_vectors()


def test_there_are_kms_v2_vectors() -> None:
    assert len(KMS_V2) >= 5


@pytest.mark.parametrize("vector", KMS_V2, ids=[v["id"] for v in KMS_V2])
def test_unwraps_every_upstream_kms_v2_dek_source(vector: dict[str, Any]) -> None:
    fake = vector["fake_kms"]
    assert fake["algorithm"] == "AES-256-GCM"
    backend = LocalBackend([LocalKey(base64.b64decode(fake["kek_b64"]), fake["key_id"])])
    annotations = {k: base64.b64decode(v) for k, v in (vector.get("annotations") or {}).items()}
    dek_source = backend.decrypt(
        base64.b64decode(vector["encrypted_dek_source_b64"]),
        key_id=vector["key_id"],
        annotations=annotations,
    )
    assert dek_source == base64.b64decode(vector["dek_source_b64"])
    tampered = bytearray(base64.b64decode(vector["encrypted_dek_source_b64"]))
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(BackendInvalidRequest):
        backend.decrypt(bytes(tampered), key_id=vector["key_id"], annotations=annotations)


def test_round_trip_and_key_selection() -> None:
    old = LocalKey(os.urandom(32))
    new = LocalKey(os.urandom(32), "explicit-new")
    before = LocalBackend([old])
    wrapped_old = before.encrypt(b"seed-1")
    after = LocalBackend([new, old])
    wrapped_new = after.encrypt(b"seed-2")
    assert wrapped_old.key_id == default_key_id(old.kek)
    assert wrapped_old.key_id.startswith("local:sha256:")
    assert wrapped_new.key_id == "explicit-new"
    assert after.status().key_id == "explicit-new"
    assert after.decrypt(wrapped_old.ciphertext, key_id=wrapped_old.key_id) == b"seed-1"
    assert after.decrypt(wrapped_new.ciphertext, key_id="explicit-new") == b"seed-2"
    assert len(wrapped_new.ciphertext) == 12 + len(b"seed-2") + 16


def test_key_id_is_authenticated() -> None:
    kek = os.urandom(32)
    backend = LocalBackend([LocalKey(kek, "a"), LocalKey(kek, "b")])
    wrapped = backend.encrypt(b"seed")
    assert backend.decrypt(wrapped.ciphertext, key_id="a") == b"seed"
    with pytest.raises(BackendInvalidRequest) as err:
        backend.decrypt(wrapped.ciphertext, key_id="b")
    assert "seed" not in str(err.value)


def test_unknown_key_id_and_tampering_are_invalid_requests() -> None:
    backend = LocalBackend([LocalKey(os.urandom(32), "k1")])
    wrapped = backend.encrypt(b"top-secret-seed")
    with pytest.raises(BackendInvalidRequest, match="no local KEK has the key_id 'nope'"):
        backend.decrypt(wrapped.ciphertext, key_id="nope")
    tampered = bytearray(wrapped.ciphertext)
    tampered[-1] ^= 1
    with pytest.raises(BackendInvalidRequest) as err:
        backend.decrypt(bytes(tampered), key_id="k1")
    assert "top-secret-seed" not in err.value.diagnostics()
    with pytest.raises(BackendInvalidRequest, match="too short"):
        backend.decrypt(b"x" * 10, key_id="k1")


def test_bad_keys_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        LocalKey(b"short")
    with pytest.raises(ConfigError, match="at least one"):
        LocalBackend([])
    kek = os.urandom(32)
    with pytest.raises(ConfigError, match="share the key_id"):
        LocalBackend([LocalKey(kek), LocalKey(kek)])


def test_rotate_explains_what_to_do() -> None:
    backend = LocalBackend([LocalKey(os.urandom(32))])
    with pytest.raises(BackendError) as err:
        backend.rotate()
    assert err.value.hint is not None and "new KEK" in err.value.hint


def test_kms_service_adapter() -> None:
    svc = BackendKMSService(LocalBackend([LocalKey(os.urandom(32), "kid")]))
    assert svc.status().healthy and svc.status().key_id == "kid"
    res = svc.encrypt(b"seed", "uid-1")
    assert svc.decrypt(res.ciphertext, "uid-2", res.key_id, res.annotations) == b"seed"


def test_write_kek_file_is_0600_atomic_and_readable(tmp_path: Path) -> None:
    path = tmp_path / "kek.bin"
    key_id = write_kek_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kek = read_kek_file(path)
    assert len(kek) == 32 and key_id == default_key_id(kek)
    assert [p.name for p in tmp_path.iterdir()] == ["kek.bin"]  # no temp file left
    with pytest.raises(ConfigError, match="already exists"):
        write_kek_file(path)
    assert read_kek_file(path) == kek


def test_read_kek_file_accepts_base64_text(tmp_path: Path) -> None:
    kek = os.urandom(32)
    path = tmp_path / "kek.b64"
    path.write_text(base64.b64encode(kek).decode() + "\n")
    path.chmod(0o600)
    assert read_kek_file(path) == kek


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_read_kek_file_refuses_loose_permissions(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "kek.bin"
    path.write_bytes(os.urandom(32))
    path.chmod(mode)
    with pytest.raises(ConfigError) as err:
        read_kek_file(path)
    assert err.value.hint == f"chmod 600 {path}"
    assert err.value.where == str(path)


def test_read_kek_file_wrong_size_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "kek.bin"
    path.write_bytes(b"x" * 31)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="found 31 bytes"):
        read_kek_file(path)
    with pytest.raises(ConfigError, match="not found"):
        read_kek_file(tmp_path / "absent")
