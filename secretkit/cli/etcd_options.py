"""etcdctl-compatible connection flags shared by every command that reads etcd."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = [
    click.option(
        "--endpoints",
        help="Comma-separated etcd endpoints (default: $ETCDCTL_ENDPOINTS or http://127.0.0.1:2379).",
    ),
    click.option("--cacert", type=click.Path(dir_okay=False), help="CA bundle for etcd's TLS."),
    click.option("--cert", type=click.Path(dir_okay=False), help="Client certificate for etcd."),
    click.option("--key", type=click.Path(dir_okay=False), help="Client key for etcd."),
    click.option("--user", help="etcd user (user or user:password)."),
    click.option("--password", help="etcd password (prefer $ETCDCTL_PASSWORD)."),
    click.option(
        "--dial-timeout",
        default=None,
        help="How long to wait for etcd: a Go duration (5s, 500ms) or seconds.",
    ),
]


def etcd_options(func: F) -> F:
    """Add the etcdctl-style flags (``--endpoints``, ``--cacert``, ``--cert``, ...)."""
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


def etcd_config_from(params: dict[str, Any]) -> Any:
    """Build an :class:`secretkit.etcd.EtcdConfig` from the flags plus ETCDCTL_* env."""
    from secretkit.etcd import EtcdConfig
    from secretkit.etcd.config import parse_duration, split_user

    overrides: dict[str, Any] = {"endpoints": params.get("endpoints") or None}
    for name in ("cacert", "cert", "key"):
        if params.get(name):
            overrides[name] = Path(params[name])
    if params.get("user"):
        overrides["user"], overrides["password"] = split_user(params["user"])
    if params.get("password"):
        overrides["password"] = params["password"]
    if params.get("dial_timeout"):
        overrides["timeout"] = parse_duration(params["dial_timeout"], where="--dial-timeout")
    return EtcdConfig.from_env(**overrides)
