"""Safe file handling for configs that hold key material.

Writes are atomic (temp file in the same directory, fsync, rename) with mode 0600,
the previous content is kept as a backup, and diffs shown to the operator never
contain a secret: every ``secret:`` value is replaced by its fingerprint.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
import time
from pathlib import Path
from typing import Any

import yaml

from secretkit.core.encryption_config.model import content_hash, key_fingerprint
from secretkit.errors import UsageError
from secretkit.fileio import read_file, write_private

#: a comment's secret-looking token: long runs of base64/hex/URL-safe characters
_COMMENT_TOKEN = re.compile(r"[A-Za-z0-9+/_=-]{16,}")
_SECRET_LINE = re.compile(r"^(?P<lead>\s*(?:-\s*)?secret:\s*)(?P<value>\S+)\s*$")
#: ``secret: |`` or ``secret: >-``: the value follows on more-indented lines
_BLOCK_SECRET = re.compile(r"^\s*(?:-\s*)?[\"']?secret[\"']?:\s*[|>][-+0-9]*\s*(?:#.*)?$")


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically with ``mode`` (default 0600).

    A symlinked config (``enc.yaml -> enc-v3.yaml``, a common way to switch configs)
    is written through to its target, atomically there, and the link is kept: the
    apiserver's ``--encryption-provider-config`` still names the same path.
    """
    path = Path(path)
    target = path.resolve() if path.is_symlink() else path
    write_private(target, data, mode=mode)


def backup(path: Path, label: str) -> Path:
    """Copy ``path`` to ``<path>.bak-<label>-<unix time>`` (0600) and return the copy's path."""
    path = Path(path)
    dest = path.with_name(f"{path.name}.bak-{label}-{int(time.time())}")
    atomic_write(dest, path.read_bytes())
    return dest


def read_config_bytes(path: Path) -> bytes:
    """Read a config file with a clear error when it is missing or unreadable."""
    return read_file(path, what="config file", error=UsageError, hint="check the --config path")


def file_hash(data: bytes) -> str:
    """``sha256:<hex>`` of file content, the form the apiserver's metric reports."""
    return content_hash(data)


def _fingerprint(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = value.encode()
    return key_fingerprint(raw)


def _mask(line: str) -> str:
    match = _SECRET_LINE.match(line.rstrip("\n"))
    if not match:
        return line
    value = match.group("value").strip("'\"")
    return f"{match.group('lead')}<redacted {_fingerprint(value)}>\n"


def _mask_comment(line: str) -> str:
    """Redact secret-looking tokens in a line's ``# comment`` (people paste keys there).

    The ``#`` must start a comment (first character or after a space), so a ``#``
    inside a base64 value is not taken for one.
    """
    stripped = line.lstrip()
    if stripped.startswith("#"):
        start = len(line) - len(stripped)
    else:
        start = line.find(" #")
        if start < 0:
            return line
    return line[:start] + _COMMENT_TOKEN.sub("<redacted>", line[start:])


def _secret_values(data: bytes) -> set[str]:
    """Every ``secret`` value in a YAML/JSON document (empty when it does not parse).

    Not :func:`secretkit.fileio.parse_yaml`: this is best-effort redaction over every
    document in the stream and must never raise (the line regex still masks a file
    that does not parse).
    """
    found: set[str] = set()
    docs: list[Any] = []
    # BaseLoader ignores tags and keeps every scalar as its text: it still reads a
    # document whose value does not fit its tag (``secret: !!int <key>`` in a flow
    # mapping, which the line regex cannot see)
    for loader in (yaml.SafeLoader, yaml.BaseLoader):
        try:
            docs = list(yaml.load_all(data, Loader=loader))
            break
        except Exception:  # noqa: S112
            # PyYAML's constructors raise ValueError, KeyError, TypeError,
            # RecursionError... besides YAMLError; redaction must go on, and
            # logging the exception would quote the value
            continue
    else:
        return found
    stack: list[Any] = docs
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "secret" and isinstance(value, str | int | float) and str(value):
                    found.add(str(value))
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _redact_lines(text: str, secrets_: set[str]) -> list[str]:
    """Mask secrets in every layout YAML allows: plain, quoted, flow, block scalars.

    The ``secret: value`` regex covers the common case even for a document that does
    not parse; values found by parsing catch flow mappings (``{name: k, secret: ...}``),
    JSON and trailing comments; block scalars (``secret: |``) mask their continuation
    lines, where a long value may be split.
    """
    # longest first: a longer value may contain a shorter one; values too short to be a
    # key (an invalid config) would garble the diff and are left to the line regex
    ordered = sorted((v for v in secrets_ if len(v) >= 8), key=len, reverse=True)
    out: list[str] = []
    block_indent: int | None = None
    for line in text.splitlines(True):
        indent = len(line) - len(line.lstrip(" "))
        if block_indent is not None:
            if line.strip() and indent > block_indent:
                out.append(" " * indent + "<redacted>\n")
                continue
            block_indent = None
        if _BLOCK_SECRET.match(line):
            block_indent = indent
            out.append(line)
            continue
        masked = _mask_comment(_mask(line))
        for value in ordered:
            if value in masked:
                masked = masked.replace(value, f"<redacted {_fingerprint(value)}>")
        out.append(masked)
    return out


def redacted_diff(old: bytes, new: bytes, name: str) -> str:
    """A unified diff of two config versions with every secret value redacted."""
    secrets_ = _secret_values(old) | _secret_values(new)
    old_lines = _redact_lines(old.decode("utf-8", "replace"), secrets_)
    new_lines = _redact_lines(new.decode("utf-8", "replace"), secrets_)
    return "".join(
        difflib.unified_diff(
            old_lines, new_lines, fromfile=f"{name} (before)", tofile=f"{name} (after)"
        )
    )
