"""Files that may hold key material: atomic private writes, content-free read errors.

One implementation for every writer (generated configs, KEK files, rotation backups
and state, checkpoints): a temporary file in the same directory is written with mode
0600, fsynced and renamed over the target, then the directory is fsynced so the
rename itself survives a crash. Readers never see a half-written key file.
:func:`open_private` does the same for content written piece by piece, and
:func:`is_private_mode` is the one rule for "only its owner can read this file".

One implementation for every YAML reader too (:func:`read_yaml_file`,
:func:`load_yaml`, :func:`parse_yaml`): errors say what file, where
(``file:line:column``) and what is wrong, and never quote the file's content.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from secretkit.core.yamltext import YAMLSyntaxError, load_yaml, parse_yaml
from secretkit.errors import SecretkitError, UsageError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SECRET_FILE_MAX_BYTES",
    "YAMLSyntaxError",
    "is_private_mode",
    "load_yaml",
    "open_private",
    "parse_yaml",
    "read_file",
    "read_stream",
    "read_text_file",
    "read_yaml_file",
    "write_private",
]


def write_private(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Atomically replace ``path`` with ``data``, created with ``mode`` (default 0600).

    Any failure (missing or read-only directory, full disk, permission denied) is a
    :class:`~secretkit.errors.UsageError` naming the file and the reason; the
    temporary file is removed and the old ``path``, if any, is left untouched.
    """
    with open_private(path, mode=mode) as out:
        out.write(data)


@contextmanager
def open_private(path: Path, *, mode: int = 0o600) -> Iterator[BinaryIO]:
    """A new file that replaces ``path`` atomically when the ``with`` block ends.

    :func:`write_private` for content written piece by piece (an etcd snapshot of
    several GB): a temporary file in ``path``'s directory, created with ``mode``
    (default 0600) and exclusively (never through a file or link someone else made),
    is fsynced and renamed over ``path`` when the block ends without an exception,
    then the directory is fsynced so the rename itself survives a crash. When the
    block raises, the temporary file is removed, ``path`` is left untouched and the
    exception propagates; an ``OSError`` while writing becomes a ``UsageError``
    naming the file, like every failure of this function.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UsageError(
            f"cannot create a file in {directory} ({_reason(exc)})",
            where=str(path),
            hint="check that the directory exists and is writable",
        ) from None
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                os.fchmod(out.fileno(), mode)
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise UsageError(
                f"cannot write {path.name} ({_reason(exc)})",
                where=str(path),
                hint=_write_hint(exc),
            ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise UsageError(
            f"wrote {path.name} but could not make the rename durable ({_reason(exc)})",
            where=str(path),
            hint="check the file system; the new file is in place",
        ) from None


#: permission bits that let someone other than the file's owner read, write or run it
SHARED_BITS = stat.S_IRWXG | stat.S_IRWXO


def is_private_mode(mode: int) -> bool:
    """True when ``mode`` (an ``st_mode``) gives group and others no access at all.

    The one rule for files that hold keys, tokens or etcd data (a KEK file is
    refused, a token file warned about, an EncryptionConfiguration or etcd data
    directory reported otherwise), the way ssh refuses a private key others can read.
    """
    return not mode & SHARED_BITS


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _write_hint(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return "free some space (or raise the quota) and run again; nothing was replaced"
    if exc.errno == errno.EROFS:
        return "the file system is read-only: write somewhere else"
    return "check the directory's permissions and free space; nothing was replaced"


# -- reading ------------------------------------------------------------------------
#
# YAML text is parsed by secretkit.core.yamltext (content-free errors); here files are
# read, bounded, before they are parsed.

#: the largest file any reader takes unless told otherwise: configs, manifests and
#: value files are kilobytes; a device such as /dev/zero must not be read until the
#: kernel kills the process
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
#: token and password files hold one line
SECRET_FILE_MAX_BYTES = 64 * 1024


def _read_error(
    exc: OSError, path: Path, what: str, error: type[SecretkitError], hint: str | None
) -> SecretkitError:
    missing = isinstance(exc, FileNotFoundError)
    reason = "file not found" if missing else _reason(exc)
    default_hint = "check the path" if missing else "check the path and its permissions"
    return error(f"cannot read {what}: {reason}", where=str(path), hint=hint or default_hint)


def _size(limit: int) -> str:
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    if limit % 1024 == 0:
        return f"{limit // 1024} KiB"
    return f"{limit} bytes"


def read_file(
    path: Path,
    *,
    what: str,
    error: type[SecretkitError] = UsageError,
    hint: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """Read the regular file ``path``, at most ``max_bytes``; every failure is ``error``.

    One wording for every file: ``cannot read <what>: <reason>``, ``where`` the
    path. Directories, devices (``/dev/zero``), FIFOs and sockets are refused before
    a byte is read (opened non-blocking, so a FIFO without a writer cannot hang the
    read); a file larger than ``max_bytes`` is refused without reading it all.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _read_error(exc, path, what, error, hint) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise error(
                f"cannot read {what}: {kind}",
                where=str(path),
                hint=hint or "pass a regular file (devices, FIFOs and directories are refused)",
            )
        if st.st_size > max_bytes:
            raise _too_large(path, what, error, max_bytes)
        chunks: list[bytes] = []
        total = 0
        while True:
            # a file that grows while read (or lies about its size) is still capped
            chunk = os.read(fd, min(1024 * 1024, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise _too_large(path, what, error, max_bytes)
        return b"".join(chunks)
    except OSError as exc:
        raise _read_error(exc, path, what, error, hint) from None
    finally:
        os.close(fd)


def _too_large(
    path: Path, what: str, error: type[SecretkitError], max_bytes: int
) -> SecretkitError:
    return error(
        f"cannot read {what}: larger than {_size(max_bytes)}",
        where=str(path),
        hint="is this the right file?",
    )


def read_stream(
    stream: BinaryIO,
    *,
    what: str,
    error: type[SecretkitError] = UsageError,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """Read ``stream`` (stdin) to its end, at most ``max_bytes``, like :func:`read_file`."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(
            f"cannot read {what}: larger than {_size(max_bytes)}",
            where="<stdin>",
            hint="is this the right input?",
        )
    return data


def read_text_file(
    path: Path,
    *,
    what: str,
    error: type[SecretkitError] = UsageError,
    hint: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> str:
    """:func:`read_file`, decoded as UTF-8; binary content is ``error`` (never quoted)."""
    data = read_file(path, what=what, error=error, hint=hint, max_bytes=max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"cannot read {what}: not UTF-8 text (byte {exc.start} on line {line})",
            where=str(path),
            hint=hint or "is this the right file? it looks binary",
        ) from None


def read_yaml_file(
    path: Path,
    *,
    what: str,
    error: type[SecretkitError] = UsageError,
    hint: str | None = None,
    unique_keys: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> object:
    """Read and parse a YAML file; every failure is ``error`` with what, where and a hint.

    ``what`` names the file in messages ("backends file", "manifest"). Syntax errors
    are located as ``path:line:column``; no message ever quotes the file's content.
    ``hint`` replaces the default hints (not the file's own problem).
    """
    data = read_file(path, what=what, error=error, hint=hint, max_bytes=max_bytes)
    return load_yaml(
        data, source=str(path), what=what, error=error, hint=hint, unique_keys=unique_keys
    )
