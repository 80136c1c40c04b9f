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
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from secretkit.errors import SecretkitError, UsageError


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
# Every YAML file secretkit reads (plugin config, backends files, static-pod
# manifests, EncryptionConfigurations) may hold key material or tokens, so syntax
# errors are reported by position and kind only. PyYAML's own ``str(exc)`` quotes the
# offending source line, and some of its problem texts quote document content (an
# unknown tag such as ``!Passw0rd`` is the value an operator forgot to quote): those
# fragments are redacted, only single characters and token names are kept.

#: a quoted fragment in a PyYAML problem text (repr of document content)
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
#: fragments that cannot carry a secret: one (possibly escaped) character, a token name
_HARMLESS = re.compile(r"^.$|^\\(?:[abfnrtv0\\'\"]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})$|^<[a-z ]+>$")


class YAMLSyntaxError(ValueError):
    """A YAML document could not be parsed; the message holds no document content.

    ``problem`` says what is wrong, ``line`` and ``column`` (1-based, None when
    unknown) where. ``str()`` is ``"problem (line L, column C)"``.
    """

    def __init__(self, problem: str, line: int | None = None, column: int | None = None) -> None:
        self.problem = problem
        self.line = line
        self.column = column
        position = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{problem}{position}")

    def at(self, source: str) -> str:
        """``source:line:column`` (just ``source`` when the position is unknown)."""
        if self.line is None:
            return source
        return f"{source}:{self.line}:{self.column}"


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping repeats a key (raised only by :class:`_UniqueKeyLoader`)."""


#: the problem text for a value its tag's constructor rejects; PyYAML's own
#: exceptions there are plain ValueError/KeyError/... whose text quotes the value
_BAD_VALUE = "a value does not fit its tag/type"


class _ValueError(yaml.constructor.ConstructorError):
    """A constructor rejected a value; carries its position and nothing of its text."""


#: what PyYAML's value constructors raise besides YAMLError (``!!int x``, ``!!bool x``,
#: ``2020-13-01``, ``!!timestamp x``, ...); all of them may quote the value
_CONSTRUCTOR_FAILURES = (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError)


class _SafeLoader(yaml.SafeLoader):
    """The safe loader, with constructor failures turned into content-free YAML errors."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """Construct ``node``; a constructor's own exception becomes :class:`_ValueError`.

        The innermost node that fails is reported, so the position is the value's.
        """
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except _CONSTRUCTOR_FAILURES:
            pass
        # raised outside the except block so the original (which quotes the value)
        # is neither chained nor kept as __context__
        raise _ValueError(None, None, _BAD_VALUE, node.start_mark)


class _UniqueKeyLoader(_SafeLoader):
    """A safe loader that rejects duplicate mapping keys, as the apiserver's strict decoder does."""


#: a repeated key longer than this is shortened in the message: a document
#: fragment in an error should stay short, even a key
_KEY_SHOWN = 20


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not _hashable(key):
            # SafeLoader reports this as a ConstructorError too; a bare dict lookup
            # would raise TypeError
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found unhashable key",
                key_node.start_mark,
            )
        if key in result:
            shown = str(key)
            if len(shown) > _KEY_SHOWN:
                shown = shown[:_KEY_SHOWN] + "\u2026"
            raise _DuplicateKeyError(None, None, f"duplicate field {shown!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _hashable(value: object) -> bool:
    # isinstance(value, Hashable) is True for a tuple that holds a list
    try:
        hash(value)
    except TypeError:
        return False
    return True


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _redact_quoted(problem: str) -> str:
    def replace(match: re.Match[str]) -> str:
        inner = match.group(0)[1:-1]
        return match.group(0) if _HARMLESS.match(inner) else "(redacted)"

    return _QUOTED.sub(replace, problem)


def _syntax_error(exc: yaml.YAMLError, text: str) -> YAMLSyntaxError:
    if isinstance(exc, yaml.reader.ReaderError):
        # a non-printable character: report its code point and position, nothing else
        pos = exc.position
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        return YAMLSyntaxError(f"unacceptable character #x{exc.character:04x}", line, column)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    if isinstance(exc, _DuplicateKeyError):
        # our own message: it names a field, as every other config error does
        problem = problem if len(problem) <= 80 else "duplicate field"
    else:
        problem = _redact_quoted(problem)
    if mark is None:
        return YAMLSyntaxError(problem)
    return YAMLSyntaxError(problem, mark.line + 1, mark.column + 1)


def parse_yaml(data: bytes | str, *, unique_keys: bool = False) -> object:
    """Parse one YAML document with the safe loader.

    ``bytes`` must be UTF-8. With ``unique_keys`` a repeated mapping key is an error.
    Raises :class:`YAMLSyntaxError` (a ``ValueError``) whose message holds no content,
    also for a value its tag's constructor rejects (``!!int <token>``, ``2020-13-01``)
    and for a document nested too deeply; nothing else.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            raise YAMLSyntaxError("not UTF-8 text", line, column) from None
    else:
        text = data
    loader = _UniqueKeyLoader if unique_keys else _SafeLoader
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - both loaders are SafeLoader
    except yaml.YAMLError as exc:
        # not chained: the original's str() quotes the offending line
        raise _syntax_error(exc, text) from None
    except RecursionError:
        # the composer recurses per nesting level ("[" * 5000)
        problem = "the document is nested too deeply"
    except _CONSTRUCTOR_FAILURES:
        # a constructor failure outside _SafeLoader.construct_object (belt and braces)
        problem = _BAD_VALUE
    # raised outside the except block: the original is neither cause nor context
    raise YAMLSyntaxError(problem)


def load_yaml(
    data: bytes | str,
    *,
    source: str,
    what: str,
    error: type[SecretkitError] = UsageError,
    hint: str | None = None,
    unique_keys: bool = False,
) -> object:
    """Parse ``data``; a syntax error becomes ``error("<what> is not valid YAML: ...")``.

    ``source`` names the data (a file path) and becomes ``source:line:column``.
    """
    try:
        return parse_yaml(data, unique_keys=unique_keys)
    except YAMLSyntaxError as exc:
        raise error(
            f"{what} is not valid YAML: {exc.problem}", where=exc.at(source), hint=hint
        ) from None


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
