"""The one private writer (whole or streamed) and the one "private file mode" rule."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretkit.errors import UsageError
from secretkit.fileio import is_private_mode, open_private, write_private


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would leave new files world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize(
    ("mode", "private"),
    [
        (0o600, True),
        (0o400, True),
        (0o700, True),
        (0o000, True),
        (0o640, False),
        (0o604, False),
        (0o610, False),
        (0o601, False),
        (0o620, False),
        (0o602, False),
        (0o644, False),
        (0o777, False),
        # only the permission bits count: file type and set-id bits are not access
        (stat.S_IFREG | 0o600, True),
        (stat.S_IFDIR | 0o700, True),
        (stat.S_IFREG | stat.S_ISUID | 0o600, True),
        (stat.S_IFDIR | 0o755, False),
    ],
)
def test_private_mode_rule(mode: int, private: bool) -> None:
    assert is_private_mode(mode) is private


@pytest.mark.usefixtures("open_umask")
def test_streamed_file_replaces_the_old_one_0600(tmp_path: Path) -> None:
    dest = tmp_path / "snap.db"
    dest.write_bytes(b"old")
    dest.chmod(0o644)
    with open_private(dest) as out:
        for i in range(3):
            out.write(b"chunk%d" % i)
        # nothing replaced while the block runs
        assert dest.read_bytes() == b"old"
    assert dest.read_bytes() == b"chunk0chunk1chunk2"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["snap.db"]


def test_a_failed_block_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    dest = tmp_path / "checkpoint.json"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="stream broke"), open_private(dest) as out:
        out.write(b"half")
        raise RuntimeError("stream broke")
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"]


def test_write_private_is_open_private_with_one_write(tmp_path: Path) -> None:
    dest = tmp_path / "kek"
    write_private(dest, b"k" * 32, mode=0o640)
    assert dest.read_bytes() == b"k" * 32
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640


def test_a_missing_directory_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    dest = tmp_path / "nope" / "snap.db"
    with pytest.raises(UsageError) as info, open_private(dest):
        pytest.fail("the block must not run")
    assert info.value.where == str(dest)


def test_a_write_error_is_a_usage_error_and_nothing_is_left(tmp_path: Path) -> None:
    dest = tmp_path / "snap.db"
    with pytest.raises(UsageError) as info, open_private(dest) as out:
        out.close()  # writing now fails like a full disk would: with an OSError-like error
        os.write(-1, b"x")
    assert "cannot write snap.db" in info.value.what
    assert list(tmp_path.iterdir()) == []
