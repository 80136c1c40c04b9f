"""etcdctl-compatible connection flags shared by every command that reads etcd."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from secretkit.cli.params import Duration

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = [
    click.option(
        "--endpoints",
        help="Comma-separated etcd endpoints (default: $ETCDCTL_ENDPOINTS or http://127.0.0.1:2379).",
    ),
    click.option(
        "--cacert",
        type=click.Path(dir_okay=False),
        help="CA bundle for etcd's TLS [$ETCDCTL_CACERT].",
    ),
    click.option(
        "--cert",
        type=click.Path(dir_okay=False),
        help="Client certificate for etcd (needs --key) [$ETCDCTL_CERT].",
    ),
    click.option(
        "--key",
        type=click.Path(dir_okay=False),
        help="Client key for etcd (needs --cert) [$ETCDCTL_KEY].",
    ),
    click.option("--user", help="etcd user (user or user:password) [$ETCDCTL_USER]."),
    click.option(
        "--password",
        help="etcd password; visible to other local users in the process list: prefer "
        "--password-file or $ETCDCTL_PASSWORD.",
    ),
    click.option(
        "--password-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Read the etcd password from the first line of this file.",
    ),
    click.option(
        "--dial-timeout",
        type=Duration(),
        default=None,
        help="How long to wait for etcd: a Go duration (5s, 500ms) [default: 5s, or "
        "$ETCDCTL_DIAL_TIMEOUT].",
    ),
]


def etcd_options(func: F) -> F:
    """Add the etcdctl-style flags (``--endpoints``, ``--cacert``, ``--cert``, ...)."""
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


def etcd_config_from(params: dict[str, Any]) -> Any:
    """Build an :class:`secretkit.etcd.EtcdConfig` from the flags plus ETCDCTL_* env.

    Every problem is a usage error (exit 2) raised before etcd is dialled: a TLS
    file that is missing, not a regular file or too large, ``--cert`` without
    ``--key``, a password from two places.
    """
    from secretkit.cli.params import read_secret_file
    from secretkit.errors import UsageError
    from secretkit.etcd import EtcdConfig
    from secretkit.etcd.config import split_user

    overrides: dict[str, Any] = {"endpoints": params.get("endpoints") or None}
    for name in ("cacert", "cert", "key"):
        if params.get(name):
            overrides[name] = Path(params[name])
    if params.get("user"):
        overrides["user"], overrides["password"] = split_user(params["user"])
    if params.get("password") and params.get("password_file"):
        raise UsageError(
            "pass either --password or --password-file", where="--password-file"
        )
    if params.get("password"):
        overrides["password"] = params["password"]
    if params.get("password_file"):
        overrides["password"] = read_secret_file(
            params["password_file"], what="the --password-file"
        )
    if params.get("dial_timeout"):
        overrides["timeout"] = params["dial_timeout"]
    config = EtcdConfig.from_env(**overrides)  # ConfigError (exit 2) for a bad combination
    for name, path in (("--cacert", config.cacert), ("--cert", config.cert), ("--key", config.key)):
        if path is not None:
            check_pem_file(path, what=f"the {name} file")
    return config


def check_pem_file(path: Path, *, what: str) -> None:
    """A usage error unless ``path`` is a readable, bounded, PEM-looking regular file.

    gRPC and ssl would otherwise fail later with a handshake error that does not
    name the file.
    """
    from secretkit.errors import UsageError
    from secretkit.fileio import read_file

    data = read_file(path, what=what, max_bytes=1024 * 1024)
    if b"-----BEGIN " not in data:
        raise UsageError(
            f"{what} is not PEM",
            where=str(path),
            hint="pass a PEM file (-----BEGIN CERTIFICATE----- or -----BEGIN ... PRIVATE KEY-----)",
        )
