"""The stand-in's encryption state: config, transformer chain, KMS v2 health, reload.

Mirrors what kube-apiserver does around ``--encryption-provider-config``:

* every kms v2 provider's ``Status`` is polled (every ``poll_healthy`` seconds while
  healthy, ``poll_unhealthy`` while not); :meth:`TransformerSet.refresh_kms` draws a
  new seed and calls ``Encrypt`` once when the key_id changes;
* writes for a resource whose write provider is kms v2 are refused once the plugin
  has been unhealthy for longer than ``unhealthy_grace`` seconds;
* with automatic reload the file is re-read every ``reload_interval`` seconds; a new
  config that fails to load (or whose kms plugins are not healthy) is ignored and the
  old one stays in force, as upstream does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from secretkit.config_files import load_encryption_config_file
from secretkit.core.encryption_config import providers_for
from secretkit.core.encryption_config.model import EncryptionConfig, KMSProvider, content_hash
from secretkit.core.formats import classify_value, value_header
from secretkit.core.kms_service import KMSEncryptResult, KMSService, KMSStatus
from secretkit.core.transformers import ResourceTransformer, TransformerSet, build_transformers
from secretkit.errors import SecretkitError
from secretkit.sandbox.apiserver.metrics import EncryptionMetrics
from secretkit.sandbox.apiserver.status import ApiError

log = logging.getLogger(__name__)

KMSFactory = Callable[[KMSProvider], KMSService]
T = TypeVar("T")


@dataclass(frozen=True)
class EncryptionOptions:
    """Timing knobs (seconds); the defaults are the apiserver's."""

    poll_healthy: float = 60.0
    poll_unhealthy: float = 10.0
    unhealthy_grace: float = 180.0
    #: None disables ``--encryption-provider-config-automatic-reload``
    reload_interval: float | None = None
    #: how long a health check reuses its last kms probe result (upstream: 20 s / 3 s)
    health_positive_ttl: float = 20.0
    health_negative_ttl: float = 3.0


class _V1Beta1Service:
    """A kms v1 (v1beta1) plugin in the KMSService shape, for reading kms v1 data."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        from secretkit.kmsapi import V1Beta1Client

        self._client = V1Beta1Client(endpoint, timeout=timeout)

    def status(self) -> KMSStatus:
        version, _runtime, _runtime_version = self._client.version()
        return KMSStatus(version=version, healthz="ok", key_id="")

    def encrypt(self, plaintext: bytes, uid: str) -> KMSEncryptResult:
        return KMSEncryptResult(ciphertext=self._client.encrypt(plaintext), key_id="")

    def decrypt(
        self, ciphertext: bytes, uid: str, key_id: str, annotations: Mapping[str, bytes]
    ) -> bytes:
        return self._client.decrypt(ciphertext)

    def close(self) -> None:
        self._client.close()


def default_kms_factory(provider: KMSProvider) -> KMSService:
    """Connect to a kms plugin over its unix socket (v2, or v1beta1 for kms v1 providers)."""
    from secretkit.kmsapi import GrpcKMSService

    if provider.api_version == "v1":
        return _V1Beta1Service(provider.endpoint, provider.timeout_seconds)
    return GrpcKMSService(provider.endpoint, timeout=provider.timeout_seconds)


def _has_kms_v2(config: EncryptionConfig) -> bool:
    return any(
        isinstance(p, KMSProvider) and p.api_version == "v2"
        for rule in config.rules
        for p in rule.providers
    )


def grpc_code(exc: BaseException) -> str:
    """The gRPC status code name Go would print (``Unavailable``, ``DeadlineExceeded``)."""
    from secretkit.errors import BackendTimeout, BackendUnavailable

    if isinstance(exc, BackendTimeout):
        return "DeadlineExceeded"
    if isinstance(exc, BackendUnavailable):
        return "Unavailable"
    text = getattr(exc, "what", "") or ""
    name = text.split("failed: ", 1)[1].split(":", 1)[0] if "failed: " in text else ""
    return "".join(p.capitalize() for p in name.split("_")) or "Unknown"


class _RecordingService:
    """Times and counts the calls made to one kms plugin (for /metrics; no payloads kept)."""

    def __init__(self, inner: KMSService, provider: KMSProvider, recorder: EncryptionMetrics
                 ) -> None:
        self._inner = inner
        self._provider = provider
        self._recorder = recorder

    def _call(self, method: str, fn: Callable[[], T]) -> T:
        start = time.monotonic()
        try:
            result = fn()
        except Exception as exc:
            self._recorder.kms_call(self._provider.name, method, time.monotonic() - start,
                                    grpc_code(exc), self._provider.api_version)
            raise
        key_id = result.key_id if isinstance(result, KMSStatus) else None
        self._recorder.kms_call(self._provider.name, method, time.monotonic() - start, "OK",
                                self._provider.api_version, key_id)
        return result

    def status(self) -> KMSStatus:
        return self._call("Status", self._inner.status)

    def encrypt(self, plaintext: bytes, uid: str) -> KMSEncryptResult:
        return self._call("Encrypt", lambda: self._inner.encrypt(plaintext, uid))

    def decrypt(
        self, ciphertext: bytes, uid: str, key_id: str, annotations: Mapping[str, bytes]
    ) -> bytes:
        return self._call("Decrypt",
                          lambda: self._inner.decrypt(ciphertext, uid, key_id, annotations))

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()


@dataclass
class KMSProbe:
    """kube-apiserver's health probe of one kms provider (``kms-provider-<index>``).

    A check answers from its last result while that is fresh: 20 s after a success,
    3 s after a failure (upstream's positive and negative TTLs); otherwise it asks the
    plugin (kms v2: ``Status`` must say healthz ``ok``, version ``v2`` and a key_id;
    kms v1: an Encrypt/Decrypt round trip of ``ping``).
    """

    index: int
    provider: KMSProvider
    service: KMSService
    positive_ttl: float
    negative_ttl: float
    clock: Callable[[], float]
    _checked: float | None = None
    _error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self) -> str | None:
        """None when healthy, else the error text (secret-free)."""
        with self._lock:
            now = self.clock()
            ttl = self.negative_ttl if self._error else self.positive_ttl
            if self._checked is not None and now - self._checked < ttl:
                return self._error
            self._error = self._ask()
            self._checked = self.clock()
            return self._error

    def _ask(self) -> str | None:
        name = self.provider.name
        try:
            if self.provider.api_version != "v2":
                ciphertext = self.service.encrypt(b"ping", "").ciphertext
                self.service.decrypt(ciphertext, "", "", {})
                return None
            status = self.service.status()
        except (SecretkitError, OSError) as exc:
            return f"failed to perform status section of the healthz check for KMS Provider " \
                   f"{name}, error: {exc}"
        problems = []
        if status.healthz != "ok":
            problems.append(f"got unexpected healthz status: {status.healthz}")
        if status.version != "v2":
            problems.append(f"expected KMSv2 API version v2, got {status.version}")
        if not status.key_id:
            problems.append("expected KMSv2 KeyID to be set, got ")
        if problems:
            return f"kmsv2 Provider {name} is not healthy, error: " + ", ".join(problems)
        return None


class _Generation:
    """One loaded config with its transformers, health probes and the KMS clients."""

    def __init__(
        self, config: EncryptionConfig, factory: KMSFactory, recorder: EncryptionMetrics,
        options: EncryptionOptions, clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.services: list[_RecordingService] = []

        def tracked(provider: KMSProvider) -> KMSService:
            service = _RecordingService(factory(provider), provider, recorder)
            self.services.append(service)
            return service

        self.transformers: TransformerSet = build_transformers(config, tracked)
        self.has_kms_v2 = _has_kms_v2(config)
        # upstream makes one probe per kms provider entry, in config order, with its own
        # client: kms-provider-0, kms-provider-1, ...
        self.probes = [
            KMSProbe(index, provider, tracked(provider), options.health_positive_ttl,
                     options.health_negative_ttl, clock)
            for index, provider in enumerate(
                p for rule in config.rules for p in rule.providers if isinstance(p, KMSProvider)
            )
        ]

    def close(self) -> None:
        for service in self.services:
            service.close()


class EncryptionState:
    """Thread-safe holder of the current transformer chain (swapped on reload)."""

    def __init__(
        self,
        config_path: Path,
        *,
        options: EncryptionOptions | None = None,
        kms_factory: KMSFactory = default_kms_factory,
        clock: Callable[[], float] = time.monotonic,
        apiserver_id: str = "apiserver-secretkit-sandbox",
    ) -> None:
        self.config_path = config_path
        self.options = options or EncryptionOptions()
        self._factory = kms_factory
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._retired: list[_Generation] = []
        self.reloads_success = 0
        self.reloads_failure = 0
        self.kms_error: str | None = None
        #: what /metrics reports (plugin calls, key_id use, reloads), across config reloads
        self.recorder = EncryptionMetrics(apiserver_id)
        gen = self._generation(load_encryption_config_file(config_path))
        self._gen = gen
        self._last_healthy = clock()
        self._healthy = True
        if gen.has_kms_v2:
            self._refresh(gen)

    def _generation(self, config: EncryptionConfig) -> _Generation:
        return _Generation(config, self._factory, self.recorder, self.options, self._clock)

    # -- reading the state -------------------------------------------------------------
    @property
    def config(self) -> EncryptionConfig:
        """The config currently in force."""
        return self._gen.config

    @property
    def kms_healthy(self) -> bool:
        """False when the last Status poll of a kms v2 plugin failed."""
        return self._healthy

    def transformer(self, resource: str, group: str = "") -> ResourceTransformer:
        """The read/write chain for ``resource`` in ``group`` under the current config."""
        return self._gen.transformers.for_resource(resource, group)

    def check_writable(self, resource: str, group: str = "") -> None:
        """Refuse writes (500) when the kms v2 write provider has been unhealthy too long."""
        gen = self._gen
        if not gen.has_kms_v2 or self._healthy:
            return
        first = providers_for(gen.config, resource, group)[0]
        if not (isinstance(first, KMSProvider) and first.api_version == "v2"):
            return
        down_for = self._clock() - self._last_healthy
        if down_for > self.options.unhealthy_grace:
            raise ApiError(
                500,
                "InternalError",
                f"Internal error occurred: kms v2 provider {first.name!r} has been unhealthy "
                f"for {int(down_for)}s (more than {int(self.options.unhealthy_grace)}s); "
                "writes are refused until its Status is healthy again",
            )

    def metrics(self, apiserver_id: str = "") -> str:
        """Prometheus text: kube-apiserver's encryption metrics plus the stand-in's own."""
        return self.recorder.render(self.config.hash, self._healthy)

    def record_kms_use(self, provider: str, key_id: str, value: bytes, *, to_storage: bool
                       ) -> None:
        """Count a kms v2 value read or written (``apiserver_envelope_encryption_key_id_*``)."""
        header = value_header(value) or b""
        self.recorder.key_id_used(provider, key_id, to_storage, header)

    def record_written(self, value: bytes) -> None:
        """Count a kms v2 value just written (provider name and key_id read from it)."""
        stored = classify_value(value)
        if stored.kms_v2 is not None and stored.name:
            self.record_kms_use(stored.name, stored.kms_v2.key_id, value, to_storage=True)

    @property
    def probes(self) -> list[KMSProbe]:
        """The kms health probes of the config in force (``kms-provider-<i>``)."""
        return self._gen.probes

    @property
    def automatic_reload(self) -> bool:
        """True with ``--encryption-provider-config-automatic-reload`` (the file is re-read)."""
        return bool(self.options.reload_interval)

    # -- background work -----------------------------------------------------------------
    def start(self) -> None:
        """Start the Status poller and (when enabled) the config reloader threads."""
        self._spawn("kms-status", self._poll_loop)
        if self.options.reload_interval:
            self._spawn("config-reload", self._reload_loop)

    def stop(self) -> None:
        """Stop the threads and close every KMS client."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._lock:
            for gen in [*self._retired, self._gen]:
                gen.close()
            self._retired.clear()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"sandbox-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _refresh(self, gen: _Generation) -> bool:
        try:
            gen.transformers.refresh_kms()
        except (SecretkitError, OSError) as exc:
            # the error text names the provider/endpoint, never key material
            self.kms_error = str(exc)
            if self._healthy:
                log.warning("kms v2 plugin unhealthy: %s", exc)
            self._healthy = False
            return False
        if not self._healthy:
            log.info("kms v2 plugin healthy again")
        self._healthy = True
        self.kms_error = None
        self._last_healthy = self._clock()
        return True

    def _poll_loop(self) -> None:
        while True:
            gen = self._gen
            interval = self.options.poll_healthy if self._healthy else self.options.poll_unhealthy
            if self._stop.wait(interval):
                return
            if gen.has_kms_v2 and gen is self._gen:
                self._refresh(gen)

    def _reload_loop(self) -> None:
        interval = self.options.reload_interval or 60.0
        while not self._stop.wait(interval):
            self.reload_if_changed()

    def reload_if_changed(self) -> bool:
        """Re-read the config file; swap in the new chain when it changed and loads.

        Returns True when a new config took effect. Failures keep the old config.
        """
        try:
            data = self.config_path.read_bytes()
        except OSError as exc:
            log.warning("encryption config reload: cannot read %s: %s", self.config_path, exc)
            self._reloaded("failure")
            return False
        if content_hash(data) == self.config.hash:
            return False
        try:
            gen = self._generation(load_encryption_config_file(self.config_path))
        except SecretkitError as exc:
            log.warning("encryption config reload failed, keeping the old config: %s", exc)
            self._reloaded("failure")
            return False
        if gen.has_kms_v2:
            try:
                gen.transformers.refresh_kms()
            except (SecretkitError, OSError) as exc:
                log.warning("encryption config reload: kms v2 not healthy, keeping the old "
                            "config: %s", exc)
                gen.close()
                self._reloaded("failure")
                return False
        with self._lock:
            # old clients may still serve in-flight requests: close them at stop()
            self._retired.append(self._gen)
            self._gen = gen
            self._healthy = True
            self._last_healthy = self._clock()
        self._reloaded("success")
        log.info("encryption config reloaded (%s)", gen.config.hash)
        return True

    def _reloaded(self, status: str) -> None:
        if status == "success":
            self.reloads_success += 1
        else:
            self.reloads_failure += 1
        self.recorder.reload(status)
