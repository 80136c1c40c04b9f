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

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secretkit.encryption_config import load_encryption_config_file, providers_for
from secretkit.encryption_config.model import EncryptionConfig, KMSProvider, content_hash
from secretkit.errors import SecretkitError
from secretkit.kms_service import KMSEncryptResult, KMSService, KMSStatus
from secretkit.sandbox.apiserver.status import ApiError
from secretkit.transformers import ResourceTransformer, TransformerSet, build_transformers

log = logging.getLogger(__name__)

KMSFactory = Callable[[KMSProvider], KMSService]


@dataclass(frozen=True)
class EncryptionOptions:
    """Timing knobs (seconds); the defaults are the apiserver's."""

    poll_healthy: float = 60.0
    poll_unhealthy: float = 10.0
    unhealthy_grace: float = 180.0
    #: None disables ``--encryption-provider-config-automatic-reload``
    reload_interval: float | None = None


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


class _CountingService:
    """Counts the calls made to one kms plugin (exposed on /metrics; no payloads kept)."""

    def __init__(self, inner: KMSService, name: str, counts: Counter[tuple[str, str]]) -> None:
        self._inner = inner
        self._name = name
        self._counts = counts

    def _count(self, method: str) -> None:
        self._counts[(self._name, method)] += 1

    def status(self) -> KMSStatus:
        self._count("status")
        return self._inner.status()

    def encrypt(self, plaintext: bytes, uid: str) -> KMSEncryptResult:
        self._count("encrypt")
        return self._inner.encrypt(plaintext, uid)

    def decrypt(
        self, ciphertext: bytes, uid: str, key_id: str, annotations: Mapping[str, bytes]
    ) -> bytes:
        self._count("decrypt")
        return self._inner.decrypt(ciphertext, uid, key_id, annotations)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()


class _Generation:
    """One loaded config with its transformers and the KMS clients they own."""

    def __init__(
        self, config: EncryptionConfig, factory: KMSFactory, counts: Counter[tuple[str, str]]
    ) -> None:
        self.config = config
        self.services: list[_CountingService] = []

        def tracked(provider: KMSProvider) -> KMSService:
            service = _CountingService(factory(provider), provider.name, counts)
            self.services.append(service)
            return service

        self.transformers: TransformerSet = build_transformers(config, tracked)
        self.has_kms_v2 = _has_kms_v2(config)

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
        #: (kms provider name, method) -> calls, across config reloads
        self.kms_calls: Counter[tuple[str, str]] = Counter()
        gen = _Generation(load_encryption_config_file(config_path), kms_factory, self.kms_calls)
        self._gen = gen
        self._last_healthy = clock()
        self._healthy = True
        if gen.has_kms_v2:
            self._refresh(gen)

    # -- reading the state -------------------------------------------------------------
    @property
    def config(self) -> EncryptionConfig:
        """The config currently in force."""
        return self._gen.config

    @property
    def kms_healthy(self) -> bool:
        """False when the last Status poll of a kms v2 plugin failed."""
        return self._healthy

    def transformer(self, resource: str) -> ResourceTransformer:
        """The read/write chain for ``resource`` (core group) under the current config."""
        return self._gen.transformers.for_resource(resource)

    def check_writable(self, resource: str) -> None:
        """Refuse writes (500) when the kms v2 write provider has been unhealthy too long."""
        gen = self._gen
        if not gen.has_kms_v2 or self._healthy:
            return
        first = providers_for(gen.config, resource)[0]
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

    def metrics(self, apiserver_id: str) -> str:
        """Prometheus text for the encryption-config controller metrics."""
        id_hash = "sha256:" + hashlib.sha256(apiserver_id.encode()).hexdigest()
        lines = [
            "# HELP apiserver_encryption_config_controller_last_config_info "
            "Information about the last applied encryption configuration with hash as label.",
            "# TYPE apiserver_encryption_config_controller_last_config_info gauge",
            "apiserver_encryption_config_controller_last_config_info"
            f'{{apiserver_id_hash="{id_hash}",hash="{self.config.hash}"}} 1',
            "# HELP apiserver_encryption_config_controller_automatic_reloads_total "
            "Total number of reload successes and failures of encryption configuration.",
            "# TYPE apiserver_encryption_config_controller_automatic_reloads_total counter",
            "apiserver_encryption_config_controller_automatic_reloads_total"
            f'{{apiserver_id_hash="{id_hash}",status="success"}} {self.reloads_success}',
            "apiserver_encryption_config_controller_automatic_reloads_total"
            f'{{apiserver_id_hash="{id_hash}",status="failure"}} {self.reloads_failure}',
            "# HELP secretkit_sandbox_kms_healthy 1 when every kms v2 plugin answered Status ok.",
            "# TYPE secretkit_sandbox_kms_healthy gauge",
            f"secretkit_sandbox_kms_healthy {1 if self._healthy else 0}",
            "# HELP secretkit_sandbox_kms_calls_total KMS plugin calls by provider and method.",
            "# TYPE secretkit_sandbox_kms_calls_total counter",
        ]
        for (name, method), count in sorted(self.kms_calls.items()):
            lines.append(
                f'secretkit_sandbox_kms_calls_total{{provider="{name}",method="{method}"}} {count}'
            )
        return "\n".join(lines) + "\n"

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
            self.reloads_failure += 1
            return False
        if content_hash(data) == self.config.hash:
            return False
        try:
            gen = _Generation(
                load_encryption_config_file(self.config_path), self._factory, self.kms_calls
            )
        except SecretkitError as exc:
            log.warning("encryption config reload failed, keeping the old config: %s", exc)
            self.reloads_failure += 1
            return False
        if gen.has_kms_v2:
            try:
                gen.transformers.refresh_kms()
            except (SecretkitError, OSError) as exc:
                log.warning("encryption config reload: kms v2 not healthy, keeping the old "
                            "config: %s", exc)
                gen.close()
                self.reloads_failure += 1
                return False
        with self._lock:
            # old clients may still serve in-flight requests: close them at stop()
            self._retired.append(self._gen)
            self._gen = gen
            self._healthy = True
            self._last_healthy = self._clock()
        self.reloads_success += 1
        log.info("encryption config reloaded (%s)", gen.config.hash)
        return True

    def describe(self) -> dict[str, Any]:
        """A secret-free summary for status output."""
        return {
            "config": str(self.config_path),
            "hash": self.config.hash,
            "kms_healthy": self._healthy,
            "kms_error": self.kms_error,
        }
