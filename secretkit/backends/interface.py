"""The key backend interface shared by the KMS plugin, the CLI and the sandbox.

A backend wraps and unwraps small secrets (KMS v2 DEK seeds) with a key encryption
key held elsewhere: AWS KMS, a Vault/OpenBao transit key, or a local KEK file.
The public methods wrap the ``_``-prefixed ones implemented by each adapter and turn
anything unexpected into a :class:`~secretkit.errors.BackendError`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from secretkit.core.kms_service import KMSEncryptResult, KMSStatus
from secretkit.errors import BackendError, SecretkitError


def describe_unexpected(exc: BaseException) -> str:
    """``ExcType at file.py:line`` of where an unexpected exception was raised.

    SDK exception messages can quote request or response data (plaintexts, wrapped
    keys), so neither the message nor the chained exception (printed in ``-vv``
    tracebacks) may travel upward; the type and origin are enough to find the bug.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return type(exc).__name__
    return f"{type(exc).__name__} at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"


@dataclass(frozen=True)
class WrapResult:
    """The outcome of :meth:`KeyBackend.encrypt`."""

    ciphertext: bytes = field(repr=False)
    key_id: str
    annotations: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class BackendStatus:
    """The backend's current write key and its health."""

    key_id: str
    healthy: bool
    detail: str = "ok"


class KeyBackend(abc.ABC):
    """A key encryption key service. Implementations must be thread-safe."""

    #: short kind name used in configs and metrics: ``local``, ``vault``, ``aws``
    kind: str = "abstract"

    def encrypt(self, plaintext: bytes, *, uid: str = "") -> WrapResult:
        """Wrap ``plaintext`` with the current key."""
        try:
            return self._encrypt(plaintext, uid=uid)
        except SecretkitError:
            raise
        except Exception as exc:  # the adapter boundary: never leak SDK types upward
            raise BackendError(
                f"{self.kind} backend encrypt failed ({describe_unexpected(exc)})"
            ) from None

    def decrypt(
        self,
        ciphertext: bytes,
        *,
        key_id: str,
        annotations: Mapping[str, bytes] | None = None,
        uid: str = "",
    ) -> bytes:
        """Unwrap ``ciphertext`` that was written under ``key_id``."""
        try:
            return self._decrypt(ciphertext, key_id=key_id, annotations=annotations or {}, uid=uid)
        except SecretkitError:
            raise
        except Exception as exc:
            raise BackendError(
                f"{self.kind} backend decrypt failed ({describe_unexpected(exc)})"
            ) from None

    def status(self) -> BackendStatus:
        """Return the current key_id (cheap; no round trip required)."""
        try:
            return self._status()
        except SecretkitError:
            raise
        except Exception as exc:
            raise BackendError(
                f"{self.kind} backend status failed ({describe_unexpected(exc)})"
            ) from None

    def rotate(self) -> str:
        """Rotate the backend key (where supported) and return the new key_id."""
        raise BackendError(f"the {self.kind} backend cannot rotate keys itself")

    def move_alias(self, target_key: str) -> str:
        """Point the backend's alias at another key (AWS KMS); return the new key_id."""
        del target_key
        raise BackendError(
            f"the {self.kind} backend cannot switch to another key",
            hint="--to-key is for AWS KMS backends configured with an alias",
        )

    #: True when :meth:`retire_old_versions` is supported (checked before any rotation)
    can_retire: bool = False

    def owns_key_id(self, key_id: str) -> bool:
        """True when ``key_id`` names a version of this backend's key (any version).

        Retirement judges every stored value whose key_id this backend owns, whichever
        kms provider name wrote it. Backends that cannot retire say False.
        """
        del key_id
        return False

    def retire_old_versions(self, keep: str) -> int:
        """Make every key version older than ``keep`` (a key_id) undecryptable.

        Irreversible for the data: callers prove first that no stored value needs a
        version older than ``keep``. Versions newer than ``keep`` (a rotation that
        happened after the proof) stay decryptable. Vault/OpenBao only.
        """
        del keep
        raise BackendError(f"the {self.kind} backend cannot retire old key versions")

    def key_created(self, key_id: str) -> float | None:
        """When the key (version) behind ``key_id`` was created (unix seconds), if known.

        Scheduled rotation compares it with the policy (``--if-older-than``) and exports
        the key's age; backends that cannot tell return None.
        """
        del key_id
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abc.abstractmethod
    def _encrypt(self, plaintext: bytes, *, uid: str) -> WrapResult: ...

    @abc.abstractmethod
    def _decrypt(
        self, ciphertext: bytes, *, key_id: str, annotations: Mapping[str, bytes], uid: str
    ) -> bytes: ...

    @abc.abstractmethod
    def _status(self) -> BackendStatus: ...


class BackendKMSService:
    """Adapt a :class:`KeyBackend` to the :class:`~secretkit.core.kms_service.KMSService` shape.

    Used in-process by the CLI (inspect, audit, offline recovery) where no plugin runs.
    """

    def __init__(self, backend: KeyBackend) -> None:
        self._backend = backend

    def status(self) -> KMSStatus:
        """Report the backend's current key_id as a v2 Status."""
        st = self._backend.status()
        return KMSStatus(version="v2", healthz="ok" if st.healthy else st.detail, key_id=st.key_id)

    def encrypt(self, plaintext: bytes, uid: str) -> KMSEncryptResult:
        """Wrap via the backend."""
        res = self._backend.encrypt(plaintext, uid=uid)
        return KMSEncryptResult(res.ciphertext, res.key_id, dict(res.annotations))

    def decrypt(
        self, ciphertext: bytes, uid: str, key_id: str, annotations: Mapping[str, bytes]
    ) -> bytes:
        """Unwrap via the backend."""
        return self._backend.decrypt(ciphertext, key_id=key_id, annotations=annotations, uid=uid)
