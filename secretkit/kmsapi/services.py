"""Which KMS service serves each kms provider: a key backend in-process or a plugin.

Shared by ``audit``, ``reencrypt`` and ``inspect``: ``--backends FILE`` entries and
``--kms-socket NAME=unix:///path`` plugins (and, where asked, the endpoint the config
names) become one :class:`KMSServices`, whose ``factory`` the transformer chain uses,
whose :func:`current_key_ids` judge kms v2 staleness, and whose ``close`` releases
every backend and channel that was opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from secretkit.core.encryption_config import EncryptionConfig, KMSProvider
from secretkit.core.encryption_config.endpoint import parse_endpoint
from secretkit.core.kms_service import KMSService
from secretkit.errors import ConfigError, DependencyError, SecretkitError, UsageError


@dataclass
class KMSServices:
    """kms provider name -> service, plus what to close when done."""

    services: dict[str, KMSService] = field(default_factory=dict)
    #: fall back to the plugin socket the EncryptionConfiguration names (on a node)
    config_endpoints: bool = False
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        """Close every backend and gRPC channel opened for the audit."""
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()

    def factory(self, provider: KMSProvider) -> KMSService:
        """The transformer chain's KMS factory; a provider without a service is an error."""
        service = self.services.get(provider.name)
        if service is None and self.config_endpoints:
            from secretkit.kmsapi.client import GrpcKMSService

            client = GrpcKMSService(provider.endpoint, timeout=provider.timeout_seconds)
            self.services[provider.name] = service = client
            self._closers.append(client.close)
        if service is None:
            raise UsageError(
                f"no KMS service for kms provider {provider.name!r}",
                where="--backends/--kms-socket",
                hint=f"pass --kms-socket {provider.name}=unix:///path/to/plugin.sock "
                "or a --backends file with an entry for it",
            )
        return service


def parse_kms_sockets(values: Iterable[str]) -> dict[str, str]:
    """Parse ``NAME=ENDPOINT`` options (``NAME=unix:///path`` or ``NAME=unix:///@abstract``).

    Each endpoint goes through the one endpoint parser up front, so a form the plugin
    and kube-apiserver cannot use (``unix:@name``, a host part, a relative path) is a
    usage error naming ``--kms-socket`` before anything is opened, not a failed dial
    later.
    """
    sockets: dict[str, str] = {}
    for value in values:
        name, sep, endpoint = value.partition("=")
        if not sep or not name or not endpoint:
            raise UsageError(
                f"--kms-socket expects NAME=unix:///path, got {value!r}",
                where="--kms-socket",
                hint="NAME is the kms provider name in the EncryptionConfiguration",
            )
        try:
            parse_endpoint(endpoint, where="--kms-socket")
        except ConfigError as exc:
            raise UsageError(exc.what, where=exc.where, hint=exc.hint) from None
        sockets[name] = endpoint
    return sockets


def open_kms_services(
    backends_file: Path | None, sockets: Mapping[str, str], *, config_endpoints: bool = False
) -> KMSServices:
    """Open the backends file's backends and the named plugin sockets (sockets win)."""
    result = KMSServices(config_endpoints=config_endpoints)
    try:
        if backends_file is not None:
            from secretkit.backends import BackendKMSService, load_backends_file

            for name, backend in load_backends_file(backends_file).items():
                result.services[name] = BackendKMSService(backend)
                result._closers.append(backend.close)
        if sockets:
            from secretkit.kmsapi.client import GrpcKMSService

            for name, endpoint in sockets.items():
                client = GrpcKMSService(endpoint)
                result.services[name] = client
                result._closers.append(client.close)
    except BaseException:
        result.close()
        raise
    return result


def kms_v2_providers(config: EncryptionConfig) -> list[KMSProvider]:
    """Every distinct kms v2 provider in the config, in file order."""
    seen: dict[str, KMSProvider] = {}
    for rule in config.rules:
        for provider in rule.providers:
            if isinstance(provider, KMSProvider) and provider.api_version == "v2":
                seen.setdefault(provider.name, provider)
    return list(seen.values())


def current_key_ids(
    config: EncryptionConfig, services: KMSServices, *, strict: bool = False
) -> tuple[dict[str, str], list[str]]:
    """(provider name -> current Status key_id, notes about providers we could not ask).

    ``strict`` (before writing anything): a provider without a service, a failed or
    unhealthy Status, or an empty key_id is an error instead of a note.
    """
    key_ids: dict[str, str] = {}
    notes: list[str] = []
    for provider in kms_v2_providers(config):
        if strict:
            status = services.factory(provider).status()
            if not status.healthy or not status.key_id:
                raise DependencyError(
                    f"kms provider {provider.name!r} is not healthy "
                    f"({status.healthz or 'empty key_id'})",
                    where=provider.endpoint,
                    hint="fix the KMS plugin before re-encrypting",
                )
            key_ids[provider.name] = status.key_id
            continue
        service = services.services.get(provider.name)
        if service is None:
            notes.append(
                f"kms provider {provider.name!r}: no --backends/--kms-socket given, so kms v2 "
                "values were not compared against the plugin's current key_id"
            )
            continue
        try:
            status = service.status()
        except SecretkitError as exc:
            notes.append(f"kms provider {provider.name!r}: Status failed ({exc.what})")
            continue
        if not status.healthy:
            notes.append(f"kms provider {provider.name!r}: plugin unhealthy ({status.healthz})")
        key_ids[provider.name] = status.key_id
    return key_ids, notes
