"""EncryptionConfiguration files: read one (bounded, content-free errors) or write one.

The core (:mod:`secretkit.core.encryption_config`) only turns bytes into a config and
a config into bytes; reading and writing the files is this adapter's job, through the
one reader and the one private writer of :mod:`secretkit.fileio`.
"""

from __future__ import annotations

from pathlib import Path

from secretkit.core.encryption_config import EncryptionConfig, load_encryption_config
from secretkit.errors import ConfigError, UsageError
from secretkit.fileio import read_file, write_private


def read_config_file(path: Path) -> bytes:
    """Read a config file, turning OS errors into a :class:`ConfigError`."""
    return read_file(path, what="encryption config file", error=ConfigError)


def load_encryption_config_file(path: Path) -> EncryptionConfig:
    """Read and load an EncryptionConfiguration file (see ``load_encryption_config``)."""
    return load_encryption_config(read_config_file(path), source=str(path))


def write_private_file(path: Path, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically; refuse to overwrite unless ``force``.

    A temporary file in the same directory is written, fsynced and renamed over the
    target, so readers never see a half-written key file.
    """
    if path.exists() and not force:
        raise UsageError(
            "file exists; refusing to overwrite a config that may hold the only copy of a key",
            where=str(path),
            hint="pass --force to replace it, or choose another path",
        )
    write_private(path, data)
