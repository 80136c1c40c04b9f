"""An in-test KeyBackend: real AES-GCM wrapping, scripted failures and rotation."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretkit.backends.interface import BackendStatus, KeyBackend, WrapResult
from secretkit.errors import BackendInvalidRequest


class ScriptedBackend(KeyBackend):
    """Wraps with AES-GCM under the current key; ``fail_with`` makes every call raise."""

    kind = "scripted"

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {"key-1": os.urandom(32)}
        self.current = "key-1"
        self.fail_with: BaseException | None = None
        self.calls = 0
        self.annotations: dict[str, bytes] = {}
        self.ciphertext_override: bytes | None = None
        self.gate: threading.Event | None = None
        self._lock = threading.Lock()

    def rotate(self) -> str:
        """Add a new key and make it current."""
        new = f"key-{len(self.keys) + 1}"
        self.keys[new] = os.urandom(32)
        self.current = new
        return new

    def _tick(self) -> None:
        with self._lock:
            self.calls += 1
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail_with is not None:
            raise self.fail_with

    def _encrypt(self, plaintext: bytes, *, uid: str) -> WrapResult:
        self._tick()
        nonce = os.urandom(12)
        key_id = self.current
        ct = nonce + AESGCM(self.keys[key_id]).encrypt(nonce, plaintext, key_id.encode())
        if self.ciphertext_override is not None:
            ct = self.ciphertext_override
        return WrapResult(ct, key_id, dict(self.annotations))

    def _decrypt(
        self, ciphertext: bytes, *, key_id: str, annotations: Mapping[str, bytes], uid: str
    ) -> bytes:
        self._tick()
        key = self.keys.get(key_id)
        if key is None:
            raise BackendInvalidRequest(f"unknown key_id {key_id!r}")
        try:
            return AESGCM(key).decrypt(ciphertext[:12], ciphertext[12:], key_id.encode())
        except InvalidTag:
            raise BackendInvalidRequest("ciphertext does not authenticate") from None

    def _status(self) -> BackendStatus:
        return BackendStatus(key_id=self.current, healthy=True)
