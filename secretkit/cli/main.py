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
import traceback
from typing import Any

import click

from secretkit import __version__
from secretkit.cli.output import (
    CliState,
    cli_state,
    emit_json,
    error_document,
    output_from_argv,
)
from secretkit.errors import ExitCode, SecretkitError, error_object
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
    "kek": "secretkit.cli.kek_cmd:kek",
    "monitor": "secretkit.cli.monitor_cmd:monitor",
    "apiserver": "secretkit.cli.apiserver_cmd:apiserver",
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
        return _with_global_options(command)


def _add_verbosity(ctx: click.Context, param: click.Parameter, value: int) -> int:
    """``-v`` counts wherever it is given: before or after the subcommand."""
    state = cli_state(ctx)
    if value and state is not None:
        state.verbose += value
        _configure_logging(state.verbose)
    return value


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger().setLevel(level)
    # SDK loggers print request and response bodies at debug level (a KMS Decrypt
    # response holds a DEK seed): never below INFO, whatever -v says
    cap_sdk_loggers(max(level, logging.INFO))


#: the global flags every subcommand accepts too (kubectl and etcdctl habits)
_VERBOSE_HELP = "More log output; -vv also shows tracebacks."


def _with_global_options(command: click.Command) -> click.Command:
    """Let ``command`` (and its subcommands) take ``-v`` after the subcommand name."""
    if getattr(command, "_secretkit_globals", False):
        return command
    taken = {opt for p in command.params for opt in getattr(p, "opts", ())}
    if not {"-v", "--verbose"} & taken:
        command.params.append(
            click.Option(
                ["-v", "--verbose"],
                count=True,
                expose_value=False,
                callback=_add_verbosity,
                hidden=True,
                help=_VERBOSE_HELP,
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_global_options(sub)
    command._secretkit_globals = True  # type: ignore[attr-defined]
    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v", "--verbose", count=True, expose_value=False, callback=_add_verbosity, help=_VERBOSE_HELP
)
@click.version_option(__version__, prog_name="secretkit")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Protect the Secrets your Kubernetes cluster keeps in etcd.

    \b
    Typical runbook:
      secretkit config generate --provider secretbox -f enc.yaml  # write a config
      secretkit config validate enc.yaml                        # check it
      secretkit audit --endpoints https://127.0.0.1:2379 ...    # what does etcd hold?
      secretkit reencrypt                                       # rewrite every Secret

    -v works before or after the subcommand. With -o json every outcome, errors
    included, is one JSON document on stdout. Exit codes: 0 clean, 1 findings,
    2 usage or bad input, 3 refused by a safety gate, 4 data at risk (values no
    provider can read), 5 could not check (etcd, the Kubernetes API, a KMS plugin,
    Vault/AWS unreachable or failing); see docs/user-guide.md.
    """
    state = ctx.ensure_object(CliState)
    _configure_logging(state.verbose)
    logging.getLogger("secretkit").debug(
        "secretkit %s on Python %s", __version__, platform.python_version()
    )


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI and map every outcome to an exit code (the one boundary).

    With ``-o json`` every failure is one JSON error document on stdout (unless the
    command already printed its document, e.g. an audit report with findings), and
    the human message still goes to stderr.
    """
    # gRPC's C core logs TLS handshake failures itself (I1123 ... lines) before we can
    # explain them; it reads this before grpc is first imported (commands import lazily)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    args = list(sys.argv[1:] if argv is None else argv)
    # known before click parses anything, so a usage error gets a JSON answer too
    state = CliState(output=output_from_argv(args))
    sys.exit(_run(args, state))


def _run(args: list[str], state: CliState) -> int:
    try:
        rc = cli.main(args=args, prog_name="secretkit", standalone_mode=False, obj=state)
    except SecretkitError as exc:
        if state.verbose >= 2:
            traceback.print_exc()
        return _fail(state, exc.to_json(), exc.diagnostics(), exc.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        return _fail(state, _plain_error("aborted"), "aborted", _INTERRUPTED)
    except click.ClickException as exc:
        # every click error (bad flag, bad value, missing file) is a usage error: exit 2,
        # told in the same what/where/hint shape as every other error
        if _is_no_args_help(exc) and not state.json:
            exc.show()  # a group run without its command: its help is the answer
            return int(ExitCode.USAGE)
        error = _click_error(exc)
        return _fail(state, error, _diagnostics(error), ExitCode.USAGE)
    except KeyboardInterrupt:
        return _fail(state, _plain_error("interrupted"), "interrupted", _INTERRUPTED)
    except Exception as exc:
        # a bug: say so without the exception's text (it may quote data), traceback on -vv
        if state.verbose >= 2:
            traceback.print_exc()
        where = _origin(exc)
        what = f"internal error ({type(exc).__name__}); this is a bug, please report it"
        hint = "run again with -vv for the traceback"
        error = error_object(what, where=where, hint=hint, code=ExitCode.UNAVAILABLE)
        error["reason"] = "internal"
        return _fail(state, error, _diagnostics(error), ExitCode.UNAVAILABLE)
    # with standalone_mode=False, ctx.exit(n) comes back as the return value
    return rc if isinstance(rc, int) else 0


#: Ctrl-C: what shells report for SIGINT (outside the table, like every CLI's)
_INTERRUPTED = 130


def _fail(state: CliState, error: dict[str, Any], text: str, code: int) -> int:
    click.echo(text, err=True)
    if state.json and not state.json_written:
        emit_json(error_document(error))
        state.json_written = True
    return int(code)


def _diagnostics(error: dict[str, Any]) -> str:
    lines = [f"error: {error['what']}"]
    lines += [f"  {k}: {error[k]}" for k in ("where", "hint") if error.get(k)]
    return "\n".join(lines)


def _plain_error(what: str) -> dict[str, Any]:
    return {
        "what": what,
        "where": None,
        "hint": None,
        "exit_code": _INTERRUPTED,
        "reason": "interrupted",
    }


def _is_no_args_help(exc: click.ClickException) -> bool:
    # click >= 8.2 raises NoArgsIsHelpError; older versions print the help themselves
    no_args = getattr(click.exceptions, "NoArgsIsHelpError", None)
    return no_args is not None and isinstance(exc, no_args)


def _click_error(exc: click.ClickException) -> dict[str, Any]:
    ctx = getattr(exc, "ctx", None)
    param = getattr(exc, "param", None)
    command = ctx.command_path if ctx is not None else "secretkit"
    where = command
    if param is not None:
        opts = getattr(param, "opts", None) or [param.human_readable_name]
        where = f"{command} {opts[0]}"
    what = f"{command} needs a command" if _is_no_args_help(exc) else exc.format_message()
    return error_object(
        what,
        where=where,
        hint=f"see '{command} --help'",
        code=ExitCode.USAGE,
    )


def _origin(exc: BaseException) -> str:
    """``package/module.py:line`` of the innermost secretkit frame (no content)."""
    origin = "secretkit"
    for frame in traceback.extract_tb(exc.__traceback__):
        parts = frame.filename.replace("\\", "/").split("/")
        for i in range(len(parts) - 1, -1, -1):
            if parts[i] in ("secretkit", "kms_plugin"):
                origin = f"{'/'.join(parts[i:])}:{frame.lineno}"
                break
    return origin


if __name__ == "__main__":  # pragma: no cover
    main()
