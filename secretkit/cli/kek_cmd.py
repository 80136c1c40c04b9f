"""``secretkit kek``: key encryption key files for the local backend.

``kek create PATH`` writes 32 random bytes, mode 0600, atomically, and never over an
existing file: the bytes are written to a private temporary file next to PATH
(``secretkit.fileio.write_private``) and then hard-linked to PATH, which fails when
PATH already exists, even if another process creates it in the same instant. So a
key that protects data is never replaced, and PATH never holds a partial key.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

import click

from secretkit.backends.local import KEK_SIZE, default_key_id
from secretkit.cli.output import emit_json, output_option, schema_id
from secretkit.errors import UsageError
from secretkit.fileio import write_private

EPILOG = """\b
Examples:
  secretkit kek create /etc/secretkit/kek-1.bin
  secretkit kek create /etc/secretkit/kek-2.bin -o json   # {"path": ..., "key_id": ...}
  secretkit-kms-plugin --backend local --local-kek-file /etc/secretkit/kek-1.bin ...
\b
The key_id printed is what the plugin's Status reports for this KEK
(local:sha256:<16 hex>, a fingerprint: the key cannot be derived from it).
Exit codes: 0 created, 2 PATH exists or cannot be written.
"""


@click.group("kek", context_settings={"help_option_names": ["-h", "--help"]})
def kek() -> None:
    """Key encryption key (KEK) files for the plugin's local backend."""


@kek.command("create", epilog=EPILOG)
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@output_option()
def create(path: Path, output: str) -> None:
    """Create a new 32-byte KEK at PATH (mode 0600) and print its key_id.

    Refuses to replace an existing file: data encrypted under the old key would
    become unreadable. The directory must exist. Only the path and the key_id are
    printed, never the key.
    """
    key_id = create_kek_file(path)
    if output == "json":
        emit_json({"path": str(path), "key_id": key_id}, schema=schema_id("kek.create"))
        return
    click.echo(f"created {path} (0600, {KEK_SIZE} random bytes)")
    click.echo(f"key_id: {key_id}")


def create_kek_file(path: Path) -> str:
    """Create ``path`` holding a fresh KEK without ever replacing a file; return its key_id."""
    where = str(path)
    if os.path.lexists(path):
        raise _exists(where)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(
            "the directory does not exist", where=str(directory),
            hint=f"create it first, e.g. install -d -m 0700 {directory}",
        )
    kek = secrets.token_bytes(KEK_SIZE)
    staging = directory / f".{path.name}.{secrets.token_hex(8)}.new"
    write_private(staging, kek)
    try:
        os.link(staging, path)  # atomic and never replaces: EEXIST if someone won the race
    except FileExistsError:
        raise _exists(where) from None
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EXDEV, errno.ENOTSUP):
            raise UsageError(
                f"cannot create the file here ({exc.strerror})", where=where,
                hint="the filesystem must support hard links (as local disks do)",
            ) from None
        raise UsageError(f"cannot create the file ({exc.strerror})", where=where) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
    _fsync_dir(directory)  # make the new name itself durable
    return default_key_id(kek)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exists(where: str) -> UsageError:
    return UsageError(
        "the file already exists; refusing to replace a key",
        where=where,
        hint="data encrypted under that key would become unreadable: choose a new "
        "file name (e.g. kek-2.bin) and list both files to the plugin during a rotation",
    )
