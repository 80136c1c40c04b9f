"""The ``secretkit`` command: a thin click parser with exactly one error boundary.

Command groups live in their own modules and are imported lazily, so that
``secretkit --help`` stays fast and a broken optional dependency only affects the
command that needs it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import platform
import sys
from typing import Any

import click

from secretkit import __version__
from secretkit.errors import SecretkitError
from secretkit.sdk_logging import cap_sdk_loggers

#: command name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "config": "secretkit.cli.config_cmd:config",
    "inspect": "secretkit.cli.inspect_cmd:inspect_cmd",
    "audit": "secretkit.cli.audit_cmd:audit",
    "reencrypt": "secretkit.cli.reencrypt_cmd:reencrypt",
    "rotate": "secretkit.cli.rotate_cmd:rotate",
    "kms": "secretkit.cli.kms_cmd:kms",
    "encryption": "secretkit.cli.encryption_cmd:encryption",
    "sandbox": "secretkit.cli.sandbox_cmd:sandbox",
    "monitor": "secretkit.cli.monitor_cmd:monitor",
}


def _command_available(name: str) -> bool:
    module_name = COMMANDS[name].split(":", 1)[0]
    return importlib.util.find_spec(module_name) is not None


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if _command_available(n))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not _command_available(cmd_name):
            return None
        module_name, attr = target.split(":", 1)
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):  # pragma: no cover - programming error
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output; -vv also shows tracebacks.")
@click.version_option(__version__, prog_name="secretkit")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Protect the Secrets your Kubernetes cluster keeps in etcd.

    \b
    Typical runbook:
      secretkit config generate --provider secretbox -f enc.yaml  # write a config
      secretkit config validate enc.yaml                        # check it
      secretkit audit --endpoints https://127.0.0.1:2379 ...    # what does etcd hold?
      secretkit reencrypt                                       # rewrite every Secret
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # SDK loggers print request and response bodies at debug level (a KMS Decrypt
    # response holds a DEK seed): never below INFO, whatever -v says
    cap_sdk_loggers(max(level, logging.INFO))
    logging.getLogger("secretkit").debug(
        "secretkit %s on Python %s", __version__, platform.python_version()
    )


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI and map every error to a message and an exit code."""
    # gRPC's C core logs TLS handshake failures itself (I1123 ... lines) before we can
    # explain them; it reads this before grpc is first imported (commands import lazily)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    verbose = sum(a.count("v") for a in (argv or sys.argv[1:]) if a.startswith("-v")) + sum(
        1 for a in (argv or sys.argv[1:]) if a == "--verbose"
    )
    try:
        rc = cli.main(args=argv, prog_name="secretkit", standalone_mode=False)
    except SecretkitError as exc:
        if verbose >= 2:
            import traceback

            traceback.print_exc()
        click.echo(exc.diagnostics(), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    # with standalone_mode=False, ctx.exit(n) comes back as the return value
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
