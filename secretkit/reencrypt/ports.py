"""The shape of the transformer chain the re-encrypt engines use.

``secretkit.core.transformers.TransformerSet`` satisfies it; the engines take it as an
argument so that they can be driven by anything with the same behaviour. etcd is
reached through :mod:`secretkit.etcd.interface` (``EtcdReader``, ``EtcdStore``).
"""

from __future__ import annotations

from typing import Protocol


class ReadOutcome(Protocol):
    """``secretkit.core.transformers.ReadResult``: what a read of a stored value gave."""

    @property
    def plaintext(self) -> bytes:
        """The decrypted object."""
        ...

    @property
    def stale(self) -> bool:
        """True when the current write provider did not write the value."""
        ...


class ValueTransformer(Protocol):
    """``secretkit.core.transformers.ResourceTransformer``: one resource's provider chain."""

    def read(self, value: bytes, etcd_key: str) -> ReadOutcome:
        """Decrypt with the read chain."""
        ...

    def write(self, plaintext: bytes, etcd_key: str) -> bytes:
        """Encrypt with the write provider."""
        ...


class TransformerChain(Protocol):
    """``secretkit.core.transformers.TransformerSet``."""

    def for_etcd_key(self, etcd_key: str, prefix: str = "/registry") -> ValueTransformer:
        """The chain of the resource ``etcd_key`` belongs to."""
        ...

    def refresh_kms(self) -> None:
        """Poll kms v2 Status; draw a new seed when the key_id changed."""
        ...
