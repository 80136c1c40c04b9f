"""Small file helpers for the sandbox: private atomic writes into its directory."""

from __future__ import annotations

from pathlib import Path

from secretkit import fileio


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 atomically, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fileio.write_private(path, data)
