"""How to reach etcd: endpoints, TLS files, credentials, timeout (etcdctl-compatible)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from secretkit.core.durations import parse_seconds
from secretkit.errors import ConfigError, redact_urls

#: etcdctl's default endpoint
DEFAULT_ENDPOINT = "http://127.0.0.1:2379"

def parse_duration(text: str, *, where: str = "duration") -> float:
    """Plain seconds (``5``) or a Go duration (``5s``, ``500ms``, ``1m30s``), as etcdctl takes.

    One parser for every duration (:func:`secretkit.core.durations.parse_seconds`):
    the value must be positive, finite and within Go's range.
    """
    try:
        return parse_seconds(text)
    except ValueError as exc:
        raise ConfigError(
            str(exc),
            where=where,
            hint="use a positive Go duration such as 5s, 500ms or 1m30s",
        ) from None


def split_user(value: str) -> tuple[str, str | None]:
    """``user`` or ``user:password`` (etcdctl's ``--user`` form) -> (user, password)."""
    user, sep, password = value.partition(":")
    return user, (password if sep else None)


def _as_endpoints(value: str | Iterable[str]) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(e.strip() for e in items if e and e.strip())


@dataclass(frozen=True)
class EtcdConfig:
    """Connection settings for :class:`~secretkit.etcd.EtcdClient`.

    ``endpoints`` are tried in order; an ``https://`` endpoint or a ``cacert`` turns
    TLS on, ``cert``/``key`` add a client certificate. ``user``/``password`` use
    etcd's own authentication. ``timeout`` bounds every request, in seconds.
    """

    #: normalised to a tuple; a comma-separated string is accepted too
    endpoints: Sequence[str] = (DEFAULT_ENDPOINT,)
    cacert: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 5.0

    def __post_init__(self) -> None:
        endpoints = _as_endpoints(self.endpoints)
        if not endpoints:
            raise ConfigError(
                "no etcd endpoint given",
                where="endpoints",
                hint="e.g. --endpoints https://127.0.0.1:2379",
            )
        for endpoint in endpoints:
            if "@" in endpoint.split("://", 1)[-1].split("/", 1)[0]:
                # gRPC would take "user:pass@host" as a host name and quote it back
                raise ConfigError(
                    "credentials inside an etcd endpoint are not supported",
                    where=redact_urls(endpoint),
                    hint="pass the user with --user and the password with --password-file "
                    "or $ETCDCTL_PASSWORD",
                )
        object.__setattr__(self, "endpoints", endpoints)
        for name in ("cacert", "cert", "key"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if (self.cert is None) != (self.key is None):
            raise ConfigError(
                "a client certificate needs both --cert and --key",
                where="cert/key",
                hint="pass both files (or neither)",
            )
        if self.password is not None and not self.user:
            raise ConfigError(
                "a password was given without a user", where="user", hint="set --user"
            )
        if not self.timeout > 0 or math.isinf(self.timeout):
            raise ConfigError(f"timeout must be positive, got {self.timeout}", where="timeout")

    @property
    def uses_tls(self) -> bool:
        """True when the connection is TLS (an https endpoint or a CA file)."""
        return (
            self.cacert is not None
            or self.cert is not None
            or any(e.startswith("https://") for e in self.endpoints)
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> EtcdConfig:
        """Settings from ``ETCDCTL_*`` variables, with ``overrides`` (not None) winning.

        Honours ``ETCDCTL_ENDPOINTS`` (comma-separated), ``ETCDCTL_CACERT``,
        ``ETCDCTL_CERT``, ``ETCDCTL_KEY``, ``ETCDCTL_USER`` (``user`` or
        ``user:password``), ``ETCDCTL_PASSWORD``, ``ETCDCTL_COMMAND_TIMEOUT`` and
        ``ETCDCTL_DIAL_TIMEOUT`` (Go durations; the longer one bounds each request).
        """
        environ = os.environ if env is None else env
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown EtcdConfig fields: {sorted(unknown)}")
        values: dict[str, Any] = {}
        if environ.get("ETCDCTL_ENDPOINTS"):
            values["endpoints"] = _as_endpoints(environ["ETCDCTL_ENDPOINTS"])
        for name in ("cacert", "cert", "key"):
            var = f"ETCDCTL_{name.upper()}"
            if environ.get(var):
                values[name] = Path(environ[var])
        if environ.get("ETCDCTL_USER"):
            user, password = split_user(environ["ETCDCTL_USER"])
            values["user"] = user
            if password is not None:
                values["password"] = password
        if environ.get("ETCDCTL_PASSWORD"):
            values["password"] = environ["ETCDCTL_PASSWORD"]
        timeouts = [
            parse_duration(environ[var], where=var)
            for var in ("ETCDCTL_COMMAND_TIMEOUT", "ETCDCTL_DIAL_TIMEOUT")
            if environ.get(var)
        ]
        if timeouts:
            values["timeout"] = max(timeouts)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
