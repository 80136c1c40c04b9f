"""What the verdicts depend on: the EncryptionConfiguration and the current key_ids.

The monitor works out verdicts with one :class:`~secretkit.audit.classify.Classifier`
per full scan. Its inputs are checked on a schedule (:meth:`VerdictInputs.poll`);
a change means every stored value may have a new verdict, so it asks for a full
scan. A KMS plugin that does not answer keeps its last known key_id (a Status
outage must not turn every stale value into a fresh one).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from secretkit.audit.classify import Classifier, ScopePolicy
from secretkit.audit.keys import normalize_prefix, range_prefix_for
from secretkit.audit.scan import range_prefixes
from secretkit.core.encryption_config import EncryptionConfig, load_encryption_config
from secretkit.core.encryption_config.model import IdentityProvider
from secretkit.errors import ConfigError, SecretkitError, UsageError
from secretkit.fileio import read_file
from secretkit.kmsapi.services import KMSServices, current_key_ids, open_kms_services
from secretkit.monitor.options import MonitorOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Loaded:
    config: EncryptionConfig | None
    digest: str | None


class VerdictInputs:
    """Config, KMS services and key_ids for the monitor's classifiers. Thread-safe.

    ``on_error(kind)`` counts failures of a scheduled check (``config`` or ``kms``).
    """

    def __init__(self, options: MonitorOptions, *, on_error: Callable[[str], None]) -> None:
        self._options = options
        self._on_error = on_error
        self._lock = threading.Lock()
        try:
            self._loaded = self._load()
        except ConfigError as exc:
            # a bad config at start is the operator's to fix: exit 2, not restarted
            raise UsageError(exc.what, where=exc.where, hint=exc.hint) from None
        self._services = KMSServices()
        self.key_ids: dict[str, str] = {}
        if self._loaded.config is not None:
            self._services = open_kms_services(options.backends, options.kms_sockets)
            self.key_ids, notes = current_key_ids(self._loaded.config, self._services)
            for note in notes:
                log.warning("%s", note)

    @property
    def config(self) -> EncryptionConfig | None:
        """The EncryptionConfiguration in force (None: judged without one)."""
        return self._loaded.config

    def close(self) -> None:
        """Close KMS plugin channels and backends."""
        self._services.close()

    def _load(self) -> _Loaded:
        path = self._options.config
        if path is None:
            return _Loaded(None, None)
        data = read_file(path, what="the EncryptionConfiguration (--config)")
        return _Loaded(load_encryption_config(data, source=str(path)), _digest(data))

    # -- classifiers ------------------------------------------------------------------

    def classifier(self) -> Classifier:
        """A fresh classifier with the current inputs (called for each full scan)."""
        with self._lock:
            config = self._loaded.config
            key_ids = dict(self.key_ids)
        options = self._options
        transformers = None
        if config is not None and options.decrypt_check:
            from secretkit.core.transformers import build_transformers

            transformers = build_transformers(config, self._services.factory)
            transformers.refresh_kms()
        if options.resources is not None:
            policy = ScopePolicy(
                resources=options.resources,
                explicit=True,
                all_resources=options.all_resources,
                config=config,
            )
        else:
            policy = ScopePolicy(all_resources=options.all_resources, config=config)
        return Classifier(
            policy=policy, prefix=options.prefix, kms_key_ids=key_ids, transformers=transformers
        )

    # -- scheduled check --------------------------------------------------------------

    def poll(self) -> str | None:
        """Re-read the config and ask for key_ids; the full-scan reason when they changed."""
        reason = None
        if self._options.config is not None:
            try:
                loaded = self._load()
            except SecretkitError as exc:
                self._on_error("config")
                log.warning("keeping the previous config: %s", exc.what)
            else:
                if loaded.digest != self._loaded.digest:
                    with self._lock:
                        self._loaded = loaded
                    log.info("the EncryptionConfiguration changed")
                    reason = "config_changed"
        config = self._loaded.config
        if config is None:
            return reason
        try:
            fresh, notes = current_key_ids(config, self._services)
        except SecretkitError as exc:
            self._on_error("kms")
            log.warning("cannot ask the KMS plugins for key_ids: %s", exc.what)
            return reason
        if notes and any("failed" in n or "unhealthy" in n for n in notes):
            self._on_error("kms")
        with self._lock:
            changed = {
                name for name, key_id in fresh.items()
                if key_id and self.key_ids.get(name) != key_id
            }
            if changed:
                self.key_ids = {**self.key_ids, **{n: fresh[n] for n in changed}}
        if changed and reason is None:
            log.info("current key_id changed for kms provider(s) %s", ", ".join(sorted(changed)))
            reason = "key_id_changed"
        return reason


def watch_prefixes(classifier: Classifier, prefix: str) -> list[bytes]:
    """The etcd ranges to scan and watch: as narrow as the scope allows, never overlapping.

    Explicit ``--resources`` narrow as in the audit; without them, a config whose rules
    name concrete resources (no wildcard) narrows to the resources it encrypts.
    """
    found = range_prefixes(classifier, prefix)
    policy = classifier.policy
    config = policy.config
    if len(found) == 1 and config is not None and not policy.explicit and not policy.all_resources:
        base = normalize_prefix(prefix)
        narrow: list[str] = []
        for rule in config.rules:
            if isinstance(rule.providers[0], IdentityProvider):
                continue  # not protected: out of scope
            for resource in rule.resources:
                narrowed = None if "*" in resource else range_prefix_for(resource, base)
                if narrowed is None:
                    return found
                narrow.append(narrowed)
        if narrow:
            found = [p.encode() for p in sorted(set(narrow))]
    kept: list[bytes] = []
    for watched in sorted(found):
        if not kept or not watched.startswith(kept[-1]):
            kept.append(watched)
    return kept


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
