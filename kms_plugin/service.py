"""KMS plugin semantics over a :class:`~secretkit.backends.interface.KeyBackend`.

No gRPC here: this module validates requests exactly as the KMS v2 contract demands,
calls the backend, checks what the backend returned, and keeps the cached,
single-flight ``Status`` probe. :mod:`kms_plugin.servicer` maps it to protobuf and
gRPC status codes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from kms_plugin.errors import ContractViolation, InvalidRequest
from kms_plugin.metrics import PluginMetrics, backend_error_class
from kms_plugin.v1beta1_envelope import pack_v1beta1, unpack_v1beta1
from secretkit.backends.interface import KeyBackend
from secretkit.core.formats.kmsv2 import is_fully_qualified_domain_name
from secretkit.core.kms_service import KMSEncryptResult, KMSStatus
from secretkit.errors import (
    BackendTimeout,
    BackendUnavailable,
    SecretkitError,
)

log = logging.getLogger("kms_plugin.service")

#: upstream limits (k8s.io/apiserver .../kmsv2): key_id and ciphertext at most 1 KiB
MAX_KEY_ID_BYTES = 1024
MAX_CIPHERTEXT_BYTES = 1024
#: keys plus values of all annotations (upstream: 32 KiB)
MAX_ANNOTATIONS_BYTES = 32 * 1024
#: the apiserver sends a 32-byte seed (v2) or a 32-byte DEK (v1beta1); anything far
#: bigger cannot wrap into a ciphertext under 1 KiB with every backend
MAX_PLAINTEXT_BYTES = 512
#: v1beta1 ciphertexts carry a header (key_id, annotations) before the backend ciphertext
MAX_V1BETA1_CIPHERTEXT_BYTES = 64 * 1024
#: what Status reports as ``version`` for the v2 service
V2_VERSION = "v2"
V1BETA1_VERSION = "v1beta1"
RUNTIME_NAME = "secretkit-kms-plugin"

_T = TypeVar("_T")

def validate_key_id(key_id: str, *, where: str) -> None:
    """Reject an empty or oversized key_id."""
    if not key_id:
        raise InvalidRequest(
            "key_id is empty", where=where, hint="send the key_id Encrypt returned"
        )
    if len(key_id.encode("utf-8")) > MAX_KEY_ID_BYTES:
        raise InvalidRequest(
            f"key_id is longer than {MAX_KEY_ID_BYTES} bytes", where=where
        )


def validate_annotations(annotations: Mapping[str, bytes], *, where: str) -> None:
    """Reject annotation keys that are not FQDNs and totals over 32 KiB.

    The key rule is the core's (:func:`secretkit.core.formats.kmsv2.is_fully_qualified_domain_name`,
    upstream's ``IsFullyQualifiedDomainName``): what the plugin accepts is exactly what
    the apiserver will accept when it decodes the stored ``EncryptedObject``.
    """
    total = 0
    for key, value in annotations.items():
        if not is_fully_qualified_domain_name(key):
            # the key is chosen by the plugin and stored in plaintext: safe to echo, but
            # bounded so a fuzzer cannot make us log kilobytes
            shown = key[:64].encode("unicode_escape").decode("ascii")
            raise InvalidRequest(
                f"annotation key {shown!r} is not a fully qualified domain name",
                where=where,
                hint="annotation keys look like 'version.example.com'",
            )
        total += len(key.encode("utf-8")) + len(value)
    if total > MAX_ANNOTATIONS_BYTES:
        raise InvalidRequest(
            f"annotations total {total} bytes, more than {MAX_ANNOTATIONS_BYTES}", where=where
        )


def _validate_plaintext(plaintext: bytes, *, where: str) -> None:
    if not plaintext:
        raise InvalidRequest("plaintext is empty", where=where)
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise InvalidRequest(
            f"plaintext is {len(plaintext)} bytes, more than {MAX_PLAINTEXT_BYTES}",
            where=where,
            hint="KMS plugins wrap 32-byte DEK seeds, not data",
        )


def _validate_ciphertext(ciphertext: bytes, *, limit: int, where: str) -> None:
    if not ciphertext:
        raise InvalidRequest("ciphertext is empty", where=where)
    if len(ciphertext) > limit:
        raise InvalidRequest(
            f"ciphertext is {len(ciphertext)} bytes, more than {limit}", where=where
        )


@dataclass(frozen=True)
class ProbeResult:
    """One Status probe: the write key_id and whether the round trip worked."""

    healthy: bool
    key_id: str
    #: short, secret-free text: ``ok`` or why the probe failed
    detail: str
    #: monotonic time of the probe
    at: float


@dataclass(frozen=True)
class StatusPolicy:
    """How ``Status`` caches and judges its backend probe.

    A failed probe whose error is transient (backend unavailable or throttled, or a
    timeout) keeps reporting the last good key_id as healthy while the last success
    is at most ``grace_seconds`` old, so one throttled call does not make every
    apiserver stop writing. Any other failure reports unhealthy at once.
    """

    #: how long a successful probe answers Status
    ttl_seconds: float = 30.0
    #: how long a failed probe answers Status before the next one (bounded by ttl)
    failure_ttl_seconds: float = 5.0
    #: how long transient failures may be masked by the last success
    grace_seconds: float = 60.0


@dataclass
class _ProbeState:
    cached: ProbeResult | None = None
    last_good: ProbeResult | None = None
    in_flight: threading.Event | None = None
    consecutive_failures: int = 0
    last_reported: tuple[bool, str] | None = field(default=None)


class PluginService:
    """KMS v2 and v1beta1 semantics over one backend. Thread-safe."""

    def __init__(
        self,
        backend: KeyBackend,
        *,
        policy: StatusPolicy | None = None,
        metrics: PluginMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._backend = backend
        self._policy = policy or StatusPolicy()
        self._metrics = metrics
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._state = _ProbeState()

    @property
    def backend_kind(self) -> str:
        """The backend's kind (``local``, ``vault``, ``aws``)."""
        return self._backend.kind

    # --- backend calls, timed and classified -------------------------------------

    def _call(self, operation: str, fn: Callable[[], _T]) -> _T:
        start = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:
            if self._metrics is not None:
                self._metrics.observe_backend(
                    self._backend.kind, operation, time.perf_counter() - start,
                    backend_error_class(exc),
                )
            raise
        if self._metrics is not None:
            self._metrics.observe_backend(
                self._backend.kind, operation, time.perf_counter() - start, None
            )
        return result

    # --- v2 ---------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, uid: str = "") -> KMSEncryptResult:
        """Wrap a DEK seed with the current key and check the result's contract."""
        where = "Encrypt"
        _validate_plaintext(plaintext, where=where)
        result = self._call("encrypt", lambda: self._backend.encrypt(plaintext, uid=uid))
        self._check_backend_result(result.ciphertext, result.key_id, result.annotations)
        return KMSEncryptResult(result.ciphertext, result.key_id, dict(result.annotations))

    def decrypt(
        self,
        ciphertext: bytes,
        key_id: str,
        annotations: Mapping[str, bytes] | None = None,
        uid: str = "",
    ) -> bytes:
        """Unwrap ``ciphertext`` written under ``key_id``."""
        where = "Decrypt"
        _validate_ciphertext(ciphertext, limit=MAX_CIPHERTEXT_BYTES, where=where)
        validate_key_id(key_id, where=where)
        annotations = dict(annotations or {})
        validate_annotations(annotations, where=where)
        plaintext = self._call(
            "decrypt",
            lambda: self._backend.decrypt(
                ciphertext, key_id=key_id, annotations=annotations, uid=uid
            ),
        )
        if not plaintext:
            raise ContractViolation(f"{self._backend.kind} backend returned an empty plaintext")
        return plaintext

    def _check_backend_result(
        self, ciphertext: bytes, key_id: str, annotations: Mapping[str, bytes]
    ) -> None:
        # a backend bug here would make the apiserver fail every write later, at
        # decode time; refuse it now with a clear, secret-free error
        kind = self._backend.kind
        try:
            validate_key_id(key_id, where=f"{kind} backend")
            validate_annotations(annotations, where=f"{kind} backend")
        except InvalidRequest as exc:
            raise ContractViolation(f"backend result breaks the KMS contract: {exc}") from exc
        if not ciphertext or len(ciphertext) > MAX_CIPHERTEXT_BYTES:
            raise ContractViolation(
                f"{kind} backend returned a ciphertext of {len(ciphertext)} bytes "
                f"(must be 1..{MAX_CIPHERTEXT_BYTES})"
            )

    def status(self) -> KMSStatus:
        """Return the cached probe as a v2 Status (probing when the cache expired)."""
        probe = self.probe()
        return KMSStatus(
            version=V2_VERSION, healthz="ok" if probe.healthy else probe.detail, key_id=probe.key_id
        )

    # --- the cached, single-flight probe --------------------------------------------

    def probe(self) -> ProbeResult:
        """Return a probe no older than its TTL; concurrent callers share one probe."""
        while True:
            with self._lock:
                cached = self._state.cached
                now = self._clock()
                if cached is not None and now - cached.at < self._ttl_for(cached):
                    return cached
                waiter = self._state.in_flight
                if waiter is None:
                    waiter = threading.Event()
                    self._state.in_flight = waiter
                    leader = True
                else:
                    leader = False
            if not leader:
                waiter.wait()
                with self._lock:
                    if self._state.cached is not None:
                        return self._state.cached
                continue  # the leader died without a result: try again
            try:
                result = self._run_probe()
            finally:
                with self._lock:
                    self._state.in_flight = None
                waiter.set()
            return result

    def _ttl_for(self, result: ProbeResult) -> float:
        if result.healthy and result.detail == "ok":
            return self._policy.ttl_seconds
        return min(self._policy.ttl_seconds, self._policy.failure_ttl_seconds)

    def _run_probe(self) -> ProbeResult:
        kind = self._backend.kind
        start = self._clock()
        try:
            key_id = self._round_trip()
        except Exception as exc:
            result = self._judge_failure(exc, start)
        else:
            result = ProbeResult(healthy=True, key_id=key_id, detail="ok", at=start)
            with self._lock:
                self._state.last_good = result
                self._state.consecutive_failures = 0
        with self._lock:
            self._state.cached = result
            previous = self._state.last_reported
            self._state.last_reported = (result.healthy, result.key_id)
        if self._metrics is not None:
            self._metrics.observe_probe(result.healthy, result.detail == "ok", result.key_id)
        if previous != (result.healthy, result.key_id):
            log.info(
                "status changed",
                extra={"healthy": result.healthy, "key_id": result.key_id,
                       "detail": result.detail, "backend": kind},
            )
        return result

    def check_backend(self) -> str:
        """One uncached round trip (encrypt + decrypt of a random seed); the key_id, or raise.

        What ``--check-backend`` runs: unlike :meth:`probe`, errors are raised as they
        are (no grace, no cache), so the caller can say exactly what failed.
        """
        return self._round_trip()

    def _round_trip(self) -> str:
        """Encrypt then decrypt a random probe value; return the key_id that wrote it."""
        kind = self._backend.kind
        probe = self._rng(32)
        wrapped = self._call("encrypt", lambda: self._backend.encrypt(probe, uid="status-probe"))
        self._check_backend_result(wrapped.ciphertext, wrapped.key_id, wrapped.annotations)
        back = self._call(
            "decrypt",
            lambda: self._backend.decrypt(
                wrapped.ciphertext, key_id=wrapped.key_id,
                annotations=wrapped.annotations, uid="status-probe",
            ),
        )
        if back != probe:
            raise ContractViolation(f"{kind} backend round trip returned different bytes")
        return wrapped.key_id

    def _judge_failure(self, exc: BaseException, at: float) -> ProbeResult:
        kind = self._backend.kind
        detail = f"{kind} backend: {_short_reason(exc)}"
        with self._lock:
            self._state.consecutive_failures += 1
            failures = self._state.consecutive_failures
            last_good = self._state.last_good
        transient = isinstance(exc, BackendUnavailable | BackendTimeout)
        log.warning(
            "status probe failed",
            extra={"backend": kind, "error_class": backend_error_class(exc),
                   "reason": _short_reason(exc), "consecutive_failures": failures,
                   "transient": transient},
        )
        if (
            transient
            and last_good is not None
            and at - last_good.at <= self._policy.grace_seconds
        ):
            # keep the last good key_id; "ok" but flagged so it is re-probed soon
            return ProbeResult(healthy=True, key_id=last_good.key_id,
                               detail="ok (last probe failed, within grace)", at=at)
        key_id = last_good.key_id if last_good is not None else "unknown"
        return ProbeResult(healthy=False, key_id=key_id, detail=detail, at=at)

    # --- v1beta1 -----------------------------------------------------------------

    def v1beta1_encrypt(self, plaintext: bytes) -> bytes:
        """Wrap with the current key; the result carries key_id and annotations."""
        where = "v1beta1 Encrypt"
        _validate_plaintext(plaintext, where=where)
        result = self._call("encrypt", lambda: self._backend.encrypt(plaintext, uid=""))
        self._check_backend_result(result.ciphertext, result.key_id, result.annotations)
        return pack_v1beta1(result.key_id, result.annotations, result.ciphertext)

    def v1beta1_decrypt(self, ciphertext: bytes) -> bytes:
        """Unwrap a ciphertext made by :meth:`v1beta1_encrypt`, under any key_id."""
        where = "v1beta1 Decrypt"
        _validate_ciphertext(ciphertext, limit=MAX_V1BETA1_CIPHERTEXT_BYTES, where=where)
        key_id, annotations, inner = unpack_v1beta1(ciphertext, where=where)
        return self.decrypt(inner, key_id, annotations, uid="")


def _short_reason(exc: BaseException) -> str:
    """A short, secret-free reason: the error's own ``what`` or just its class name."""
    if isinstance(exc, SecretkitError):
        return exc.what[:200]
    return type(exc).__name__
