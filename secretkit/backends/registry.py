"""Build key backends from definitions: one schema for plugin configs and backends files.

A backends file maps each KMS provider name of an EncryptionConfiguration to the
backend that holds its key (see docs/backends.md)::

    kms-prod:
      type: local
      keys: [{kek_file: kek-1.bin}]

Validation is strict: unknown fields are errors naming their path, because a typo
in a key setting must never silently fall back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from secretkit.backends._schema import Definition
from secretkit.backends.interface import KeyBackend
from secretkit.backends.local import LocalBackend, LocalKey, read_kek_file
from secretkit.errors import ConfigError
from secretkit.fileio import read_yaml_file

BACKEND_TYPES = ("local", "vault", "aws")


def build_backend(
    definition: Mapping[str, Any], *, where: str, base_dir: Path | None = None
) -> KeyBackend:
    """Validate ``definition`` and build its backend.

    ``where`` names the definition in errors (e.g. ``backends.yaml:kms-prod``);
    relative file paths resolve against ``base_dir`` (default: the working directory).
    """
    d = Definition(definition, where, base_dir)
    kind = d.req_str("type")
    if kind == "local":
        return _build_local(d)
    if kind == "vault":
        from secretkit.backends.vault import build_vault_backend  # hvac only when used

        return build_vault_backend(d)
    if kind == "aws":
        from secretkit.backends.aws import build_aws_backend  # boto3 only when used

        return build_aws_backend(d)
    raise ConfigError(
        f"unknown backend type {kind!r}",
        where=d.path_of("type"),
        hint=f"use one of: {', '.join(BACKEND_TYPES)}",
    )


def _build_local(d: Definition) -> LocalBackend:
    d.allow({"type", "keys"})
    keys = []
    for item in d.seq("keys", required=True):
        item.allow({"kek_file", "key_id"})
        kek = read_kek_file(item.req_file("kek_file"))
        try:
            keys.append(LocalKey(kek, item.str_("key_id") or ""))
        except ConfigError as exc:
            raise ConfigError(exc.what, where=item.where, hint=exc.hint) from None
    try:
        return LocalBackend(keys)
    except ConfigError as exc:
        raise ConfigError(exc.what, where=d.path_of("keys"), hint=exc.hint) from None


def load_backends_file(path: Path) -> dict[str, KeyBackend]:
    """Load a backends file: ``{kms provider name: KeyBackend}``.

    Relative paths inside resolve against the file's directory. On any error the
    backends already built are closed before the ConfigError propagates.
    """
    where = str(path)
    data = read_yaml_file(path, what="backends file", error=ConfigError)
    if not isinstance(data, Mapping) or not data:
        raise ConfigError(
            "a backends file must be a non-empty mapping of kms provider name to backend",
            where=where,
            hint="see docs/backends.md for the schema",
        )
    base_dir = path.resolve().parent
    built: dict[str, KeyBackend] = {}
    try:
        for name, definition in data.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(
                    f"provider names must be non-empty strings, got {name!r}", where=where
                )
            built[name] = build_backend(definition, where=f"{where}:{name}", base_dir=base_dir)
    except BaseException:
        for backend in built.values():
            backend.close()
        raise
    return built
