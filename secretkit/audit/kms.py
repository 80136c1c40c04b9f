"""KMS services for the audit: key backends in-process or running plugins over gRPC.

The audit asks each kms v2 provider's service for its current ``key_id`` (Status) to
judge staleness, and, with ``--decrypt-check``, lets the transformer chain unwrap
DEK seeds through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from secretkit.encryption_config import EncryptionConfig, KMSProvider
from secretkit.errors import SecretkitError, UsageError
from secretkit.kms_service import KMSService


@dataclass
class KMSServices:
    """kms provider name -> service, plus what to close when done."""

    services: dict[str, KMSService] = field(default_factory=dict)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        """Close every backend and gRPC channel opened for the audit."""
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()

    def factory(self, provider: KMSProvider) -> KMSService:
        """The transformer chain's KMS factory; a provider without a service is an error."""
        service = self.services.get(provider.name)
        if service is None:
            raise UsageError(
                f"no KMS service for kms provider {provider.name!r}",
                where="--backends/--kms-socket",
                hint=f"pass --kms-socket {provider.name}=unix:///path/to/plugin.sock "
                "or a --backends file with an entry for it",
            )
        return service


def parse_kms_sockets(values: Iterable[str]) -> dict[str, str]:
    """Parse ``NAME=unix:///path`` (or ``NAME=unix:@abstract``) options."""
    sockets: dict[str, str] = {}
    for value in values:
        name, sep, endpoint = value.partition("=")
        if not sep or not name or not endpoint.startswith("unix:"):
            raise UsageError(
                f"--kms-socket expects NAME=unix:///path, got {value!r}",
                where="--kms-socket",
                hint="NAME is the kms provider name in the EncryptionConfiguration",
            )
        sockets[name] = endpoint
    return sockets


def open_kms_services(backends_file: Path | None, sockets: Mapping[str, str]) -> KMSServices:
    """Open the backends file's backends and the named plugin sockets."""
    result = KMSServices()
    try:
        if backends_file is not None:
            from secretkit.backends import BackendKMSService, load_backends_file

            for name, backend in load_backends_file(backends_file).items():
                result.services[name] = BackendKMSService(backend)
                result._closers.append(backend.close)
        if sockets:
            from secretkit.kmsapi import GrpcKMSService

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
    config: EncryptionConfig, services: KMSServices
) -> tuple[dict[str, str], list[str]]:
    """(provider name -> current Status key_id, notes about providers we could not ask)."""
    key_ids: dict[str, str] = {}
    notes: list[str] = []
    for provider in kms_v2_providers(config):
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
