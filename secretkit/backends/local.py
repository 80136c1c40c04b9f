"""A key backend holding its key encryption keys (KEKs) in local files.

Wrap layout (shared with the test vectors' fake KMS)::

    nonce(12) || AES-256-GCM(KEK, nonce, plaintext, AAD = key_id as UTF-8)

The first KEK writes; every KEK decrypts, selected by the request's ``key_id``.
Meant for the sandbox, tests and offline recovery; a production KEK belongs in a
KMS or HSM.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretkit.backends.interface import BackendStatus, KeyBackend, WrapResult
from secretkit.core.encryption_config.model import key_fingerprint
from secretkit.errors import BackendError, BackendInvalidRequest, ConfigError
from secretkit.fileio import is_private_mode, read_file, write_private

KEK_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16


def kek_fingerprint(kek: bytes) -> str:
    """A short, non-reversible identifier of a KEK: ``sha256:`` + 16 hex digits."""
    return key_fingerprint(kek)


def default_key_id(kek: bytes) -> str:
    """The key_id used when none is configured: ``local:sha256:<16 hex>``."""
    return "local:" + kek_fingerprint(kek)


@dataclass(frozen=True)
class LocalKey:
    """One KEK and the key_id it is announced under."""

    kek: bytes = field(repr=False)
    key_id: str = ""

    def __post_init__(self) -> None:
        if len(self.kek) != KEK_SIZE:
            raise ConfigError(
                f"a local KEK must be {KEK_SIZE} bytes, got {len(self.kek)}",
                hint="create one with write_kek_file() (32 random bytes)",
            )
        if not self.key_id:
            object.__setattr__(self, "key_id", default_key_id(self.kek))
        if len(self.key_id.encode()) >= 1024:
            raise ConfigError("a key_id must be shorter than 1 kB (the KMS v2 limit)")


class LocalBackend(KeyBackend):
    """Wraps with the first of one or more local KEKs; unwraps with any of them."""

    kind = "local"

    def __init__(self, keys: Sequence[LocalKey]) -> None:
        if not keys:
            raise ConfigError("a local backend needs at least one KEK")
        by_id: dict[str, LocalKey] = {}
        for key in keys:
            if key.key_id in by_id:
                raise ConfigError(
                    f"two local KEKs share the key_id {key.key_id!r}",
                    hint="give each KEK its own key_id (or drop the duplicate file)",
                )
            by_id[key.key_id] = key
        self._write = keys[0]
        self._by_id = by_id
        self._aead = {kid: AESGCM(k.kek) for kid, k in by_id.items()}

    @classmethod
    def from_files(cls, entries: Sequence[tuple[Path, str | None]]) -> LocalBackend:
        """Build from ``(kek_file, key_id or None)`` pairs; the first one writes."""
        return cls([LocalKey(read_kek_file(p), kid or "") for p, kid in entries])

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key_id this backend can decrypt, the write key first."""
        return tuple(self._by_id)

    def _encrypt(self, plaintext: bytes, *, uid: str) -> WrapResult:
        key_id = self._write.key_id
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._aead[key_id].encrypt(nonce, plaintext, key_id.encode())
        return WrapResult(ciphertext=nonce + sealed, key_id=key_id)

    def _decrypt(
        self, ciphertext: bytes, *, key_id: str, annotations: Mapping[str, bytes], uid: str
    ) -> bytes:
        aead = self._aead.get(key_id)
        if aead is None:
            raise BackendInvalidRequest(
                f"no local KEK has the key_id {key_id!r}",
                hint="add the KEK file that wrote this value to the backend's keys "
                f"(known key_ids: {', '.join(self._by_id)})",
            )
        if len(ciphertext) < NONCE_SIZE + TAG_SIZE:
            raise BackendInvalidRequest(
                f"wrapped key is too short ({len(ciphertext)} bytes) for key_id {key_id!r}"
            )
        try:
            return aead.decrypt(ciphertext[:NONCE_SIZE], ciphertext[NONCE_SIZE:], key_id.encode())
        except InvalidTag:
            raise BackendInvalidRequest(
                f"wrapped key does not authenticate under the local KEK {key_id!r}",
                hint="the data was written by another KEK with the same key_id, or was modified",
            ) from None

    def _status(self) -> BackendStatus:
        return BackendStatus(key_id=self._write.key_id, healthy=True)

    def rotate(self) -> str:
        """Local KEKs cannot rotate themselves: the new KEK must be a new file."""
        raise BackendError(
            "the local backend cannot rotate its KEK in place",
            hint="write a new KEK with write_kek_file(), list it FIRST under `keys:` in the "
            "backends file (keep the old one below it so old data still decrypts), restart "
            "the plugin, then re-encrypt",
        )


def read_kek_file(path: Path) -> bytes:
    """Read a KEK: 32 raw bytes, or base64 text of 32 bytes.

    Refuses files readable by group or others, the way ssh refuses loose keys.
    """
    where = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError("KEK file not found", where=where) from None
    except OSError as exc:
        raise ConfigError(f"cannot stat KEK file ({exc.strerror})", where=where) from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError("KEK path is not a regular file", where=where)
    if not is_private_mode(st.st_mode):
        raise ConfigError(
            f"KEK file is readable or writable by group/others (mode {stat.S_IMODE(st.st_mode):o})",
            where=where,
            hint=f"chmod 600 {path}",
        )
    data = read_file(path, what="the KEK file", error=ConfigError, max_bytes=4096)
    if len(data) == KEK_SIZE:
        return data
    try:
        decoded = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == KEK_SIZE:
        return decoded
    raise ConfigError(
        f"KEK file must hold {KEK_SIZE} raw bytes or base64 text of {KEK_SIZE} bytes "
        f"(found {len(data)} bytes)",
        where=where,
        hint="create one with write_kek_file() or `head -c 32 /dev/urandom > FILE; chmod 600 FILE`",
    )


def write_kek_file(path: Path, *, kek: bytes | None = None, overwrite: bool = False) -> str:
    """Write a fresh (or the given) 32-byte KEK to ``path`` as raw bytes, mode 0600.

    Atomic: a temporary file in the same directory is written, fsynced and renamed.
    Returns the default key_id of the KEK (its fingerprint, never the key).
    """
    if kek is None:
        kek = os.urandom(KEK_SIZE)
    if len(kek) != KEK_SIZE:
        raise ConfigError(f"a local KEK must be {KEK_SIZE} bytes", where=str(path))
    if path.exists() and not overwrite:
        raise ConfigError(
            "KEK file already exists; refusing to replace a key",
            where=str(path),
            hint="choose a new file name (old data needs the old KEK)",
        )
    write_private(path, kek)
    return default_key_id(kek)
