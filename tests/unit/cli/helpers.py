"""Run the real CLI entry point in-process (its one error boundary included)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from secretkit.cli.main import main


@dataclass
class Run:
    """Exit status and captured output of one CLI run."""

    code: int
    out: str
    err: str


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    """Call ``secretkit ARGV`` through ``main`` and capture stdout/stderr."""
    capsys.readouterr()
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)
