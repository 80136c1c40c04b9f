"""Shared output helpers for CLI commands: ``-o text|json`` and JSON rendering."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class OutputFormat(StrEnum):
    """The ``-o/--output`` choices every data-printing command offers."""

    TEXT = "text"
    JSON = "json"


def output_option(*extra: str) -> Callable[[F], F]:
    """Add ``-o/--output`` with ``text`` and ``json`` (plus ``extra`` choices)."""
    choices = [f.value for f in OutputFormat] + list(extra)
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(choices),
        default="text",
        show_default=True,
        help="Output format: human text or machine-readable JSON.",
    )


def emit_json(data: Any) -> None:
    """Print ``data`` as indented, key-sorted JSON on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
