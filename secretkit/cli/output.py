"""Machine output for every command: ``-o text|json``, versioned JSON documents.

The contract (docs/user-guide.md, "Machine output"): with ``-o json`` every outcome
of a command, errors and refusals included, is exactly one JSON document on stdout.
A command prints its result with :func:`emit_json`; when it fails before doing so,
the CLI's one error boundary (:mod:`secretkit.cli.main`) prints an error document
instead. :class:`CliState` is how the two know about each other: the boundary
creates it (the output mode is read from the argument list before click parses it,
so a failure inside parsing still gets a JSON answer) and passes it to click as the
root context's ``obj``; the ``-o`` option and :func:`emit_json` update it.

Every document starts with ``"schema": "secretkit.<output>/v<N>"`` (:func:`schema_id`)
and has a JSON Schema file ``docs/schemas/secretkit.<output>.v<N>.json``
(:func:`schema_path`). Fields are only added within a version; removing or changing
one needs a new version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: the error document every command prints with ``-o json`` when it fails
ERROR_SCHEMA = "secretkit.error/v1"


class OutputFormat(StrEnum):
    """The ``-o/--output`` choices every data-printing command offers."""

    TEXT = "text"
    JSON = "json"


@dataclass
class CliState:
    """What the error boundary must know about one CLI run.

    ``output`` is the ``-o`` value (``text`` until known); ``json_written`` is set
    once a JSON document is on stdout, so the boundary never prints a second one;
    ``verbose`` counts ``-v`` wherever it was given.
    """

    output: str = OutputFormat.TEXT.value
    json_written: bool = False
    verbose: int = 0

    @property
    def json(self) -> bool:
        """True when the run's output is JSON."""
        return self.output == OutputFormat.JSON.value


def cli_state(ctx: click.Context | None = None) -> CliState | None:
    """The run's :class:`CliState` (None outside :func:`secretkit.cli.main.main`)."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is None:
        return None
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliState) else None


def output_from_argv(args: Sequence[str]) -> str:
    """The ``-o/--output`` value in ``args``, before click parses them (last one wins).

    Arguments after ``--`` belong to another program and are not looked at.
    """
    found = OutputFormat.TEXT.value
    items = list(args)
    for i, arg in enumerate(items):
        if arg == "--":
            break
        if arg in ("-o", "--output") and i + 1 < len(items):
            found = items[i + 1]
        elif arg.startswith("--output="):
            found = arg.split("=", 1)[1]
        elif arg.startswith("-o") and not arg.startswith("--") and len(arg) > 2:
            found = arg[2:]
    return found


def _remember_output(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    # a default must not overwrite what argv said: `audit etcd-access -o json` passes
    # through the `audit` group, whose own -o is left at its default
    state = cli_state(ctx)
    if state is not None and value is not None and value != param.default:
        state.output = str(value)
    return value


def output_option(*extra: str) -> Callable[[F], F]:
    """Add ``-o/--output`` with ``text`` and ``json`` (plus ``extra`` choices).

    Eager, so the output mode is known before any other flag is checked: a bad
    flag after ``-o json`` still gets a JSON error document.
    """
    choices = [f.value for f in OutputFormat] + list(extra)
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(choices),
        default="text",
        show_default=True,
        is_eager=True,
        callback=_remember_output,
        help="Output format: human text or one machine-readable JSON document "
        "(errors included; schemas in docs/schemas/).",
    )


def schema_id(name: str, version: int = 1) -> str:
    """``secretkit.<name>/v<version>``: the value of a document's ``schema`` field."""
    return f"secretkit.{name}/v{version}"


def schema_path(schema: str) -> str:
    """The repository path of the JSON Schema for ``schema`` (``secretkit.x/v1``)."""
    name, _, version = schema.partition("/")
    return f"docs/schemas/{name}.{version}.json"


def emit_json(data: Any, *, schema: str | None = None) -> None:
    """Print ``data`` as indented, key-sorted JSON on stdout (one document per run).

    ``schema`` (see :func:`schema_id`) is put first as the ``schema`` field.
    """
    if schema is not None:
        data = {"schema": schema, **data}
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    state = cli_state()
    if state is not None:
        state.json_written = True


def error_document(error: dict[str, Any]) -> dict[str, Any]:
    """The ``-o json`` document of a failed run (docs/schemas/secretkit.error.v1.json)."""
    return {"schema": ERROR_SCHEMA, "error": error}
