"""``secretkit-kms-plugin``: parse flags, env and config file, then run the daemon."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kms_plugin.config import (
    DEFAULT_LISTEN,
    LOG_FORMATS,
    LOG_LEVELS,
    PluginConfig,
    backend_flags,
    build_config,
    load_config_file,
    parse_listen,
)
from secretkit import __version__
from secretkit.backends.interface import describe_unexpected
from secretkit.errors import (
    BackendInvalidRequest,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
    ExitCode,
    SecretkitError,
    UsageError,
)

log = logging.getLogger("kms_plugin")

ENV_PREFIX = "SECRETKIT_PLUGIN_"

#: flags that map 1:1 onto config-file fields (the rest build the backend section)
_PLAIN = (
    "listen", "socket_mode", "socket_group", "health_addr", "health_addr_allow_remote",
    "status_ttl", "status_grace", "grace_period", "disable_v1beta1", "max_workers",
    "max_pending", "log_format", "log_level",
)


#: the convenience flags (click parameter names) of each backend kind. Several set the
#: same field (--vault-key and --aws-key both set backend.key), so a flag of another
#: kind than the chosen backend would be silently taken for this kind's setting.
BACKEND_FLAGS: dict[str, tuple[str, ...]] = {
    "local": ("local_kek_file",),
    "vault": ("vault_addr", "vault_mount", "vault_key", "vault_token_file"),
    "aws": ("aws_key", "aws_region", "aws_endpoint_url"),
}


def _env(name: str) -> str:
    return ENV_PREFIX + name.upper().replace("-", "_")


_F = TypeVar("_F", bound=Callable[..., Any])


def _opt(*decls: str, **kw: Any) -> Callable[[_F], _F]:
    """A click option that also reads SECRETKIT_PLUGIN_<NAME> and says so in --help."""
    name = decls[0].lstrip("-")
    kw.setdefault("envvar", _env(name))
    kw.setdefault("show_envvar", True)
    return click.option(*decls, **kw)


EPILOG = """\b
Examples:
  # development: a local KEK file (create one with: secretkit kek create FILE)
  secretkit-kms-plugin --listen unix:///run/kms/plugin.sock \\
      --backend local --local-kek-file /etc/secretkit/kek-1.bin
\b
  # OpenBao/Vault transit, health and metrics on loopback port 8787
  secretkit-kms-plugin --listen unix:///run/kms/plugin.sock --health-addr 127.0.0.1:8787 \\
      --backend vault --vault-addr https://vault:8200 --vault-key k8s-etcd \\
      --vault-token-file /etc/secretkit/vault-token
\b
  # on the node, before pointing kube-apiserver at it: validate, then a real round trip
  secretkit-kms-plugin --config /etc/secretkit/kms-plugin.yaml --check-backend
\b
Precedence: flags > SECRETKIT_PLUGIN_* environment > --config file > defaults.
Docs: docs/kms-plugin.md. Exit codes: 0 clean shutdown (or check passed),
2 invalid configuration, 1 --check-backend failed (the reason is printed).
"""


@click.command(
    name="secretkit-kms-plugin",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@_opt("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
      help="YAML file with any of the settings below (same names, '_' for '-') and a "
      "'backend:' section shaped like one backends-file entry.", envvar=_env("config"))
@_opt("--listen", metavar="ENDPOINT",
      help=f"Unix socket to serve: unix:///abs/path or unix:///@abstract-name. "
      f"[default: {DEFAULT_LISTEN}]")
@_opt("--socket", "socket_path", metavar="PATH",
      help="Shorthand for --listen: the absolute path of a filesystem socket, taken "
      "literally (%, ? and # need no escaping).", envvar=_env("socket"))
@_opt("--socket-mode", metavar="OCTAL",
      help="Permissions of the socket file; the apiserver runs as root. [default: 0600]")
@_opt("--socket-group", metavar="GROUP",
      help="Group (name or gid) to own the socket; use with --socket-mode 0660.")
@_opt("--health-addr", metavar="HOST:PORT",
      help="Serve /healthz, /livez and /metrics over HTTP here; loopback only unless "
      "--health-addr-allow-remote; port 0 picks a free port. [default: off]")
@_opt("--health-addr-allow-remote", is_flag=True, default=None,
      help="Allow a non-loopback --health-addr (exposes health and metrics).")
@_opt("--status-ttl", type=float, metavar="SECONDS",
      help="How long a successful Status probe (encrypt+decrypt round trip) is reused. "
      "[default: 30]")
@_opt("--status-grace", type=float, metavar="SECONDS",
      help="How long transient backend failures (unavailable, throttled, timeout) keep "
      "Status healthy with the last good key_id. [default: 60]")
@_opt("--grace-period", type=float, metavar="SECONDS",
      help="On SIGTERM/SIGINT, how long in-flight requests may finish. [default: 10]")
@_opt("--disable-v1beta1", is_flag=True, default=None,
      help="Serve only v2.KeyManagementService (no deprecated KMS v1 API).")
@_opt("--max-workers", type=int, metavar="N",
      help="Concurrent requests handled at once (thread pool). [default: 32]")
@_opt("--max-pending", type=int, metavar="N",
      help="Calls queued or running beyond which new calls are refused at once with "
      "RESOURCE_EXHAUSTED (logged and counted) instead of waiting. [default: 4096]")
@_opt("--log-format", type=click.Choice(LOG_FORMATS),
      help="json (one object per line) or text. [default: json]")
@_opt("--log-level", type=click.Choice(LOG_LEVELS), help="[default: info]")
@_opt("--backend", "backend_type", type=click.Choice(["local", "vault", "aws"]),
      help="Key backend kind; overrides the config file's backend type.",
      envvar=_env("backend"))
@_opt("--local-kek-file", multiple=True, metavar="FILE",
      help="local: a 32-byte KEK file; repeat for old keys (the first one encrypts).")
@_opt("--vault-addr", metavar="URL", help="vault: OpenBao/Vault address.")
@_opt("--vault-mount", metavar="PATH", help="vault: transit mount. [default: transit]")
@_opt("--vault-key", metavar="NAME", help="vault: transit key name.")
@_opt("--vault-token-file", metavar="FILE", help="vault: file holding the token.")
@_opt("--aws-key", metavar="KEY", help="aws: key id, ARN or alias/NAME.")
@_opt("--aws-region", metavar="REGION", help="aws: region.")
@_opt("--aws-endpoint-url", metavar="URL", help="aws: KMS endpoint (VPC endpoint, test server).")
@click.option("--check-config", is_flag=True,
              help="Validate the configuration, build the backend, print a summary and exit "
              "(does not contact the backend: see --check-backend).")
@click.option("--check-backend", is_flag=True,
              help="Like --check-config, then one real round trip to the backend (encrypt "
              "and decrypt a random 32-byte seed) and print the key_id Status would report; "
              "exit 1 with the reason when it fails.")
@click.version_option(__version__, prog_name="secretkit-kms-plugin")
def command(**params: Any) -> None:
    """Serve the Kubernetes KMS v2 API (and v1beta1) on a unix socket.

    kube-apiserver calls Status, Encrypt and Decrypt; the plugin wraps the
    apiserver's DEK seeds with a key held by a backend: a local KEK file, an
    OpenBao/Vault transit key, or an AWS KMS key. Status runs a real encrypt+decrypt
    round trip against the backend (cached for --status-ttl) and reports the
    backend's current key_id, so a backend key rotation reaches the apiserver within
    one TTL.
    """
    config = _config_from(params)
    if params["check_config"] or params["check_backend"]:
        _check(config, backend_round_trip=params["check_backend"])
        return
    from kms_plugin.app import run  # grpc and the backend SDKs only when serving

    run(config)


def _config_from(params: dict[str, Any]) -> PluginConfig:
    ctx = click.get_current_context()
    file_path: Path | None = params["config_file"]
    file_data = load_config_file(file_path) if file_path is not None else {}
    _check_backend_flags(params, file_data, file_path)
    overrides: dict[str, Any] = {}
    for name in _PLAIN:
        source = ctx.get_parameter_source(name)
        if params[name] is not None and source is not click.core.ParameterSource.DEFAULT:
            overrides[name] = params[name]
    if params["socket_path"]:
        if "listen" in overrides:
            raise UsageError("pass either --listen or --socket, not both", where="--socket")
        overrides["listen"] = socket_endpoint(params["socket_path"], _socket_origin(ctx))
    fragment = backend_flags(
        backend=params["backend_type"],
        local_kek_files=tuple(params["local_kek_file"]),
        vault_addr=params["vault_addr"], vault_mount=params["vault_mount"],
        vault_key=params["vault_key"], vault_token_file=params["vault_token_file"],
        aws_key=params["aws_key"], aws_region=params["aws_region"],
        aws_endpoint_url=params["aws_endpoint_url"],
    )
    return build_config(
        file_data, overrides, fragment,
        source=str(file_path) if file_path else "config",
        base_dir=file_path.resolve().parent if file_path else None,
    )


def socket_endpoint(path: str, where: str = "--socket") -> str:
    """The ``--listen`` endpoint for ``--socket PATH``: a filesystem socket, taken literally.

    ``"unix://" + PATH`` is not enough: the endpoint parser (like kube-apiserver's
    ``url.Parse``) reads ``%XX`` as an escape, ``?`` as a query and ``#`` as a
    fragment, so ``/run/a%41.sock`` would listen on ``/run/aA.sock``. Those three are
    percent-escaped, then the result goes through the one parser (so its limits and
    wording apply, ``where`` naming the flag). A relative path or one starting with
    ``/@`` or ``//@`` (which kube-apiserver reads as an abstract socket) is refused:
    the endpoint would not name the file the user gave. So are ``.``/``..`` components
    and paths that are not UTF-8 (the parser's rules).
    """
    if not path.startswith("/"):
        raise UsageError(
            f"--socket needs an absolute path, got {path!r}",
            where=where,
            hint="kube-apiserver dials the endpoint's absolute path, e.g. /run/kms/plugin.sock",
        )
    # "//@x.sock" is the same file as "/@x.sock", and its only endpoint
    # (unix:///@x.sock) is just as much an abstract socket
    collapsed = "/" + path.lstrip("/")
    if collapsed.startswith("/@"):
        raise UsageError(
            f"--socket {path!r}: kube-apiserver reads a path starting with /@ as an abstract "
            "socket, not as this file",
            where=where,
            hint=f"for the abstract socket use --listen unix://{collapsed}; "
            "for a file pick another directory",
        )
    escaped = path
    for char, escape in (("%", "%25"), ("?", "%3F"), ("#", "%23")):  # % first
        escaped = escaped.replace(char, escape)
    return parse_listen("unix://" + escaped, where).endpoint


def _socket_origin(ctx: click.Context) -> str:
    """``--socket``, or its environment variable when the value came from there."""
    if ctx.get_parameter_source("socket_path") is click.core.ParameterSource.ENVIRONMENT:
        return f"environment variable {_envvar(ctx, 'socket_path')}"
    return "--socket"


def _check_backend_flags(
    params: dict[str, Any], file_data: dict[str, Any], file_path: Path | None
) -> None:
    """Refuse a backend flag (or its env variable) that belongs to another backend kind.

    The kind is the one the merge uses: ``--backend`` / ``SECRETKIT_PLUGIN_BACKEND``,
    else the config file's ``backend.type``. Without any kind there is nothing to
    compare against (the merge then reports that no backend is configured); an
    unknown kind is left to the backend's own validation.
    """
    ctx = click.get_current_context()
    kind = params["backend_type"]
    if kind is not None:
        kind_from = _origin(ctx, "backend_type")
    else:
        section = file_data.get("backend")
        kind = section.get("type") if isinstance(section, dict) else None
        kind_from = f"{file_path}:backend.type"
    if not isinstance(kind, str) or kind not in BACKEND_FLAGS:
        return
    for flag_kind, names in BACKEND_FLAGS.items():
        if flag_kind == kind:
            continue
        for name in names:
            if params[name] in (None, ()):
                continue
            flag = _flag(name)
            origin = _origin(ctx, name)
            # the same setting under the chosen kind, e.g. --aws-key -> --vault-key
            same = f"{kind}_{name.removeprefix(flag_kind + '_')}"
            instead = (
                f"for the {kind} backend use {_flag(same)}; " if same in BACKEND_FLAGS[kind] else ""
            )
            remove = f"unset {_envvar(ctx, name)}" if origin != flag else f"drop {flag}"
            raise UsageError(
                f"{flag} is a setting of the {flag_kind} backend, but the backend is {kind} "
                f"(from {kind_from})",
                where=origin,
                hint=f"{instead}{remove}, or choose the {flag_kind} backend "
                f"(--backend {flag_kind})",
            )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _envvar(ctx: click.Context, name: str) -> str:
    """The environment variable click reads for parameter ``name``."""
    param = next(p for p in ctx.command.params if p.name == name)
    return str(param.envvar)


def _origin(ctx: click.Context, name: str) -> str:
    """Where a parameter's value came from: its environment variable, or its flag."""
    if ctx.get_parameter_source(name) is click.core.ParameterSource.ENVIRONMENT:
        return f"environment variable {_envvar(ctx, name)}"
    if name == "backend_type":
        return "--backend"
    return _flag(name)


class BackendCheckFailed(SecretkitError):
    """``--check-backend``: the backend did not complete a round trip (exit 1)."""

    exit_code = ExitCode.FINDINGS


#: what to look at, by the class of error the round trip raised
_CHECK_HINTS: tuple[tuple[type[SecretkitError], str], ...] = (
    (BackendUnavailable, "is the backend reachable from this node (address, port, TLS CA, "
     "proxy, firewall)? The plugin would report unhealthy and the apiserver would not "
     "write Secrets"),
    (BackendTimeout, "the backend did not answer in time: check the network path and the "
     "backend's load (timeout_seconds in the backend section)"),
    (BackendPermissionDenied, "the credentials were refused or lack permission: check the "
     "token/role and that its policy allows encrypt and decrypt on this key"),
    (BackendInvalidRequest, "the backend refused the request: does the key exist, under "
     "this name and mount/region, and is it usable for encryption?"),
)


def _check(config: PluginConfig, *, backend_round_trip: bool = False) -> None:
    import time

    from kms_plugin.app import build_backend_for
    from kms_plugin.service import PluginService

    backend = build_backend_for(config)
    try:
        click.echo(f"listen:       {config.listen.endpoint}")
        click.echo(f"backend:      {backend.kind}")
        health = config.health_addr
        click.echo(f"health:       {f'{health.host}:{health.port}' if health else 'off'}")
        click.echo(f"v1beta1:      {'disabled' if config.disable_v1beta1 else 'enabled'}")
        click.echo("configuration OK")
        if not backend_round_trip:
            click.echo("backend not contacted (use --check-backend for a round trip)")
            return
        started = time.perf_counter()
        try:
            key_id = PluginService(backend).check_backend()
        except SecretkitError as exc:
            hint = next((h for cls, h in _CHECK_HINTS if isinstance(exc, cls)), exc.hint)
            raise BackendCheckFailed(
                f"backend check failed: {exc.what}",
                where=exc.where or f"{backend.kind} backend", hint=hint,
            ) from None
        except Exception as exc:  # an SDK error a backend did not translate
            raise BackendCheckFailed(
                f"backend check failed: {describe_unexpected(exc)}",
                where=f"{backend.kind} backend",
            ) from None
        took = (time.perf_counter() - started) * 1000
        click.echo(f"key_id:       {key_id}")
        click.echo(f"backend OK (encrypt + decrypt of a random seed in {took:.0f} ms)")
    finally:
        backend.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command; configuration errors exit 2, others 1."""
    try:
        command.main(args=argv, prog_name="secretkit-kms-plugin", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    except SecretkitError as exc:
        click.echo(exc.diagnostics(), err=True)
        if isinstance(exc, BackendCheckFailed):
            sys.exit(1)
        # anything else wrong before serving is a configuration problem
        sys.exit(exc.exit_code if exc.exit_code != 1 else 2)
    sys.exit(0)
