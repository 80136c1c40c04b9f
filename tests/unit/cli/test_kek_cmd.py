"""``secretkit kek create``: 0600, atomic, never replaces, prints the key_id."""

from __future__ import annotations

import os
import re
import stat
import threading
from pathlib import Path

import pytest

from secretkit.backends.local import LocalBackend, default_key_id, read_kek_file
from tests.unit.cli.helpers import run_cli


def test_create_writes_a_private_key_and_prints_its_key_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kek-1.bin"
    old_umask = os.umask(0)  # the mode must not depend on the caller's umask
    try:
        run = run_cli(capsys, "kek", "create", str(path))
    finally:
        os.umask(old_umask)
    assert run.code == 0, run.err
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == 32
    kek = path.read_bytes()
    key_id = re.search(r"^key_id: (\S+)$", run.out, re.M)
    assert key_id is not None and key_id.group(1) == default_key_id(kek)
    assert kek.hex() not in run.out + run.err
    # the plugin's local backend loads it and announces the same key_id
    backend = LocalBackend.from_files([(path, None)])
    assert backend.encrypt(b"s" * 32).key_id == key_id.group(1)
    assert read_kek_file(path) == kek
    # nothing left behind next to it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kek-1.bin"]


def test_two_keys_differ(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a.bin", "b.bin"):
        assert run_cli(capsys, "kek", "create", str(tmp_path / name)).code == 0
    assert (tmp_path / "a.bin").read_bytes() != (tmp_path / "b.bin").read_bytes()


@pytest.mark.parametrize("kind", ["file", "symlink", "dangling symlink"])
def test_refuses_to_replace_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "kek.bin"
    target = tmp_path / "old.bin"
    if kind == "file":
        path.write_bytes(b"k" * 32)
    else:
        if kind == "symlink":
            target.write_bytes(b"k" * 32)
        path.symlink_to(target)
    before = path.read_bytes() if kind != "dangling symlink" else None
    run = run_cli(capsys, "kek", "create", str(path))
    assert run.code == 2
    assert "already exists; refusing to replace a key" in run.err
    assert f"where: {path}" in run.err
    assert "Traceback" not in run.err
    if before is not None:
        assert path.read_bytes() == before
    assert not target.exists() or target.read_bytes() == b"k" * 32


def test_losing_a_race_never_replaces(tmp_path: Path) -> None:
    """Eight creators on one path: exactly one wins, the file is the winner's key."""
    from secretkit.cli.kek_cmd import create_kek_file
    from secretkit.errors import UsageError

    path = tmp_path / "kek.bin"
    results: list[str | None] = []
    lock = threading.Lock()
    go = threading.Barrier(8)

    def worker() -> None:
        go.wait()
        try:
            key_id: str | None = create_kek_file(path)
        except UsageError:
            key_id = None
        with lock:
            results.append(key_id)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0] == default_key_id(path.read_bytes())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kek.bin"]


def test_missing_directory_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_cli(capsys, "kek", "create", str(tmp_path / "nope" / "kek.bin"))
    assert run.code == 2
    assert "the directory does not exist" in run.err and "install -d -m 0700" in run.err


def test_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_cli(capsys, "kek", "create", "--help")
    assert run.code == 0
    assert "0600" in run.out and "key_id" in run.out and "secretkit kek create" in run.out
    assert "kek" in run_cli(capsys, "--help").out
