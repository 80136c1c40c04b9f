"""docs/kms-plugin.md documents every flag the command has (and no flag it lacks)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from kms_plugin.cli import command

DOC = Path(__file__).resolve().parents[3] / "docs" / "kms-plugin.md"


def _flags() -> set[str]:
    out: set[str] = set()
    for param in command.params:
        if isinstance(param, click.Option):
            out.update(o for o in param.opts if o.startswith("--"))
    return out - {"--help", "--version"}


def test_every_flag_is_documented() -> None:
    text = DOC.read_text()
    missing = sorted(f for f in _flags() if f"`{f}" not in text)
    assert not missing, f"flags missing from docs/kms-plugin.md: {missing}"


def test_no_documented_flag_is_missing_from_the_command() -> None:
    table = DOC.read_text().split("## Configuration", 1)[1].split("## key_id", 1)[0]
    documented = set(re.findall(r"^\| `(--[a-z0-9-]+)", table, flags=re.M))
    assert documented, "flag table not found"
    assert documented <= _flags(), sorted(documented - _flags())
