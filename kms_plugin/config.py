"""The plugin's configuration: a frozen model, the YAML file and the merge rules.

Precedence, highest first: command-line flags, ``SECRETKIT_PLUGIN_*`` environment
variables, the ``--config`` YAML file, built-in defaults. The ``backend`` section
uses exactly the schema of one backends-file entry (``secretkit.backends.build_backend``).
Every problem is a :class:`~secretkit.errors.UsageError` (exit code 2) naming the
field or flag.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretkit.backends._schema import Definition
from secretkit.core.encryption_config.endpoint import UnixEndpoint, parse_endpoint
from secretkit.errors import ConfigError, UsageError
from secretkit.fileio import read_yaml_file
from secretkit.loopback import parse_host_port

#: every field a config file may hold (flag names with ``_`` instead of ``-``)
FILE_FIELDS = (
    "listen", "socket_mode", "socket_group", "health_addr", "health_addr_allow_remote",
    "status_ttl", "status_grace", "grace_period", "disable_v1beta1", "max_workers",
    "max_pending", "log_format", "log_level", "backend",
)
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_LISTEN = "unix:///var/run/secretkit/kms-plugin.sock"


#: the plugin listens on exactly the endpoints kube-apiserver can dial (one parser)
ListenAddress = UnixEndpoint


@dataclass(frozen=True)
class HealthAddress:
    """Where the HTTP health/metrics server listens (port 0: pick a free one)."""

    host: str
    port: int


@dataclass(frozen=True)
class PluginConfig:
    """Everything the daemon needs, validated. Defaults are the documented ones."""

    backend: Mapping[str, Any] = field(repr=False)
    listen: ListenAddress = field(default_factory=lambda: parse_listen(DEFAULT_LISTEN, "default"))
    socket_mode: int = 0o600
    socket_group: str | None = None
    health_addr: HealthAddress | None = None
    status_ttl: float = 30.0
    status_grace: float = 60.0
    grace_period: float = 10.0
    disable_v1beta1: bool = False
    max_workers: int = 32
    #: calls queued or running beyond which new calls get RESOURCE_EXHAUSTED
    max_pending: int = 4096
    log_format: str = "json"
    log_level: str = "info"
    #: relative file paths in ``backend`` resolve here (the config file's directory)
    base_dir: Path | None = None


def parse_listen(value: str, where: str) -> ListenAddress:
    """Parse a listen address: exactly the endpoints kube-apiserver can dial.

    ``unix:///abs/path`` or ``unix:///@name`` (abstract); the rules and wording are
    :func:`secretkit.core.encryption_config.endpoint.parse_endpoint`'s, as a :class:`UsageError`.
    """
    try:
        return parse_endpoint(value, where=where)
    except ConfigError as exc:
        raise UsageError(exc.what, where=exc.where, hint=exc.hint) from None


def parse_health_addr(value: str, *, allow_remote: bool, where: str) -> HealthAddress | None:
    """Parse ``HOST:PORT`` (``[v6]:PORT``) or ``off``; refuse non-loopback hosts by default."""
    if value.strip().lower() in ("", "off", "none", "disabled"):
        return None
    host, port = parse_host_port(value, allow_remote=allow_remote, where=where,
                                 serves="health and metrics",
                                 allow_flag="--health-addr-allow-remote",
                                 expected="HOST:PORT or 'off'")
    return HealthAddress(host, port)


def parse_mode(value: str | int, where: str) -> int:
    """Parse an octal file mode such as ``0600`` or ``660``."""
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    elif isinstance(value, str):
        try:
            mode = int(value, 8)
        except ValueError:
            raise UsageError(f"expected an octal mode like 0600, got {value!r}",
                             where=where) from None
    else:
        raise UsageError("expected an octal mode like \"0600\"", where=where)
    if mode & ~0o777:
        raise UsageError(f"mode {oct(mode)} has bits outside 0777", where=where)
    if mode & 0o600 != 0o600:
        raise UsageError(
            "socket mode must give its owner read and write", where=where,
            hint="0600 (owner only) or 0660 with --socket-group",
        )
    return mode


def load_config_file(path: Path) -> dict[str, Any]:
    """Read the YAML config file into a plain mapping (unknown fields are errors)."""
    where = str(path)
    data = read_yaml_file(path, what="config file", error=UsageError)
    if data is None:
        return {}
    # the one strict mapping reader (backends files use it too): a mapping with string
    # field names, unknown fields refused with the allowed ones named
    try:
        definition = Definition(data, where)
        definition.allow(FILE_FIELDS)
    except ConfigError as exc:  # the plugin's own flags-and-file errors are usage errors
        raise UsageError(exc.what, where=exc.where, hint=exc.hint) from None
    return dict(definition.data)


def _number(value: Any, where: str, *, minimum: float = 0.0) -> float:
    """Seconds: a number or a Go duration string (``30s``, ``1m``), finite, > ``minimum``.

    The one duration parser (:mod:`secretkit.core.durations`) refuses ``nan``, ``inf`` and
    values beyond Go's range, which a TTL compared with ``<=`` would let through.
    """
    from secretkit.core.durations import parse_seconds

    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UsageError(f"expected a number of seconds > {minimum:g}", where=where)
    try:
        return parse_seconds(str(value), minimum=minimum)
    except ValueError as exc:
        raise UsageError(
            f"expected a number of seconds > {minimum:g}: {exc}",
            where=where,
            hint="use seconds (30) or a Go duration (30s, 1m)",
        ) from None


def _boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
        return value.lower() in ("1", "true", "yes")
    raise UsageError("expected true or false", where=where)


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise UsageError(f"expected one of {', '.join(choices)}", where=where)
    return value.lower()


def build_config(
    file_data: Mapping[str, Any],
    overrides: Mapping[str, Any],
    backend_overrides: Mapping[str, Any],
    *,
    source: str = "config",
    base_dir: Path | None = None,
) -> PluginConfig:
    """Merge defaults <- file <- overrides (flags/env) and validate every field.

    ``backend_overrides`` come from the convenience flags (``--backend``,
    ``--vault-addr``...): they are merged into the file's ``backend`` section, or
    replace it when ``type`` changes.
    """
    merged: dict[str, Any] = {k: v for k, v in file_data.items() if v is not None}
    merged.update({k: v for k, v in overrides.items() if v is not None})

    def where(name: str) -> str:
        if name in overrides and overrides[name] is not None:
            return "--" + name.replace("_", "-")
        return f"{source}:{name}"

    kwargs: dict[str, Any] = {"base_dir": base_dir}
    if "listen" in merged:
        if not isinstance(merged["listen"], str):
            raise UsageError("expected a string", where=where("listen"))
        kwargs["listen"] = parse_listen(merged["listen"], where("listen"))
    if "socket_mode" in merged:
        kwargs["socket_mode"] = parse_mode(merged["socket_mode"], where("socket_mode"))
    if "socket_group" in merged:
        kwargs["socket_group"] = str(merged["socket_group"])
    allow_remote = _boolean(merged.get("health_addr_allow_remote", False),
                            where("health_addr_allow_remote"))
    if "health_addr" in merged:
        kwargs["health_addr"] = parse_health_addr(
            str(merged["health_addr"]), allow_remote=allow_remote, where=where("health_addr")
        )
    for name in ("status_ttl", "status_grace", "grace_period"):
        if name in merged:
            kwargs[name] = _number(merged[name], where(name))
    if "disable_v1beta1" in merged:
        kwargs["disable_v1beta1"] = _boolean(merged["disable_v1beta1"], where("disable_v1beta1"))
    if "max_workers" in merged:
        value = merged["max_workers"]
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024:
            raise UsageError("expected an integer from 1 to 1024", where=where("max_workers"))
        kwargs["max_workers"] = value
    if "max_pending" in merged:
        value = merged["max_pending"]
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
            raise UsageError("expected an integer from 1 to 1000000", where=where("max_pending"))
        kwargs["max_pending"] = value
    if "log_format" in merged:
        kwargs["log_format"] = _choice(merged["log_format"], LOG_FORMATS, where("log_format"))
    if "log_level" in merged:
        kwargs["log_level"] = _choice(merged["log_level"], LOG_LEVELS, where("log_level"))
    kwargs["backend"] = _merge_backend(
        file_data.get("backend"), backend_overrides, f"{source}:backend"
    )
    return PluginConfig(**kwargs)


def _merge_backend(
    file_backend: Any, flags: Mapping[str, Any], where: str
) -> dict[str, Any]:
    if file_backend is not None and not isinstance(file_backend, Mapping):
        raise UsageError("the backend section must be a mapping", where=where)
    base: dict[str, Any] = dict(file_backend or {})
    flags = {k: v for k, v in flags.items() if v not in (None, (), [])}
    new_type = flags.get("type")
    if new_type is not None and base.get("type") not in (None, new_type):
        base = {}  # switching backend type on the command line: the file's fields don't apply
    for key, value in flags.items():
        # a section given by a flag (e.g. auth from --vault-token-file) replaces the
        # file's: merging an approle section with a token file makes neither valid
        base[key] = value
    if not base.get("type"):
        raise UsageError(
            "no backend configured", where=where,
            hint="pass --backend local --local-kek-file FILE (or vault/aws), "
            "or a backend section in --config",
        )
    return base


def backend_flags(
    *,
    backend: str | None,
    local_kek_files: tuple[str, ...],
    vault_addr: str | None,
    vault_mount: str | None,
    vault_key: str | None,
    vault_token_file: str | None,
    aws_key: str | None,
    aws_region: str | None,
    aws_endpoint_url: str | None,
) -> dict[str, Any]:
    """Turn the convenience flags into a backend definition fragment."""
    out: dict[str, Any] = {}
    if backend:
        out["type"] = backend
    if local_kek_files:
        out["keys"] = [{"kek_file": os.fspath(f)} for f in local_kek_files]
    for key, value in (("address", vault_addr), ("mount", vault_mount), ("key", vault_key)):
        if value:
            out[key] = value
    if vault_token_file:
        out["auth"] = {"method": "token", "token_file": vault_token_file}
    for key, value in (("key", aws_key), ("region", aws_region),
                       ("endpoint_url", aws_endpoint_url)):
        if value:
            out[key] = value
    return out
