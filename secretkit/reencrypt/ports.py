"""The shapes of the adapters the re-encrypt engines use (etcd, transformer chain).

``secretkit.etcd.EtcdClient`` and ``secretkit.transformers.TransformerSet`` satisfy
them; the engines take them as arguments so that they can be driven by anything with
the same behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol


class StoredKeyValue(Protocol):
    """One etcd key-value (``secretkit.etcd.KeyValue``)."""

    @property
    def key(self) -> bytes:
        """The etcd key."""
        ...

    @property
    def value(self) -> bytes:
        """The stored bytes."""
        ...

    @property
    def mod_revision(self) -> int:
        """Revision of the last write of this key."""
        ...


class EtcdStore(Protocol):
    """The subset of ``secretkit.etcd.EtcdClient`` re-encryption needs."""

    def get(self, key: bytes, *, revision: int | None = None) -> StoredKeyValue | None:
        """Read one key."""
        ...

    def range_pages(
        self,
        prefix: bytes,
        *,
        revision: int | None = None,
        page_size: int = 1000,
        keys_only: bool = False,
    ) -> Iterator[Sequence[StoredKeyValue]]:
        """Page through ``prefix`` at one pinned revision."""
        ...

    def compare_and_swap(self, key: bytes, value: bytes, *, mod_revision: int) -> bool:
        """Write ``value`` only if the key's mod_revision is still ``mod_revision``."""
        ...


class ReadOutcome(Protocol):
    """``secretkit.transformers.ReadResult``: what a read of a stored value gave."""

    @property
    def plaintext(self) -> bytes:
        """The decrypted object."""
        ...

    @property
    def stale(self) -> bool:
        """True when the current write provider did not write the value."""
        ...


class ValueTransformer(Protocol):
    """``secretkit.transformers.ResourceTransformer``: one resource's provider chain."""

    def read(self, value: bytes, etcd_key: str) -> ReadOutcome:
        """Decrypt with the read chain."""
        ...

    def write(self, plaintext: bytes, etcd_key: str) -> bytes:
        """Encrypt with the write provider."""
        ...


class TransformerChain(Protocol):
    """``secretkit.transformers.TransformerSet``."""

    def for_etcd_key(self, etcd_key: str, prefix: str = "/registry") -> ValueTransformer:
        """The chain of the resource ``etcd_key`` belongs to."""
        ...

    def refresh_kms(self) -> None:
        """Poll kms v2 Status; draw a new seed when the key_id changed."""
        ...
