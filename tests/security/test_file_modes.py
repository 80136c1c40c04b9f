"""Every writer of key material creates 0600 files atomically, whatever the umask.

Each writer runs under umask 000 (the worst an operator's shell can have) over a
target that already exists group/world-readable; the result must be 0600, the old
inode must not be reused (atomic rename, so a reader never sees half a key), and no
temporary file may be left behind.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from secretkit.backends import build_backend
from secretkit.backends.local import write_kek_file
from secretkit.config_files import write_private_file
from secretkit.etcd import EtcdClient
from secretkit.fileio import write_private
from secretkit.reencrypt.checkpoint import Checkpoint, CheckpointFile
from secretkit.rotation.files import atomic_write, backup
from secretkit.rotation.state import RotationState, save_state
from tests.fixtures.servers import EtcdServer, OpenBaoServer
from tests.security import canaries as c


@pytest.fixture()
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


WRITERS: dict[str, Callable[[Path], None]] = {
    "fileio.write_private": lambda p: write_private(p, c.KEY),
    "generate.write_private_file(force)": lambda p: write_private_file(p, c.KEY, force=True),
    "rotation.atomic_write": lambda p: atomic_write(p, c.KEY),
    "backends.write_kek_file(overwrite)": lambda p: (
        write_kek_file(p, kek=c.KEY, overwrite=True), None)[1],
    "rotation.save_state": lambda p: save_state(
        p, RotationState(kind="local-key", resources=["secrets"], provider_type="aesgcm")),
    "reencrypt.CheckpointFile.save": lambda p: CheckpointFile(p).save(
        Checkpoint(fingerprint="f", mode="api")),
}


@pytest.mark.usefixtures("open_umask")
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_writer_replaces_a_loose_file_with_a_private_one(tmp_path: Path, writer: str) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"old content")
    target.chmod(0o666)
    old_inode = target.stat().st_ino
    WRITERS[writer](target)
    assert _mode(target) == 0o600
    assert target.stat().st_ino != old_inode  # renamed into place, not rewritten in place
    assert [p.name for p in tmp_path.iterdir()] == ["target"]  # no temp file left


@pytest.mark.usefixtures("open_umask")
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_writer_creates_a_private_file(tmp_path: Path, writer: str) -> None:
    target = tmp_path / "fresh"
    WRITERS[writer](target)
    assert _mode(target) == 0o600


@pytest.mark.usefixtures("open_umask")
def test_rotation_backup_of_a_loose_config_is_private(tmp_path: Path) -> None:
    config = tmp_path / "enc.yaml"
    config.write_bytes(b"secret: " + c.KEY_B64.encode())
    config.chmod(0o644)
    copy = backup(config, "prepare")
    assert _mode(copy) == 0o600 and copy.read_bytes() == config.read_bytes()


@pytest.mark.etcd
@pytest.mark.usefixtures("open_umask")
def test_etcd_snapshot_is_private(etcd_server: EtcdServer, tmp_path: Path) -> None:
    dest = tmp_path / "snap.db"
    dest.write_bytes(b"old")
    dest.chmod(0o644)
    with EtcdClient(etcd_server.client_config()) as client:
        client.put(b"/registry/secrets/default/x", c.PLAINTEXT)
        client.snapshot(dest)
    assert _mode(dest) == 0o600
    assert c.PLAINTEXT in dest.read_bytes()  # it does hold Secrets: hence 0600
    assert [p.name for p in tmp_path.iterdir()] == ["snap.db"]


@pytest.mark.vault
@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o600, False)])
def test_loose_vault_token_file_is_warned_about(
    openbao_server: OpenBaoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    mode: int, warned: bool,
) -> None:
    openbao_server.create_transit_key("security-modes")
    token_file = tmp_path / "token"
    token_file.write_text(openbao_server.token)
    token_file.chmod(mode)
    backend = build_backend({"type": "vault", "address": openbao_server.address,
                             "key": "security-modes",
                             "auth": {"method": "token", "token_file": str(token_file)}},
                            where="backends.yaml:p")
    try:
        with caplog.at_level(logging.WARNING, logger="secretkit.backends"):
            assert backend.status().key_id.startswith("vault:")
    finally:
        backend.close()
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert ("readable by group or others" in messages) is warned
    assert not c.leaks(messages, openbao_server.token)
