"""Writing files that may hold key material: atomic, private (0600), durable.

One implementation for every writer (generated configs, KEK files, rotation backups
and state, checkpoints): a temporary file in the same directory is written with mode
0600, fsynced and renamed over the target, then the directory is fsynced so the
rename itself survives a crash. Readers never see a half-written key file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from secretkit.errors import UsageError


def write_private(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Atomically replace ``path`` with ``data``, created with ``mode`` (default 0600)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UsageError(
            f"cannot create a file in {directory} ({exc.strerror})",
            where=str(path),
            hint="check that the directory exists and is writable",
        ) from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
