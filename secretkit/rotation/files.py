"""Safe file handling for configs that hold key material.

Writes are atomic (temp file in the same directory, fsync, rename) with mode 0600,
the previous content is kept as a backup, and diffs shown to the operator never
contain a secret: every ``secret:`` value is replaced by its fingerprint.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import re
import time
from pathlib import Path

from secretkit.errors import UsageError
from secretkit.fileio import write_private

_SECRET_LINE = re.compile(r"^(?P<lead>\s*(?:-\s*)?secret:\s*)(?P<value>\S+)\s*$")


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically with ``mode`` (default 0600)."""
    write_private(path, data, mode=mode)


def backup(path: Path, label: str) -> Path:
    """Copy ``path`` to ``<path>.bak-<label>-<unix time>`` (0600) and return the copy's path."""
    path = Path(path)
    dest = path.with_name(f"{path.name}.bak-{label}-{int(time.time())}")
    atomic_write(dest, path.read_bytes())
    return dest


def read_config_bytes(path: Path) -> bytes:
    """Read a config file with a clear error when it is missing or unreadable."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read {path}: {exc.strerror}", hint="check the --config path"
        ) from exc


def file_hash(data: bytes) -> str:
    """``sha256:<hex>`` of file content, the form the apiserver's metric reports."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _mask(line: str) -> str:
    match = _SECRET_LINE.match(line.rstrip("\n"))
    if not match:
        return line
    value = match.group("value").strip("'\"")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = value.encode()
    fingerprint = "sha256:" + hashlib.sha256(raw).hexdigest()[:16]
    return f"{match.group('lead')}<redacted {fingerprint}>\n"


def redacted_diff(old: bytes, new: bytes, name: str) -> str:
    """A unified diff of two config versions with every secret value redacted."""
    old_lines = [_mask(line) for line in old.decode("utf-8", "replace").splitlines(True)]
    new_lines = [_mask(line) for line in new.decode("utf-8", "replace").splitlines(True)]
    return "".join(
        difflib.unified_diff(
            old_lines, new_lines, fromfile=f"{name} (before)", tofile=f"{name} (after)"
        )
    )
